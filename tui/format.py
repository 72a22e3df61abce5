"""Short human formats for the dashboard: bytes, durations, rates. Pure, no Textual."""

from __future__ import annotations

import math
from typing import Any

from core.progress import fmt_duration

__all__ = ["fmt_bytes", "fmt_duration", "fmt_rate", "fmt_float", "fmt_age"]


def fmt_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB'; None -> '?'."""
    if n is None:
        return "?"
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} TiB"


def fmt_rate(v: float | None) -> str:
    """Throughput with 3 significant digits: 1234.5 -> '1.23k'."""
    if v is None or not math.isfinite(v):
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def fmt_float(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"


def fmt_age(seconds: float | None) -> str:
    """Seconds since something: '4s', '3m12s', '2h05m'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def update_text(widget: Any, text: Any) -> None:
    """``Static.update`` without a whole-screen layout when the text keeps its shape.

    Textual lays out the entire screen on every ``update()`` by default; the live screen's panels update
    every tick, and a profile showed 82 full layouts in 24 s (bench/monitor_overhead.py). Same number of
    lines and same widest line: the size cannot change, so a repaint is enough (-31 % dashboard CPU).
    The same text and styles as last time: nothing at all (a finished run's panels, a device summary
    that did not move). So a widget updated here is updated only here.
    """
    key = _text_key(text)
    if getattr(widget, "_gpt2_text", None) == key:
        return  # the same text and styles: nothing to repaint
    widget._gpt2_text = key
    plain = text.plain if hasattr(text, "plain") else str(text)
    lines = plain.split("\n")
    shape = (len(lines), max((len(ln) for ln in lines), default=0))
    same = getattr(widget, "_gpt2_text_shape", None) == shape
    widget._gpt2_text_shape = shape
    widget.update(text, layout=not same)


def _text_key(text: Any) -> Any:
    """What a rich Text shows: its words, spans and base style (its ``==`` leaves the base style out)."""
    if hasattr(text, "spans") and hasattr(text, "plain"):
        return (text.plain, tuple(text.spans), str(text.style), text.justify, text.no_wrap, text.overflow)
    return text
