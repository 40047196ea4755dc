"""docs/cli.md lists the real commands and the real migration chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from statekeeper.migrate import head_revision

ROOT = Path(__file__).resolve().parent.parent


def test_the_generated_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_hand_written_examples_show_the_current_head() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    hand_written = text.split("<!-- BEGIN GENERATED")[0]
    assert f"{head_revision()} (head)" in hand_written
    assert f"expected {head_revision()}:" in hand_written
