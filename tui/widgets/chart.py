"""ChartWidget: metric series on a step axis, drawn with braille dots (2x4 per cell).

Appending only stores points and marks the chart dirty; a timer redraws at most every
``refresh_interval`` seconds and the redraw reads the buffers. So 1,000 step events a second cost
1,000 buffer appends and 4 redraws, and a slow frame drops a redraw, never data. Each redraw decimates
every series to one min/max pair per dot column (tui.decimate), so its cost depends on the panel size,
not on the point count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui.decimate import Series

BRAILLE_BASE = 0x2800
# Bit of each dot in a braille cell, indexed [row 0-3][column 0-1] (Unicode's dot numbering 1-8).
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)
MARKER = "•"
_LEGEND_GLYPH = {"line": "━", "points": MARKER}


@dataclass
class _Track:
    name: str
    color: str
    kind: str
    axis: str
    series: Series
    style: Style


@dataclass
class _Cells:
    """One plot area: a braille code, an owning track (-1 = none) and a marker flag per cell."""

    codes: np.ndarray
    owner: np.ndarray
    marker: np.ndarray


def fmt_value(v: float) -> str:
    """A y label of at most ~7 characters."""
    s = f"{v:.4g}"
    return s if len(s) <= 7 else f"{v:.2g}"


def fmt_step(v: float) -> str:
    """An x label: steps are integers; 12,000 reads better as 12k in a 30-column panel."""
    if abs(v) >= 1e4:
        for unit, div in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
            s = f"{v / div:.3g}"
            if "e" not in s:  # 999,999 rounds to "1e+03" thousands: say 1M instead
                return s + unit
        return f"{v:.2g}"
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.3g}"


def padded_range(lo: float, hi: float) -> tuple[float, float]:
    """A range with room to draw: a constant series sits mid-height instead of dividing by zero."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):
        return lo, hi
    pad = abs(lo) * 0.1 or 1.0
    return lo - pad, hi + pad


def rasterise(tracks: list[_Track], ranges: dict[str, tuple[float, float]], x_range: tuple[float, float],
              width: int, height: int) -> _Cells:
    """Draw every track into ``height`` x ``width`` cells; later tracks own the cells they share."""
    codes = np.zeros((height, width), dtype=np.uint16)
    owner = np.full((height, width), -1, dtype=np.int16)
    marker = np.zeros((height, width), dtype=bool)
    dw, dh = width * 2, height * 4
    for i, t in enumerate(tracks):
        if not len(t.series):
            continue
        _, ymin, ymax = t.series.view(x_range[0], x_range[1], dw)
        lo, hi = ranges[t.axis]
        # Row 0 is the top: the largest value.
        top = _to_rows(ymax, lo, hi, dh)
        bot = _to_rows(ymin, lo, hi, dh)
        cols = np.flatnonzero(np.isfinite(ymax))
        if cols.size == 0:
            continue
        if t.kind == "points":
            for rows in (top, bot):
                cy, cx = rows[cols].astype(int) // 4, cols // 2
                marker[cy, cx] = True
                owner[cy, cx] = i
            continue
        grid = _line_grid(cols, top[cols], bot[cols], dw, dh)
        cell = (grid.reshape(height, 4, width, 2) * _DOT_BITS[None, :, None, :]).sum(axis=(1, 3))
        codes |= cell.astype(np.uint16)
        owner[(cell > 0) & ~marker] = i
    return _Cells(codes, owner, marker)


def _to_rows(v: np.ndarray, lo: float, hi: float, dh: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        r = np.rint((hi - v) / (hi - lo) * (dh - 1))
    return np.clip(np.nan_to_num(r, nan=0.0), 0, dh - 1)


def _line_grid(cols: np.ndarray, top: np.ndarray, bot: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """Dots of a connected line through per-column [top, bot] spans (columns ``cols``, ascending).

    Columns between two data columns get the straight line between their mid-points; each column's
    span is then stretched to touch its left neighbour's, so steep segments have no holes.
    """
    first, last = int(cols[0]), int(cols[-1])
    j = np.arange(first, last + 1)
    mids = (top + bot) / 2
    a = np.interp(j - 0.5, cols, mids)
    b = np.interp(j + 0.5, cols, mids)
    t = np.rint(np.minimum(a, b))
    u = np.rint(np.maximum(a, b))
    t[cols - first], u[cols - first] = top, bot
    t2, u2 = t.copy(), u.copy()
    t2[1:] = np.minimum(t[1:], u[:-1] + 1)
    u2[1:] = np.maximum(u[1:], t[:-1] - 1)
    t2, u2 = np.clip(t2, 0, dh - 1).astype(int), np.clip(u2, 0, dh - 1).astype(int)
    # Fill each column from t2 to u2 without a Python loop: +1 at the top, -1 below the bottom, cumsum.
    d = np.zeros((dh + 1, dw), dtype=np.int32)
    np.add.at(d, (t2, j), 1)
    np.add.at(d, (u2 + 1, j), -1)
    return np.cumsum(d, axis=0)[:dh] > 0


class ChartWidget(Widget):
    """Line/point chart of named series against steps, with a legend, y labels (left/right) and x labels."""

    DEFAULT_CSS = """
    ChartWidget {
        height: 1fr;
    }
    """

    def __init__(self, *, refresh_interval: float = 0.25, x_label: str = "step", name: str | None = None,
                 id: str | None = None, classes: str | None = None, disabled: bool = False):
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.refresh_interval = refresh_interval
        self.x_label = x_label
        self._tracks: dict[str, _Track] = {}
        self._x_override: tuple[float | None, float | None] = (None, None)
        self._dirty = False
        self._config_version = 0
        self._cache_key: tuple | None = None
        self._cache: list[Strip] = []

    # ------------------------------------------------------------------ data API (app thread only)

    def add_series(self, name: str, color: str, kind: str = "line", axis: str = "left") -> Series:
        """Register a series; ``kind`` 'line' | 'points', ``axis`` 'left' | 'right'. Returns its buffer."""
        if kind not in _LEGEND_GLYPH or axis not in ("left", "right"):
            raise ValueError(f"kind must be line|points and axis left|right, got {kind!r}, {axis!r}")
        series = self._tracks[name].series if name in self._tracks else Series()
        self._tracks[name] = _Track(name, color, kind, axis, series, Style(color=color))
        self._changed()
        return series

    def series(self, name: str) -> Series:
        return self._tracks[name].series

    def extend(self, name: str, xs: ArrayLike, ys: ArrayLike) -> None:
        """Append points (non-finite ones are counted, not drawn); redraw happens on the next tick."""
        self._tracks[name].series.extend(xs, ys)
        self._dirty = True

    def append(self, name: str, x: float, y: float) -> None:
        self._tracks[name].series.append(x, y)
        self._dirty = True

    def set_x_range(self, lo: float | None = None, hi: float | None = None) -> None:
        """Fix either end of the x axis; None follows the data."""
        self._x_override = (lo, hi)
        self._changed()

    def truncate_after(self, x: float) -> None:
        """Drop every series' points beyond x; redraw on the next tick."""
        for t in self._tracks.values():
            t.series.truncate_after(x)
        self._dirty = True

    def clear(self) -> None:
        for t in self._tracks.values():
            t.series.clear()
        self._changed()

    @property
    def dirty(self) -> bool:
        return self._dirty

    def _changed(self) -> None:
        self._config_version += 1
        self._dirty = True

    def on_mount(self) -> None:
        if self.refresh_interval > 0:  # 0: the owner calls flush() (RunCharts repaints its charts together)
            self.set_interval(self.refresh_interval, self.flush)

    def flush(self) -> None:
        """Repaint now if points or settings changed the picture (the refresh tick calls this).

        New points often leave it as it was (they land in the last dot column within its min/max: a
        long run adds one column per hundreds of steps); then nothing is sent to the terminal."""
        if not self._dirty:
            return
        self._dirty = False
        painted = self._cache
        if painted and self._strips() == painted:
            return
        self.refresh()

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def plain_lines(self) -> list[str]:
        """The chart as plain text at the current size (tests, snapshots, a text export)."""
        return [s.text for s in self._strips()]

    def _strips(self) -> list[Strip]:
        width, height = self.size
        base = self.rich_style
        key = (width, height, self._config_version, base,
               tuple(t.series.version for t in self._tracks.values()))
        if key != self._cache_key:
            self._cache = [Strip(segs, width) for segs in self._layout(width, height, base)]
            self._cache_key = key
        return self._cache

    def _layout(self, width: int, height: int, base: Style) -> list[list[Segment]]:
        if width <= 0 or height <= 0:
            return []
        tracks = list(self._tracks.values())
        x_range = self._x_range()
        show_legend, show_x = height >= 4, height >= 3
        ph = height - show_legend - show_x
        ranges, labels = {}, {}
        for axis in ("left", "right"):
            on_axis = [t for t in tracks if t.axis == axis]
            if on_axis:
                ranges[axis] = self._y_range(on_axis, x_range)
                lo, hi = ranges[axis]
                labels[axis] = [fmt_value(hi), fmt_value((lo + hi) / 2), fmt_value(lo)]
        # Label gutters only when the plot keeps at least 10 columns (a 30x6 panel keeps ~16).
        gutters = {a: max(map(len, labels[a])) + 1 for a in labels}
        if width - sum(gutters.values()) < 10:
            gutters = {}
        lw, rw = gutters.get("left", 0), gutters.get("right", 0)
        pw = width - lw - rw
        dim = base + Style(dim=True)
        rows: list[list[Segment]] = []
        if show_legend:
            rows.append(self._legend(tracks, width, base))
        cells = None
        if x_range is not None and any(len(t.series) for t in tracks):
            cells = rasterise(tracks, ranges, x_range, pw, ph)
        for r in range(ph):
            segs: list[Segment] = []
            if lw:
                segs.append(Segment(_axis_label(labels["left"], r, ph).rjust(lw - 1) + " ", dim))
            if cells is not None:
                segs += _plot_row(cells, r, tracks, base)
            else:
                msg = "no data yet" if r == ph // 2 else ""
                segs.append(Segment(msg.center(pw)[:pw], dim))
            if rw:
                segs.append(Segment(" " + _axis_label(labels["right"], r, ph).ljust(rw - 1), dim))
            rows.append(segs)
        if show_x:
            rows.append([Segment(self._x_axis(x_range if cells is not None else None, width, lw, pw), dim)])
        return rows

    def _x_range(self) -> tuple[float, float] | None:
        filled = [t.series for t in self._tracks.values() if len(t.series)]
        lo_o, hi_o = self._x_override
        lo = lo_o if lo_o is not None else (min(s.x_min for s in filled) if filled else None)
        hi = hi_o if hi_o is not None else (max(s.x_max for s in filled) if filled else None)
        if lo is None or hi is None:
            return None
        if hi <= lo:  # a single step: centre it
            return lo - 0.5, lo + 0.5
        return lo, hi

    def _y_range(self, tracks: list[_Track], x_range: tuple[float, float] | None) -> tuple[float, float]:
        lo, hi = np.inf, -np.inf
        for t in tracks:
            if not len(t.series) or x_range is None:
                continue
            if self._x_override == (None, None):  # whole series visible: its running min/max is exact
                lo, hi = min(lo, t.series.y_min), max(hi, t.series.y_max)
                continue
            # A 64-bucket view finds the visible range for a zoomed x axis at the same O(width) cost.
            _, mn, mx = t.series.view(x_range[0], x_range[1], 64)
            if np.isfinite(mn).any():
                lo, hi = min(lo, float(np.nanmin(mn))), max(hi, float(np.nanmax(mx)))
        return padded_range(lo, hi)

    def _legend(self, tracks: list[_Track], width: int, base: Style) -> list[Segment]:
        both = {t.axis for t in tracks} == {"left", "right"}
        segs, used = [], 0
        for t in tracks:
            skipped = f" ({t.series.skipped} non-finite)" if t.series.skipped else ""
            side = " (R)" if both and t.axis == "right" else ""
            item = [(_LEGEND_GLYPH[t.kind] + " ", base + t.style), (t.name + side + skipped + "  ", base)]
            for text, style in item:
                room = width - used
                if room <= 0:
                    break
                text = text if len(text) <= room else text[: max(0, room - 1)] + "…"
                segs.append(Segment(text, style))
                used += len(text)
        if used < width:
            segs.append(Segment(" " * (width - used), base))
        return segs

    def _x_axis(self, x_range: tuple[float, float] | None, width: int, lw: int, pw: int) -> str:
        line = [" "] * width
        if lw > len(self.x_label):
            _put(line, 0, self.x_label)
        if x_range is not None:
            lo_s, hi_s = fmt_step(x_range[0]), fmt_step(x_range[1])
            _put(line, lw, lo_s)
            _put(line, lw + pw - len(hi_s), hi_s)
            mid = fmt_step((x_range[0] + x_range[1]) / 2)
            at = lw + (pw - len(mid)) // 2
            if at > lw + len(lo_s) and at + len(mid) < lw + pw - len(hi_s):
                _put(line, at, mid)
        return "".join(line)[:width]


def _axis_label(labels: list[str], r: int, ph: int) -> str:
    if r == 0:
        return labels[0]
    if r == ph - 1:
        return labels[2]
    if ph >= 5 and r == (ph - 1) // 2:
        return labels[1]
    return ""


def _put(line: list[str], at: int, text: str) -> None:
    for k, ch in enumerate(text):
        if 0 <= at + k < len(line):
            line[at + k] = ch


def _plot_row(cells: _Cells, r: int, tracks: list[_Track], base: Style) -> list[Segment]:
    codes, owner, marker = cells.codes[r], cells.owner[r], cells.marker[r]
    chars = [MARKER if m else chr(BRAILLE_BASE + int(c)) if c else " " for c, m in zip(codes, marker, strict=True)]
    # One segment per run of cells with the same owner: ~a few segments a row, not one a cell.
    cuts = np.flatnonzero(np.diff(owner)) + 1
    segs = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(chars)], strict=True):
        o = int(owner[a])
        segs.append(Segment("".join(chars[a:b]), base + tracks[o].style if o >= 0 else base))
    return segs
