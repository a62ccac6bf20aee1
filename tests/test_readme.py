"""The README's settings table and commands cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from oxidicom.app.settings import describe_settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    block = README.split("<!-- settings-table")[1].split("<!-- /settings-table -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{name}` | `{default}` | {meaning} |" for name, default, meaning in describe_settings()
    ]
    assert rows == expected


def test_readme_commands_are_make_targets_that_ci_runs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert re.search(rf"^make {target}\b", README, re.M)
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
