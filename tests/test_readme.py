"""The README's Python examples run as written (those needing pandas or a server excepted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
RUNNABLE = [b for b in BLOCKS if "pandas" not in b and "postgresql://" not in b]


def test_readme_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert len(RUNNABLE) >= 3
    monkeypatch.setenv("STATEKEEPER_URL", str(tmp_path / "readme.db"))
    namespace: dict[str, object] = {}
    for block in RUNNABLE:
        # Later blocks continue with the `sm` of the first, as a reader would.
        code = block.replace("with StateManager() as sm:", "if True:\n    sm = StateManager()")
        exec(compile(code, str(README), "exec"), namespace)
    sm = namespace["sm"]
    assert sm.get_total_sessions() == 3  # type: ignore[attr-defined]
    sm.close()  # type: ignore[attr-defined]
