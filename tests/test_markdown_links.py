"""Every relative link and #anchor in the repository's Markdown resolves, as GitHub renders it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", "CHANGELOG.md", "docs/*.md", "roles/*/README.md", "inventories/*/README.md"]
# [text](target) outside code; the target has no blank and no parenthesis.
_LINK = re.compile(r"(?<!\\)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+).*?\1")


def markdown_files() -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in PROJECT_DIR.glob(pattern)})


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    lines, fence = [], ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            continue
        lines.append(_CODE_SPAN.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a file's headings; a repeated heading gets -1, -2... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fence = ""
    for line in path.read_text().splitlines():
        stripped = line.lstrip()
        if fence:
            fence = "" if stripped.startswith(fence) else fence
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading[1].replace("`", ""))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [target for line in prose_lines(path.read_text()) for target in _LINK.findall(line)]


def problems(path: Path) -> list[str]:
    found = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, fragment = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            found.append(f"{target}: no such file or directory")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            found.append(f"{target}: no heading with that anchor")
    return found


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(PROJECT_DIR)))
def test_every_link_resolves(path: Path) -> None:
    assert problems(path) == []


def test_the_checker_sees_broken_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Failover, how it works\n\n## Step 1: `RST`\n\n## Step 1: `RST`\n\n"
        "[a](#failover-how-it-works) [b](#step-1-rst-1) [c](#missing) [d](gone.md) `[e](#in-code)`\n"
        "```\n[f](#in-fence)\n```\n[g](https://example.org/#x)\n"
    )
    assert anchors(page) == {"failover-how-it-works", "step-1-rst", "step-1-rst-1"}
    assert [problem.split(":")[0] for problem in problems(page)] == ["#missing", "gone.md"]


def test_the_documents_are_found() -> None:
    names = {str(path.relative_to(PROJECT_DIR)) for path in markdown_files()}
    assert {"README.md", "CHANGELOG.md", "roles/rabbitmq/README.md", "inventories/example/README.md"} <= names
