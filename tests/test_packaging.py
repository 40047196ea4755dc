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


def _build_wheel(tmp_path: Path) -> Path:
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
    return wheel


def test_wheel_migrates_a_new_database(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
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


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_the_installed_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    """What a user of the package does, nowhere near the repository: the CLI, Alembic with
    the minimal ini the README shows, and the README's quickstart."""
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_dir = venv / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    version = _run(bin_dir / "statekeeper", "--version", cwd=work)
    assert version.startswith("statekeeper ")
    upgraded = _run(bin_dir / "statekeeper", "--url", work / "cli.db", "db", "upgrade", cwd=work)
    assert upgraded.strip() == f"{head_revision()} (head)"
    (work / "alembic.ini").write_text("[alembic]\nscript_location = statekeeper:migrations\n")
    _run(bin_dir / "alembic", "-x", f"url={work / 'alembic.db'}", "upgrade", "head", cwd=work)
    current = _run(bin_dir / "statekeeper", "--url", work / "alembic.db", "db", "current", cwd=work)
    assert current.strip() == f"{head_revision()} (head)"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("```python\n", 1)[1].split("```", 1)[0]
    env = {"PATH": str(bin_dir), "HOME": str(work), "STATEKEEPER_URL": str(work / "readme.db")}
    printed = _run(bin_dir / "python", "-c", quickstart, cwd=work, env=env)
    assert printed.strip() == "0.05000000"
    # The core install pulls neither framework; each adapter says which extra to install.
    frozen = _run(bin_dir / "python", "-m", "pip", "freeze", cwd=work)
    assert "langgraph" not in frozen and "openai-agents" not in frozen
    for module, extra in (("langgraph", "langgraph"), ("openai_agents", "openai-agents")):
        probe = subprocess.run(
            [bin_dir / "python", "-c", f"import statekeeper.integrations.{module}"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert probe.returncode == 1
        assert f"pip install 'statekeeper[{extra}]'" in probe.stderr, probe.stderr
