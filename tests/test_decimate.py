"""tui.decimate: min/max buckets keep spikes, ignore NaN, and scale to 1,000,000 points."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tui.decimate import Series, minmax


def test_bucket_count_and_centres():
    xs = np.arange(100, dtype=float)
    cx, lo, hi = minmax(xs, xs * 2, 0, 99, 10)
    assert cx.shape == lo.shape == hi.shape == (10,)
    assert cx[0] == pytest.approx(4.95) and cx[-1] == pytest.approx(94.05)
    assert lo[0] == 0 and hi[-1] == 198
    assert np.all(lo <= hi)


def test_single_point_spike_is_preserved():
    xs = np.arange(100_000, dtype=float)
    ys = np.ones_like(xs)
    ys[31_337] = 50.0
    ys[77_777] = -9.0
    _, lo, hi = minmax(xs, ys, 0, xs[-1], 60)
    assert hi.max() == 50.0 and lo.min() == -9.0
    assert np.count_nonzero(hi == 50.0) == 1


def test_nan_and_inf_are_ignored():
    xs = np.arange(10, dtype=float)
    ys = np.array([1, np.nan, 3, np.inf, 5, -np.inf, np.nan, np.nan, np.nan, 10], dtype=float)
    _, lo, hi = minmax(xs, ys, 0, 9, 5)  # buckets of 1.8: {0,1} {2,3} {4,5} {6,7} {8,9}
    assert np.isfinite(lo[:3]).all()
    assert (lo[0], hi[0]) == (1, 1)  # [1, nan]
    assert (lo[1], hi[1]) == (3, 3)  # [3, inf]
    assert np.isnan(lo[3]) and np.isnan(hi[3])  # [nan, nan]: an empty bucket
    assert hi[4] == 10


def test_empty_buckets_are_nan_and_range_is_respected():
    xs = np.array([0.0, 1.0, 100.0])
    cx, lo, hi = minmax(xs, xs, 0, 100, 100)
    assert np.count_nonzero(np.isfinite(lo)) == 3
    assert hi[-1] == 100.0  # x == x_hi lands in the last bucket
    _, lo2, _ = minmax(xs, xs, 200, 300, 4)  # no point in range
    assert np.isnan(lo2).all()
    _, lo3, hi3 = minmax(np.array([5.0]), np.array([2.0]), 5, 5, 3)  # zero-width range
    assert np.nanmin(lo3) == 2.0 and np.nanmax(hi3) == 2.0


def test_series_appends_grow_and_track_extremes():
    s = Series(capacity=2)
    for i in range(1000):
        s.append(i, np.sin(i))
    s.append(1000, np.nan)
    s.extend([1001, 1002], [np.inf, 3.0])
    assert len(s) == 1001 and s.skipped == 2
    assert s.y_max == 3.0 and s.y_min == pytest.approx(np.sin(np.arange(1000)).min())
    assert s.x_min == 0 and s.x_max == 1002
    with pytest.raises(ValueError):
        s.extend([1, 2], [1])
    v = s.version
    s.clear()
    assert len(s) == 0 and s.version > v and np.isnan(s.x_min)


def test_series_sorts_out_of_order_points_once():
    s = Series()
    s.extend([0, 1, 2, 3], [0, 1, 2, 3])
    s.extend([2, 4], [20, 4])  # a resumed run re-logs step 2
    assert list(s.xs) == [0, 1, 2, 2, 3, 4]
    assert list(s.ys) == [0, 1, 2, 20, 3, 4]  # stable: the re-logged value comes after the first
    _, _, hi = s.view(0, 4, 5)
    assert hi[2] == 20


def test_million_points_decimate():
    n = 1_000_000
    s = Series()
    rng = np.random.default_rng(0)
    ys = rng.normal(size=n)
    ys[654_321] = 1e3
    for chunk in range(0, n, 50_000):  # the follower appends in batches
        s.extend(np.arange(chunk, chunk + 50_000), ys[chunk : chunk + 50_000])
    assert len(s) == n
    cx, lo, hi = s.view(0, n - 1, 600)
    assert cx.shape == (600,) and np.isfinite(lo).all()
    assert hi.max() == 1e3
    _, lo_z, _ = s.view(500_000, 500_099, 50)  # zoomed: two points a bucket
    assert np.isfinite(lo_z).all()


def test_decimate_imports_no_textual():
    code = "import sys, tui.decimate; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
