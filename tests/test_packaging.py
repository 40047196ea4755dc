"""The built wheel carries the migration chain, so auto_migrate works once installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from statekeeper.migrate import head_revision

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import statekeeper
assert statekeeper.__file__.startswith(sys.argv[1]), statekeeper.__file__
with statekeeper.StateManager(sys.argv[2]) as sm:
    sid = sm.create_session("from the wheel")
    print(sm.get_migration_history()[-1].revision, sm.get_session(sid).subject)
"""


def test_wheel_migrates_a_new_database(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("statekeeper-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "statekeeper/migrations/env.py" in names
    assert "statekeeper/migrations/script.py.mako" in names
    assert any(n.startswith("statekeeper/migrations/versions/0001") for n in names)
    assert "statekeeper/py.typed" in names
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "site"), str(tmp_path / "w.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [head_revision(), "from", "the", "wheel"]
