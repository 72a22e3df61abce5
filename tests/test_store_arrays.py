"""Store.metric_arrays: a run's chart columns as numpy arrays (the run page and compare screen read these)."""

from __future__ import annotations

import math

import numpy as np

from core.store import METRIC_ARRAY_COLUMNS, Store


def _store(tmp_path):
    store = Store(tmp_path / "runs.db")
    for rid in ("r1", "r2"):
        store.create_run({"id": rid, "status": "running", "run_dir": str(tmp_path / rid)})
    rows = [  # run_id, step, epoch, loss, lr, samples_per_s, tokens_per_s, step_time, t; inserted out of order
        ("r1", 3, 0.3, 0.5, None, 100.0, 1000.0, 0.1, 3.0),
        ("r1", 1, 0.1, 0.7, 1e-4, None, None, 0.1, 1.0),
        ("r1", 2, 0.2, None, 2e-4, 101.0, 1010.0, 0.1, 2.0),
        ("r1", 10, 1.0, math.inf, 3e-4, 102.0, 1020.0, 0.1, 10.0),
        ("r2", 1, 0.1, 9.0, 9.0, 9.0, 9.0, 0.1, 1.0),
    ]
    store.conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?)", rows)
    return store


def test_metric_arrays_columns_order_and_null_as_nan(tmp_path):
    store = _store(tmp_path)
    a = store.metric_arrays("r1")
    assert tuple(a) == METRIC_ARRAY_COLUMNS
    assert all(v.dtype == np.float64 and v.flags.c_contiguous for v in a.values())
    nan = math.nan
    want = {"step": [1, 2, 3, 10], "loss": [0.7, nan, 0.5, math.inf], "lr": [1e-4, 2e-4, nan, 3e-4],
            "samples_per_s": [nan, 101.0, 100.0, 102.0], "tokens_per_s": [nan, 1010.0, 1000.0, 1020.0]}
    for k, v in want.items():
        np.testing.assert_array_equal(a[k], np.array(v, dtype=np.float64), err_msg=k)
    # The same values as the dict rows of Store.metrics.
    for i, row in enumerate(store.metrics("r1")):
        for k in METRIC_ARRAY_COLUMNS:
            assert (math.isnan(a[k][i]) and row[k] is None) or a[k][i] == row[k]
    store.close()


def test_metric_arrays_after_step_and_empty(tmp_path):
    store = _store(tmp_path)
    a = store.metric_arrays("r1", after_step=2)
    assert a["step"].tolist() == [3, 10] and math.isnan(a["lr"][0]) and a["loss"].tolist() == [0.5, math.inf]
    assert store.metric_arrays("r1", after_step=10)["step"].size == 0
    empty = store.metric_arrays("nope")
    assert tuple(empty) == METRIC_ARRAY_COLUMNS and all(v.size == 0 for v in empty.values())
    assert store.metric_arrays("r2")["loss"].tolist() == [9.0]
    store.close()


def test_metric_arrays_keeps_a_real_value_equal_to_the_null_fill(tmp_path):
    store = _store(tmp_path)
    lowest = -np.finfo(np.float64).max
    store.conn.execute("INSERT INTO metrics VALUES ('r2', 2, 0.2, ?, NULL, 1.0, 1.0, 0.1, 2.0)", (float(lowest),))
    a = store.metric_arrays("r2")
    assert a["loss"].tolist() == [9.0, lowest] and a["lr"][0] == 9.0 and math.isnan(a["lr"][1])
    store.close()


def test_metric_preview_is_every_kth_step_with_the_ends_and_nulls_as_nan(tmp_path):
    store = Store(tmp_path / "runs.db")
    store.create_run({"id": "long", "status": "finished", "run_dir": str(tmp_path / "long")})
    rows = [("long", s, None, None if s == 12 else 1.0 / s, 1e-4, 100.0 + s, 1e4, 0.1, float(s))
            for s in range(1, 1002)]
    store.conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?)", rows)
    preview, k = store.metric_preview("long", max_points=100)
    assert k == 11  # ceil(1001 / 100)
    assert preview["step"][0] == 1 and preview["step"][-1] == 1001  # the last step is always in
    np.testing.assert_array_equal(np.diff(preview["step"][:-1]), 11)
    full = store.metric_arrays("long")
    rows_in = np.searchsorted(full["step"], preview["step"])
    for c in METRIC_ARRAY_COLUMNS:  # the same values as the full read at those steps, NULL as NaN
        np.testing.assert_array_equal(preview[c], full[c][rows_in], err_msg=c)
    assert preview["step"][1] == 12 and math.isnan(preview["loss"][1])  # a NULL loss reads as NaN
    assert store.metric_span("long") == (1, 1001) and store.metric_span("none") is None
    empty, _ = store.metric_preview("none", 100)
    assert all(len(v) == 0 for v in empty.values())
