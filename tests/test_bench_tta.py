"""bench/time_to_accuracy.py's clock: launch to the first evaluation at the target, with the time spent in
earlier evaluations taken off (wall and CPU alike), and a target never reached counted as never."""

import math
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench.time_to_accuracy import derive, med, time_to  # noqa: E402


def _run():
    # launched at t=100; 4 steps end at 110..113; evaluations after steps 2 and 4, 5 s and 7 s long
    steps = [[110.0 + i, 10.0 + i, 32, 256, 200] for i in range(4)]
    evals = [{"step": 4, "accuracy": 0.9, "loss": 0.3, "t0": 118.0, "t1": 125.0, "c0": 18.0, "c1": 24.0},
             {"step": 2, "accuracy": 0.7, "loss": 0.5, "t0": 111.5, "t1": 116.5, "c0": 11.5, "c1": 15.5}]
    return derive({"rc": 0, "accuracy": 0.9, "eval_loss": 0.3, "steps": steps, "evals": evals}, t_launch=100.0)


def test_earlier_evaluations_are_off_the_clock():
    r = _run()
    assert [e["step"] for e in r["evals"]] == [2, 4]
    assert time_to(r, 0.7) == (pytest.approx(11.5), pytest.approx(11.5), 2)
    # 18 s after launch, minus the 5 s (wall) / 4 s (CPU) of the first evaluation
    assert time_to(r, 0.8) == (pytest.approx(13.0), pytest.approx(14.0), 4)
    assert r["final_accuracy"] == 0.9 and r["eval_s"] == pytest.approx(12.0)
    assert r["pad_fraction"] == pytest.approx(1 - 800 / (4 * 32 * 8))


def test_a_target_never_reached_is_never_and_wins_no_median():
    r = _run()
    assert time_to(r, 0.95) == (math.inf, math.inf, None)
    assert math.isinf(med([10.0, math.inf, math.inf]))
    assert med([10.0, 12.0, math.inf]) == 12.0
