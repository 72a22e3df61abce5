"""Run tags as people type them: "best, lr-sweep  baseline" -> ["best", "lr-sweep", "baseline"].

Tags are single words (commas and spaces separate them), kept as typed, compared in any case: the one
rule for ``gpt2-tui tag``, the dashboard's tag dialog and the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_TAG_LEN = 40  # the history's tags column shows ~12 characters; 40 still names an experiment
MAX_TAGS = 20
MAX_NOTE_LEN = 2000


class TagError(ValueError):
    """A tag or note that cannot be stored; the message names it."""


def split_tags(texts: str | Iterable[str]) -> list[str]:
    """Tags from text (or several texts), split on commas and whitespace, duplicates (any case) dropped."""
    if isinstance(texts, str):
        texts = [texts]
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for tag in re.split(r"[,\s]+", text):
            if not tag:
                continue
            if len(tag) > MAX_TAG_LEN:
                raise TagError(f"tag {tag[:MAX_TAG_LEN]!r}… is longer than {MAX_TAG_LEN} characters")
            if tag.startswith("-"):
                raise TagError(f"tag {tag!r} starts with '-': the filter reads -word as 'without word'")
            if '"' in tag:
                raise TagError(f"tag {tag!r} has a double quote: the filter reads it as the start of a phrase")
            if tag.lower() not in seen:
                seen.add(tag.lower())
                out.append(tag)
    return out


def merge_tags(current: Iterable[str], add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """``current`` plus ``add`` minus ``remove`` (any case), in the order they came; at most MAX_TAGS."""
    gone = {t.lower() for t in remove}
    out = [t for t in split_tags([*current, *add]) if t.lower() not in gone]
    if len(out) > MAX_TAGS:
        raise TagError(f"a run keeps at most {MAX_TAGS} tags ({len(out)} given)")
    return out


def clean_note(note: str | None) -> str | None:
    """A note as stored: surrounding whitespace dropped, empty = no note."""
    if note is None:
        return None
    note = note.strip()
    if len(note) > MAX_NOTE_LEN:
        raise TagError(f"the note is {len(note)} characters; at most {MAX_NOTE_LEN}")
    return note or None


def tags_text(tags: Iterable[str]) -> str:
    return ", ".join(tags)
