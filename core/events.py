"""The event protocol: one JSON object per line in ``runs/<id>/events.jsonl``.

Every event has ``v`` (schema version), ``seq`` (per-file sequence number, from 0), ``t`` (unix time)
and ``type``. The types and their fields are the TypedDicts of ``core.records`` (start, step, eval,
checkpoint, checkpoint_deleted, heartbeat, ranks, log, end); ``core.records.describe()`` prints them.

Only one process writes a given file (rank 0 of a job, or the evaluator). The reader never trusts a
line: a torn line, a malformed one, or one the schema refuses is counted and skipped, never a crash.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.records import END_STATUSES, SCHEMA_VERSION, TYPES, Event, validate

__all__ = ["END_STATUSES", "SCHEMA_VERSION", "TYPES", "Chunk", "Event", "EventWriter", "as_float",
           "finite_or_text", "parse_line", "read_all", "read_from"]


class EventWriter:
    """Appends events, one flushed line each: a follower sees each event as soon as it is written.

    A writer opened on an existing file continues its sequence numbers (resume after a restart).
    """

    def __init__(self, path: str | os.PathLike[str], clock: Any = time.time):
        self.path = Path(path)
        self._clock = clock
        self._seq = _count_lines(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh: IO[str] = os.fdopen(fd, "a", encoding="utf-8")

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        if type not in TYPES:
            raise ValueError(f"unknown event type {type!r}")
        ev = {"v": SCHEMA_VERSION, "seq": self._seq, "t": round(self._clock(), 3), "type": type}
        ev.update({k: finite_or_text(v) for k, v in fields.items()})
        # allow_nan=False would raise on a NaN loss; _clean turns non-finite floats into strings.
        self._fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
        self._fh.flush()
        self._seq += 1
        return ev

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def finite_or_text(v: Any) -> Any:
    """Non-finite floats (a NaN loss) as 'nan'/'inf'/'-inf', anywhere in a structure: strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: finite_or_text(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_or_text(x) for x in v]
    return v


def as_float(v: Any) -> float | None:
    """A numeric event field back as a float: 'nan'/'inf' strings become the float values."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    return None


def parse_line(line: bytes | str) -> Event | None:
    """One event, or None when the line is not a valid event of this schema."""
    try:
        ev = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(ev, dict) or ev.get("type") not in TYPES:
        return None
    if not isinstance(ev.get("seq"), int) or not isinstance(ev.get("t"), (int, float)):
        return None
    if ev.get("v") != SCHEMA_VERSION:
        return None
    return validate(ev)


@dataclass
class Chunk:
    events: list[Event] = field(default_factory=list)
    offset: int = 0  # byte offset just past the last complete line consumed
    bad_lines: int = 0


def read_from(path: str | os.PathLike[str], offset: int = 0, max_bytes: int = 64 << 20) -> Chunk:
    """Complete lines from ``offset`` on; a trailing line without its newline is left for next time."""
    out = Chunk(offset=offset)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max_bytes)
    except FileNotFoundError:
        return out
    end = data.rfind(b"\n")
    if end < 0:
        return out
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        ev = parse_line(raw)
        if ev is None:
            out.bad_lines += 1
        else:
            out.events.append(ev)
    out.offset = offset + end + 1
    return out


def read_all(path: str | os.PathLike[str]) -> Iterator[Event]:
    offset = 0
    while True:
        chunk = read_from(path, offset)
        yield from chunk.events
        if chunk.offset == offset:
            return
        offset = chunk.offset
