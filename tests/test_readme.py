"""The README and the pages of docs/ cannot drift from the code, nor from each other."""

from __future__ import annotations

import re
from pathlib import Path

from oxidicom.app.settings import describe_settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: docs/conformance.md is generated (python -m oxidicom.app.conformance), not written.
GENERATED = {DOCS / "conformance.md"}
FRONT_DOOR_LINES = 250

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation removed, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in _prose(page.read_text()):
        match = _HEADING.match(line)
        if match:
            anchor = github_anchor(match.group(2))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def relative_links(page: Path) -> list[str]:
    return [
        target
        for line in _prose(page.read_text())
        for target in _LINK.findall(line)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    ]


def test_settings_table_matches_the_code() -> None:
    page = (DOCS / "settings.md").read_text()
    block = page.split("<!-- settings-table")[1].split("<!-- /settings-table -->")[0]
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


def test_readme_runs_the_program_where_make_run_installs_it() -> None:
    """`oxidicom ...` typed after `make run` is "command not found": the program is in .venv/bin."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^VENV \?= \.venv$", makefile, re.M)
    assert re.search(r"^run:.*\n\t\$\(BIN\)/oxidicom$", makefile, re.M)
    commands = [line.strip() for line in README.splitlines() if "oxidicom echo" in line]
    assert commands
    bare = [line for line in commands if re.match(r"(\$ )?oxidicom\b", line)]
    assert bare == [], "the README runs oxidicom as if it were on PATH"
    assert ".venv/bin/oxidicom echo" in README


def test_readme_is_a_front_door_that_leads_to_every_page() -> None:
    assert len(README.splitlines()) <= FRONT_DOOR_LINES
    linked = {
        (ROOT / target.split("#")[0]).resolve() for target in relative_links(ROOT / "README.md")
    }
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert unlinked == []


def test_every_page_opens_with_what_it_is_for() -> None:
    for page in PAGES[1:]:
        if page in GENERATED:
            continue
        lines = page.read_text().splitlines()
        assert lines[0].startswith("# "), page.name
        assert lines[1] == "", page.name
        assert lines[2] and not lines[2].startswith(("#", "|", "-", "`", "<")), page.name


def test_every_relative_link_leads_to_a_file_and_heading_of_the_repository() -> None:
    broken = []
    for page in PAGES:
        for target in relative_links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.is_relative_to(ROOT) or not file.exists():
                broken.append(f"{page.name}: {target} (no such file in the repository)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
