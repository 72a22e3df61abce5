"""Min/max decimation of a metric series for a chart a few hundred dots wide.

A run logs up to ~1,000,000 points; a panel is ~60-300 braille columns. Keeping each column's minimum
*and* maximum (not a mean or every n-th point) means a one-step loss spike still shows. Pure numpy:
no Textual here, so it is testable and benchmarkable alone.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

_START_CAPACITY = 1024


def minmax(
    xs: ArrayLike, ys: ArrayLike, x_lo: float, x_hi: float, buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``[x_lo, x_hi]`` into ``buckets`` equal slices; return each slice's centre, min y, max y.

    ``xs`` must be sorted ascending. Every array returned has length ``buckets``; a slice with no
    finite point has NaN for min and max. NaN/inf ``ys`` are ignored. ``x_hi <= x_lo`` is treated as
    a slice one unit wide. Cost: two binary searches per bucket plus one pass over the points in range.
    """
    buckets = max(1, int(buckets))
    if not x_hi > x_lo:
        x_hi = x_lo + 1.0
    edges = np.linspace(x_lo, x_hi, buckets + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    lo_out = np.full(buckets, np.nan)
    hi_out = np.full(buckets, np.nan)
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    i0 = int(np.searchsorted(x, x_lo, "left"))
    i1 = int(np.searchsorted(x, x_hi, "right"))
    if i1 <= i0:
        return centres, lo_out, hi_out
    x, y = x[i0:i1], y[i0:i1]
    starts = np.searchsorted(x, edges[:-1], "left")
    ends = np.append(starts[1:], len(x))  # the last slice includes x_hi itself
    full = ends > starts
    if not np.isfinite(y).all():
        # fmin/fmax skip NaN; inf is made NaN first so that it is skipped too.
        y = np.where(np.isfinite(y), y, np.nan)
    idx = starts[full]
    # reduceat over the non-empty starts only: each run then ends where the next non-empty one starts,
    # and empty slices in between contribute no points.
    lo_out[full] = np.fmin.reduceat(y, idx)
    hi_out[full] = np.fmax.reduceat(y, idx)
    return centres, lo_out, hi_out


class Series:
    """An append-only (x, y) series in growing numpy buffers: appends are amortised O(1).

    Non-finite y values are not stored, only counted (``skipped``): a NaN loss is news for a log line,
    not a point to draw. Points normally arrive in x order (steps); an out-of-order point (a resumed
    run re-logging a step) marks the series unsorted and the next ``view`` sorts it once.
    """

    def __init__(self, capacity: int = _START_CAPACITY):
        self._x = np.empty(max(1, capacity), dtype=np.float64)
        self._y = np.empty(max(1, capacity), dtype=np.float64)
        self._n = 0
        self._sorted = True
        self.skipped = 0
        self.version = 0  # bumps on every change: a cheap cache key for renderers
        self.y_min = np.inf
        self.y_max = -np.inf

    def __len__(self) -> int:
        return self._n

    @property
    def xs(self) -> np.ndarray:
        self._sort()
        return self._x[: self._n]

    @property
    def ys(self) -> np.ndarray:
        self._sort()
        return self._y[: self._n]

    @property
    def x_min(self) -> float:
        return float(self.xs[0]) if self._n else np.nan

    @property
    def x_max(self) -> float:
        return float(self.xs[-1]) if self._n else np.nan

    def append(self, x: float, y: float) -> None:
        # Scalar fast path: ~1 us instead of ~7 us through extend()'s temporary arrays.
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            self.skipped += 1
            return
        n = self._n
        self._reserve(n + 1)
        if n and x < self._x[n - 1]:
            self._sorted = False
        self._x[n], self._y[n] = x, y
        self._n = n + 1
        self.y_min = min(self.y_min, y)
        self.y_max = max(self.y_max, y)
        self.version += 1

    def extend(self, xs: ArrayLike, ys: ArrayLike) -> None:
        x = np.asarray(xs, dtype=np.float64).ravel()
        y = np.asarray(ys, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError(f"xs and ys differ in length: {x.size} != {y.size}")
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.all():
            self.skipped += int(ok.size - np.count_nonzero(ok))
            x, y = x[ok], y[ok]
        k = x.size
        if k == 0:
            return
        self._reserve(self._n + k)
        if self._sorted and ((self._n and x[0] < self._x[self._n - 1]) or (k > 1 and (np.diff(x) < 0).any())):
            self._sorted = False
        self._x[self._n : self._n + k] = x
        self._y[self._n : self._n + k] = y
        self._n += k
        self.y_min = min(self.y_min, float(y.min()))
        self.y_max = max(self.y_max, float(y.max()))
        self.version += 1

    def truncate_after(self, x: float) -> None:
        """Drop the points beyond x (an elastic restart redoes the steps after its checkpoint)."""
        xs = self.xs  # sorted
        n = int(np.searchsorted(xs, x, side="right"))
        if n == self._n:
            return
        self._n = n
        ys = self._y[:n]
        self.y_min = float(ys.min()) if n else np.inf
        self.y_max = float(ys.max()) if n else -np.inf
        self.version += 1

    def clear(self) -> None:
        self._n, self._sorted, self.skipped = 0, True, 0
        self.y_min, self.y_max = np.inf, -np.inf
        self.version += 1

    def view(self, x_lo: float, x_hi: float, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``minmax`` of the stored points for a chart ``buckets`` dots wide."""
        return minmax(self.xs, self.ys, x_lo, x_hi, buckets)

    def _reserve(self, need: int) -> None:
        if need <= self._x.size:
            return
        cap = max(need, 2 * self._x.size)  # doubling: each point is copied O(1) times on average
        for name in ("_x", "_y"):
            buf = np.empty(cap, dtype=np.float64)
            buf[: self._n] = getattr(self, name)[: self._n]
            setattr(self, name, buf)

    def _sort(self) -> None:
        if self._sorted:
            return
        order = np.argsort(self._x[: self._n], kind="stable")
        self._x[: self._n] = self._x[: self._n][order]
        self._y[: self._n] = self._y[: self._n][order]
        self._sorted = True
