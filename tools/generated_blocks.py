"""Generated blocks in Markdown: text between a begin and an end marker that a tool rewrites."""

from __future__ import annotations


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """text with everything from begin to end (markers included) replaced by `block`, which carries its markers."""
    if begin not in text or end not in text:
        raise ValueError(f"the markers {begin!r} and {end!r} are missing")
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + block + text[stop:]
