"""Pure logic of the history/compare/results screens, and core.export: no Textual app needed."""

from __future__ import annotations

import csv
import io
import json
import math
import sys

import numpy as np
import pytest

from core.config import SAMPLE_DATA_DIR
from core.export import ExportError, format_for, table_text, write_text
from tui.compare_logic import (
    Ema,
    column,
    config_diff,
    default_eval_file,
    filter_rows,
    metric_xy,
    results_rows,
    sort_rows,
)


def rows():
    return [
        {"id": "r1", "name": "baseline", "status": "finished", "model": "gpt2-tiny", "devices": "cpu:2",
         "final_loss": 0.4, "best_accuracy": 0.8, "created_at": 100.0, "steps": 40},
        {"id": "r2", "name": "Higher-LR", "status": "failed", "model": "gpt2-medium-en", "devices": "gpu:0,1",
         "final_loss": None, "best_accuracy": None, "created_at": 300.0, "steps": 3},
        {"id": "r3", "name": "again", "status": "finished", "model": "gpt2-tiny", "devices": "cpu:1",
         "final_loss": 0.3, "best_accuracy": 0.7, "created_at": 200.0, "steps": 40},
    ]


# ---------------------------------------------------------------------------- config diff
def test_config_diff_lists_exactly_the_fields_that_differ():
    a = {"learning_rate": 3e-3, "seed": 42, "num_train_epochs": 3.0, "run_name": "a", "devices": "cpu:2"}
    b = {"learning_rate": 5e-3, "seed": 42, "num_train_epochs": 3, "run_name": "b", "devices": "cpu:2"}
    c = {"learning_rate": 3e-3, "seed": 42, "num_train_epochs": 3.0, "run_name": "c", "devices": "cpu:2"}
    diff = config_diff({"A": a, "B": b, "C": c})
    assert diff == [("learning_rate", {"A": 3e-3, "B": 5e-3, "C": 3e-3}), ("run_name", {"A": "a", "B": "b", "C": "c"})]


def test_config_diff_missing_keys_and_identical_configs():
    assert config_diff({"A": {"x": 1}, "B": {"x": 1}}) == []
    assert config_diff({"A": {"x": 1, "new": True}, "B": {"x": 1}}) == [("new", {"A": True, "B": None})]
    assert config_diff({"A": None, "B": {"x": 1}}) == [("x", {"A": None, "B": 1})]
    # False and 0 are not the same setting as a missing key
    assert [f for f, _ in config_diff({"A": {"amp": False}, "B": {}})] == ["amp"]


# ---------------------------------------------------------------------------- table
def test_sort_rows_by_column_missing_values_last_both_ways():
    assert [r["id"] for r in sort_rows(rows())] == ["r2", "r3", "r1"]  # newest first
    assert [r["id"] for r in sort_rows(rows(), "final_loss", descending=False)] == ["r3", "r1", "r2"]
    assert [r["id"] for r in sort_rows(rows(), "final_loss", descending=True)] == ["r1", "r3", "r2"]
    assert [r["id"] for r in sort_rows(rows(), "name", descending=False)] == ["r3", "r1", "r2"]  # any case
    with pytest.raises(KeyError):
        sort_rows(rows(), "nope")


def test_sort_is_stable_and_nan_counts_as_missing():
    rs = rows()
    rs[0]["final_loss"] = float("nan")
    assert [r["id"] for r in sort_rows(rs, "final_loss")] == ["r3", "r1", "r2"]
    assert [r["id"] for r in sort_rows(rs, "steps")] == ["r1", "r3", "r2"]  # ties keep their order


def test_filter_rows_by_words_and_status():
    assert [r["id"] for r in filter_rows(rows(), "GPU")] == ["r2"]
    assert [r["id"] for r in filter_rows(rows(), "tiny cpu:1")] == ["r3"]
    assert [r["id"] for r in filter_rows(rows(), "", "finished")] == ["r1", "r3"]
    assert [r["id"] for r in filter_rows(rows(), "base", "failed")] == []
    assert len(filter_rows(rows(), "  ", "all")) == 3


# ---------------------------------------------------------------------------- curves
def test_ema_is_debiased_skips_nonfinite_and_resumes():
    xs, ys = list(range(1, 7)), [1.0, 1.0, float("nan"), 1.0, 3.0, 3.0]
    ex, ey = Ema(0.9).feed(xs, ys)
    assert list(ex) == [1, 2, 4, 5, 6] and ey[0] == pytest.approx(1.0) and ey[2] == pytest.approx(1.0)
    assert 1.0 < ey[3] < 3.0
    half = Ema(0.9)
    a = half.feed(xs[:3], ys[:3])[1]
    b = half.feed(xs[3:], ys[3:])[1]
    assert np.allclose(np.concatenate([a, b]), ey)



def _ema_loop(beta, xs, ys, raw=0.0, n=0):
    """The point-by-point EMA that Ema.feed replaced (the reference)."""
    out_x, out_y = [], []
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            continue
        raw = beta * raw + (1 - beta) * y
        n += 1
        out_x.append(x)
        out_y.append(raw / (1 - beta ** n))
    return out_x, out_y


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.9, 0.99, 0.999])
def test_vectorised_ema_equals_the_point_by_point_loop(beta):
    rng = np.random.default_rng(7)
    for n in (0, 1, 63, 64, 65, 1000, 5003):
        xs = np.arange(1, n + 1, dtype=np.float64)
        ys = 0.7 * np.exp(-xs / 2000) + rng.normal(0, 0.05, n) + 10 * (rng.random(n) < 0.01)
        ys[rng.random(n) < 0.05] = np.nan
        ys[rng.random(n) < 0.01] = np.inf
        ref_x, ref_y = _ema_loop(beta, xs.tolist(), ys.tolist())
        ex, ey = Ema(beta).feed(xs, ys)
        assert ex.tolist() == ref_x
        assert np.allclose(ey, ref_y, rtol=0, atol=1e-9)
        # Fed in uneven pieces (a running run's reads) it gives the same numbers.
        ema, parts, cut = Ema(beta), [], 0
        for size in (1, 5, 70, 200, 10_000):
            parts.append(ema.feed(xs[cut : cut + size], ys[cut : cut + size].tolist())[1])
            cut += size
        assert np.allclose(np.concatenate(parts), ref_y, rtol=0, atol=1e-9)
    with pytest.raises(ValueError):
        Ema(beta).feed([1.0, 2.0], [1.0])


def test_metric_xy_gives_column_s_points():
    rows = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": None}, {"step": 3, "loss": float("inf")},
            {"step": 4, "loss": 0.25}]
    arrays = {"step": np.array([1.0, 2, 3, 4]), "loss": np.array([0.5, np.nan, np.inf, 0.25])}
    for got, want in zip(metric_xy(arrays, "loss"), column(rows, "step", "loss"), strict=True):
        assert got.tolist() == want.tolist()


# ---------------------------------------------------------------------------- results
def test_results_rows_attach_evals_to_checkpoints_and_star_the_best(tmp_path):
    c10, c20 = str(tmp_path / "checkpoint-10"), str(tmp_path / "checkpoint-20")
    ckpts = [{"step": 10, "path": c10}, {"step": 20, "path": c20}]
    evals = [
        {"id": "t5", "source": "train", "step": 5, "accuracy": 0.9, "mode": "classify", "t": 1.0},  # no checkpoint
        {"id": "t10", "source": "train", "step": 10, "accuracy": 0.7, "mode": "classify", "t": 2.0},
        # launched on checkpoint-20 by path, though the evaluator reported another step
        {"id": "e1", "source": "eval", "step": None, "checkpoint": tmp_path / "x/../checkpoint-20",
         "accuracy": 0.75, "mode": "cloze", "t": 4.0},
        {"id": "e2", "source": "eval", "step": 10, "checkpoint": "/elsewhere/ckpt", "accuracy": 0.72,
         "mode": "classify", "t": 5.0},  # another folder, but the step matches: it is shown under step 10
    ]
    evals[2]["checkpoint"] = str(evals[2]["checkpoint"])
    out = results_rows(ckpts, evals)
    assert [(r.key, r.step, r.checkpoint) for r in out] == [
        ("t5", 5, None), ("t10", 10, c10), ("e2", 10, c10), ("e1", 20, c20)]
    # The 0.9 at step 5 has no checkpoint, so it cannot be the best checkpoint: 0.75 at step 20 is.
    assert [r.key for r in out if r.best] == ["e1"]


def test_results_rows_checkpoint_without_evals_and_ties():
    ckpts = [{"step": 1, "path": "/c/1"}, {"step": 2, "path": "/c/2"}, {"step": 3, "path": "/c/3"}]
    evals = [{"id": "a", "source": "train", "step": 1, "accuracy": 0.8, "t": 1},
             {"id": "b", "source": "train", "step": 2, "accuracy": 0.8, "t": 2},
             {"id": "c", "source": "train", "step": 3, "accuracy": math.nan, "t": 3}]
    out = results_rows(ckpts, evals)
    assert [r.key for r in out if r.best] == ["b"]  # a tie goes to the later checkpoint, like --checkpoint best
    assert results_rows(ckpts[:1], [])[0].key == "ckpt:1" and not results_rows(ckpts[:1], [])[0].best


def test_default_eval_file_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "home"))
    assert default_eval_file({"command": ["x", "--data_dir", "/data/sst2", "--seed", "1"]}) == "/data/sst2/dev.tsv"
    assert default_eval_file({"config": {"data_dir": "sample"}}) == str(SAMPLE_DATA_DIR / "dev.tsv")
    assert default_eval_file({"config": {"data_dir": "glue"}}) == str(tmp_path / "home/datasets/Glue/SST-2/dev.tsv")
    assert default_eval_file({"config": {"data_dir": "/d"}}) == "/d/dev.tsv"
    assert not (tmp_path / "home").exists()


def test_pure_modules_import_without_textual():
    import subprocess

    code = "import tui.compare_logic, core.export, sys; print('textual' in sys.modules, 'paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------------------- export
def test_format_for_and_table_text():
    assert format_for("a/b.CSV") == "csv" and format_for("x.json") == "json" and format_for("x", "json") == "json"
    with pytest.raises(ExportError):
        format_for("x.txt")
    rs = rows()
    got = list(csv.DictReader(io.StringIO(table_text(rs, "csv"))))
    assert [r["id"] for r in got] == ["r1", "r2", "r3"] and got[1]["final_loss"] == ""
    assert json.loads(table_text(rs, "json"))[0]["best_accuracy"] == 0.8


def test_write_text_is_whole_or_nothing(tmp_path):
    p = write_text(tmp_path / "a.csv", "x,y\n")
    assert p.read_text() == "x,y\n" and list(tmp_path.iterdir()) == [p]
    with pytest.raises(ExportError):
        write_text(tmp_path / "missing" / "a.csv", "x")
    with pytest.raises(ExportError):
        write_text(tmp_path, "x")


def test_config_diff_gives_a_run_older_than_a_field_that_fields_default():
    from core.presets import offline_preset

    new = offline_preset().to_dict()
    old = {k: v for k, v in new.items() if k != "max_restart"}  # stored before max_restart existed
    assert config_diff({"old": old, "new": new}) == []
    assert config_diff({"old": old, "new": {**new, "max_restart": 2}}) == [("max_restart", {"old": 0, "new": 2})]


def test_speed_rows_put_a_run_of_each_engine_side_by_side():
    """Ours vs PaddleNLP's Trainer on one config: median samples/s, time to the common step, dev accuracy,
    ratios to the first run."""
    from tui.compare_logic import SpeedFacts, common_step, speed_rows

    step = common_step([40, 30])  # ours reached 40, the reference 30: compare at 30
    assert step == 30 and common_step([40, None]) is None and common_step([]) is None
    ours = SpeedFacts("ours", "gpt2-tui", [float("nan"), 90.0, 100.0, 110.0, 5.0, 100.0], first_t=1000.0,
                      t_at_step=1012.0, evals=[(20, 0.81), (40, 0.86)])
    ref = SpeedFacts("ref", "paddlenlp", [50.0, 40.0, 60.0], first_t=2000.0, t_at_step=2030.0,
                     evals=[(20, 0.84), (30, 0.83), (None, float("nan"))])
    a, b = speed_rows([ours, ref])
    assert (a.engine, b.engine) == ("gpt2-tui", "paddlenlp")
    assert a.samples_per_s == 100.0 and b.samples_per_s == 50.0  # medians: a slow step (eval pause) does not count
    assert (a.time_to_step, b.time_to_step) == (12.0, 30.0)
    assert (a.final_accuracy, a.best_accuracy) == (0.86, 0.86)
    assert (b.final_accuracy, b.best_accuracy) == (0.83, 0.84)
    assert (a.speed_ratio, a.time_ratio) == (1.0, 1.0)
    assert b.speed_ratio == pytest.approx(0.5) and b.time_ratio == pytest.approx(2.5)


def test_speed_rows_with_missing_numbers_give_no_ratio():
    from tui.compare_logic import SpeedFacts, speed_rows

    empty = SpeedFacts("new", "gpt2-tui", [], first_t=None, t_at_step=None, evals=[])
    other = SpeedFacts("old", "paddlenlp", [10.0], first_t=5.0, t_at_step=9.0, evals=[(3, 0.5)])
    a, b = speed_rows([empty, other])
    assert a.samples_per_s is None and a.time_to_step is None and a.final_accuracy is None
    assert b.speed_ratio is None and b.time_ratio is None and b.time_to_step == 4.0
