"""Readings that may be missing: a driver that does not support one is None, never a failed sample."""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def opt(fn: Any) -> Any:
    """A reading a card does not support (power on some boards) is None, not a failed sample."""
    try:
        return fn()
    except Exception:
        return None


def num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def lead_number(cell: str) -> float | None:
    m = _NUMBER.match(cell)  # tolerates units left on ("80 MiB") when nounits is ignored
    return float(m.group(1)) if m else None
