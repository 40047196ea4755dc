"""Check legacy files against the store: which sessions it lacks, or holds differently.

An item that is not a valid session counts as mismatched when its id is stored (the store
cannot hold what the file says) and as missing otherwise, so such a file never validates;
an item without a usable id is missing as `<file>#<index>`. A file that cannot be read as
a JSON array is listed in `errors`, and the other files are still checked.
"""

from __future__ import annotations

from pathlib import Path

from statekeeper.asyncdb import AsyncDatabase
from statekeeper.importers import legacy, store
from statekeeper.importers.store import BATCH_SIZE
from statekeeper.schemas import ValidationReport, WorktreeSession

__all__ = ["validate_import"]


class _Report:
    """Missing and mismatched labels in file order, each listed once."""

    def __init__(self) -> None:
        self.missing: dict[str, None] = {}
        self.mismatched: dict[str, None] = {}
        self.errors: list[tuple[str, str]] = []

    def check(
        self,
        file: Path,
        parsed: WorktreeSession | legacy.Rejected,
        found: dict[str, WorktreeSession],
    ) -> None:
        """Compare one item of a file with the stored sessions of its batch."""
        if isinstance(parsed, legacy.Rejected):
            if parsed.session_id is None:
                self.missing[f"{file}#{parsed.index}"] = None
            elif parsed.session_id in found:
                self.mismatched[parsed.session_id] = None
            else:
                self.missing[parsed.session_id] = None
            return
        stored = found.get(parsed.id)
        if stored is None:
            self.missing[parsed.id] = None
        elif legacy.normalized(stored) != legacy.normalized(parsed):
            self.mismatched[parsed.id] = None

    def result(self) -> ValidationReport:
        """The report, an id in `mismatched` never also in `missing`."""
        missing = [label for label in self.missing if label not in self.mismatched]
        return ValidationReport(
            missing=missing, mismatched=list(self.mismatched), errors=self.errors
        )


async def validate_import(database: AsyncDatabase, path: Path) -> ValidationReport:
    """Compare every session of a file (or of a directory's `*.json` files) with the store."""
    report = _Report()
    for file in legacy.legacy_files(path):
        try:
            document = legacy.read(file)
        except legacy.LegacyFileError as exc:
            report.errors.append((str(file), exc.reason))
            continue
        for start in range(0, len(document.items), BATCH_SIZE):
            await _check_batch(database, document, start, report)
    return report.result()


async def _check_batch(
    database: AsyncDatabase, document: legacy.LegacyFile, start: int, report: _Report
) -> None:
    """Parse a batch of a file's items and compare them with one read of the store."""
    chunk = document.items[start : start + BATCH_SIZE]
    parsed = [legacy.parse(item, index, document) for index, item in enumerate(chunk, start=start)]
    ids = [p.id if isinstance(p, WorktreeSession) else p.session_id for p in parsed]
    wanted = [i for i in ids if i is not None]
    found = await database.run(lambda uow: store.stored(uow, wanted), write=False)
    for item in parsed:
        report.check(document.path, item, found)
