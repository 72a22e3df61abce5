"""What every import source reader shares: the Imported record, the error, fingerprints and event order.

Apart from core.imports (which picks the reader and records the run), so that the readers import it
without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SourceError(ValueError):
    """The source cannot be imported; the message names the file and what is wrong with it."""


@dataclass
class Imported:
    """A source read whole, ready to be written as a run."""

    kind: str  # one of KINDS
    path: Path  # resolved
    fingerprint: str  # sha256 of the content that makes the run (not of mtimes)
    events: list[dict[str, Any]] = field(default_factory=list)  # {"type", "t", fields...}, in order
    config: dict[str, Any] = field(default_factory=dict)  # RunConfig fields the source told
    name: str = ""
    output_dir: str | None = None
    devices: str | None = None
    world_size: int | None = None

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.path}|{self.fingerprint}".encode()).hexdigest()

    @property
    def run_id(self) -> str:
        return f"import-{self.key[:12]}"

    def start_t(self) -> float:
        return min((e["t"] for e in self.events), default=time.time())


def sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SourceError(f"{path}: cannot read it ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not valid JSON ({e})") from None


def assemble(start: dict[str, Any], body: list[dict[str, Any]], end: dict[str, Any]) -> list[dict[str, Any]]:
    """start, the body as the reader ordered it, end; start and end take the earliest and latest times."""
    t0 = min([start["t"], *(e["t"] for e in body)])
    t1 = max([end.get("t", t0), *(e["t"] for e in body)])
    return [{**start, "type": "start", "t": t0}, *body, {**end, "type": "end", "t": t1}]
