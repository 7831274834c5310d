"""Generated blocks in Markdown: text between a begin and an end marker that a tool rewrites."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """text with everything from begin to end (markers included) replaced by `block`, which carries its markers."""
    if begin not in text or end not in text:
        raise ValueError(f"the markers {begin!r} and {end!r} are missing")
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + block + text[stop:]


Block = tuple[Path, str, str, str]


def rewrite_blocks(blocks: Iterable[Block]) -> None:
    """Write each (path, begin, end, block) into its file, in place of what its markers held."""
    for path, begin, end, block in blocks:
        path.write_text(replace_block(path.read_text(), begin, end, block))


def copy_reference(results: Path, reference: Path) -> dict[str, Any]:
    """A run's results file copied to the committed reference; its data."""
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text(results.read_text())
    return json.loads(reference.read_text())


def reference_cli(
    argv: list[str] | None, doc: str, results: Path, missing: str, adopt: Callable[[], None], show: Callable[[], str]
) -> int:
    """`tool.py [--adopt]`: print the latest results as the docs would quote them, adopting them first if asked."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adopt", action="store_true", help="copy the latest results to the reference and the docs")
    args = parser.parse_args(argv)
    if not results.exists():
        print(f"no results at {results}: {missing}", file=sys.stderr)
        return 1
    if args.adopt:
        adopt()
    print(show())
    return 0


@dataclass(frozen=True)
class OneBlockTool:
    """A results tool whose docs quote its reference in one block: where the latest results are, where the
    reference is committed, and the block that quotes it."""

    results: Path
    reference: Path
    doc: Path
    begin: str
    end: str
    block: Callable[[dict[str, Any]], str]
    # What to run when there are no results yet.
    missing: str

    def generated(self, reference: dict[str, Any]) -> list[Block]:
        return [(self.doc, self.begin, self.end, self.block(reference))]

    def adopt(self) -> None:
        rewrite_blocks(self.generated(copy_reference(self.results, self.reference)))

    def main(self, argv: list[str] | None, doc: str) -> int:
        show = lambda: self.block(json.loads(self.results.read_text()))  # noqa: E731
        return reference_cli(argv, doc, self.results, self.missing, self.adopt, show)
