"""Write the synchronous twins of the async sources: `_async/` -> `_sync/`.

Each operation is written once, as async code (`api/_async/`, `importers/_async/`); this
turns it into the sync code StateManager uses, removing async/await and renaming the few
names that differ, then formats it with ruff. `--check` fails when a twin is stale (the
test suite runs it), so the two never drift.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "statekeeper"
SOURCES = ("api", "importers")
HEADER = "# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.\n"
RENAMES = {
    "_async": "_sync",
    "AsyncDatabase": "Database",
    "asyncdb": "db",
    "AsyncManagerBase": "ManagerBase",
    "AsyncSessionsAPI": "SessionsAPI",
    "AsyncWorktreeAPI": "WorktreeAPI",
    "AsyncSearchAPI": "SearchAPI",
    "AsyncMaintenanceAPI": "MaintenanceAPI",
    "AsyncAgentsAPI": "AgentsAPI",
    "AsyncSnapshotsAPI": "SnapshotsAPI",
    "AsyncEventsAPI": "EventsAPI",
    "AsyncTasksAPI": "TasksAPI",
    "await_result": "call_result",
    "AsyncLegacyMirror": "LegacyMirror",
}


def generate(out: Path) -> list[Path]:
    """Write every twin under `out` (a copy of the package layout); return their paths."""
    written = []
    for source in SOURCES:
        src_dir = PACKAGE / source / "_async"
        dst_dir = out / source / "_sync"
        dst_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(src_dir.glob("*.py")):
            target = dst_dir / path.name
            staged = out / "staging" / source / "_async" / path.name
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, staged)
            rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=RENAMES)
            unasync.unasync_files([str(staged)], [rule])
            produced = Path(str(staged).replace("/_async/", "/_sync/"))
            target.write_text(HEADER + produced.read_text())
            written.append(target)
    shutil.rmtree(out / "staging")
    ruff = [sys.executable, "-m", "ruff"]
    files = [str(p) for p in written]
    subprocess.run([*ruff, "check", "--fix-only", "--quiet", *files], check=True, cwd=ROOT)
    subprocess.run([*ruff, "format", "--quiet", *files], check=True, cwd=ROOT)
    return written


def main() -> int:
    """Regenerate the twins in place, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a twin is out of date")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        out = Path(tmp)
        stale = []
        for generated in generate(out):
            relative = generated.relative_to(out)
            current = PACKAGE / relative
            if not current.exists() or not filecmp.cmp(generated, current, shallow=False):
                stale.append(str(relative))
                if not args.check:
                    current.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(generated, current)
        expected = {
            str(p.relative_to(PACKAGE))
            for s in SOURCES
            for p in (PACKAGE / s / "_async").glob("*.py")
        }
        for source in SOURCES:
            for existing in (PACKAGE / source / "_sync").glob("*.py"):
                twin = str(existing.relative_to(PACKAGE)).replace("/_sync/", "/_async/")
                if twin not in expected:
                    stale.append(f"{existing.relative_to(PACKAGE)} (no async source)")
                    if not args.check:
                        existing.unlink()
    if stale and args.check:
        print("stale sync twins (run scripts/gen_sync.py):", *stale, sep="\n  ")
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
