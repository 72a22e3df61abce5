"""The live screen's pure parts: RunState folding, worker-log tails, and the follower's updates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.presets import offline_preset
from core.store import Store
from tui.follower import FollowUpdate, RunFollower
from tui.logtail import LogTail, WorkerLogs, clean_line
from tui.runstate import EVAL_ACC, LOSS, LOSS_EMA, LR, SAMPLES, RunState
from tui.testing import T0, FakeLauncher, canned_events


# ---------------------------------------------------------------------------- RunState
def test_runstate_folds_progress_series_and_ranks():
    st = RunState()
    delta = st.apply(canned_events(1, 40, total_steps=120))
    assert (st.step, st.total_steps, st.world_size, st.steps_logged) == (40, 120, 2, 40)
    assert st.epoch == pytest.approx(1.0) and st.fraction == pytest.approx(40 / 120)
    assert len(delta[LOSS][0]) == 40 and len(delta[LR][0]) == 40 and len(delta[SAMPLES][0]) == 40
    assert list(delta[EVAL_ACC][0]) == [20, 40] and st.best_accuracy == pytest.approx(0.65)
    assert sorted(st.ranks) == [0, 1] and st.ranks[1].step == 40 and st.ranks[1].device == "gpu:1"
    # ETA from event time: 0.5 s a step, 80 steps to go.
    assert st.seconds_per_step() == pytest.approx(0.5) and st.eta() == pytest.approx(40.0)
    assert st.elapsed(T0 + 25) == pytest.approx(25.0)


def test_ema_is_debiased_and_skips_nan():
    st = RunState()
    evs = [{"type": "step", "t": float(i), "step": i, "loss": v} for i, v in enumerate([2.0, 2.0, "nan", 1.0], 1)]
    delta = st.apply(evs)
    ema_x, ema_y = delta[LOSS_EMA]
    assert list(ema_x) == [1, 2, 4]  # no EMA point for the NaN step
    assert ema_y[0] == pytest.approx(2.0)  # debiased: starts at the data, not at 0.2
    assert 1.0 < ema_y[-1] < 2.0
    assert math.isnan(delta[LOSS][1][2])  # the raw NaN goes to the chart, which counts it as skipped


def test_snapshot_is_independent_of_further_folding():
    st = RunState()
    st.apply(canned_events(1, 10))
    snap = st.snapshot()
    st.apply(canned_events(11, 20, first=False))
    assert snap.step == 10 and st.step == 20
    assert len(snap.evals) == 0 and len(st.evals) == 1
    assert snap.ranks[0].step == 10 and st.ranks[0].step == 20


def test_series_deltas_merge_in_order():
    a = RunState().apply(canned_events(1, 5))
    st = RunState()
    st.apply(canned_events(1, 5))
    b = st.apply(canned_events(6, 9, first=False))
    m = a.merged(b)
    assert list(m[LOSS][0]) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert m.points() == a.points() + b.points()


# ---------------------------------------------------------------------------- log tails
def test_logtail_keeps_partial_lines_and_strips_colour(tmp_path):
    p = tmp_path / "workerlog.0"
    tail = LogTail(p)
    assert tail.poll() == []  # no file yet
    p.write_bytes(b"\x1b[32m[INFO]\x1b[0m first\nsecond half")
    assert tail.poll() == ["[INFO] first"]
    with open(p, "ab") as fh:
        fh.write(b"-line\nprogress 10%\rprogress 100%\n")
    assert tail.poll() == ["second half-line", "progress 100%"]
    assert clean_line("a\r\x1b[1mb\x1b[0m  ") == "b"


def test_logtail_starts_near_the_end_of_a_long_log(tmp_path):
    p = tmp_path / "workerlog.0"
    p.write_text("".join(f"line {i}\n" for i in range(20000)))
    lines = LogTail(p, start_tail_bytes=1000).poll()
    assert lines[-1] == "line 19999" and len(lines) < 200
    assert all(ln.startswith("line ") for ln in lines)  # the cut first line was dropped


def test_worker_logs_rank0_tail_and_error_lines_of_others(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "workerlog.0").write_text("hello\n")
    (logs / "workerlog.1").write_text("fine\nTraceback (most recent call last):\nValueError: boom\nnoise\n")
    wl = WorkerLogs(logs)
    rank0, errors = wl.poll()
    assert rank0 == ["hello"]
    assert errors == ["rank 1: Traceback (most recent call last):", "rank 1: ValueError: boom"]
    assert wl.poll() == ([], [])


# ---------------------------------------------------------------------------- follower
@pytest.fixture
def launched(tmp_path):
    store = Store(tmp_path / "runs.db")
    fake = FakeLauncher(events=canned_events(1, 30))
    run = fake.launch(store, offline_preset())
    yield store, fake, run
    store.close()


def test_follower_ingests_into_the_store_and_reports_new_events(launched, tmp_path):
    store, fake, run = launched
    f = RunFollower(tmp_path / "runs.db", run["id"], fake, clock=lambda: T0 + 16)
    u = f.poll()
    assert isinstance(u, FollowUpdate)
    assert u.state.step == 30 and len(u.series[LOSS][0]) == 30
    assert u.log_lines[0].startswith("[gpt2-tui train]")
    assert not u.finished and u.run["status"] == "running"
    assert len(store.metrics(run["id"])) == 30  # the store took every event
    assert f.poll() is None  # nothing new
    fake.emit(*canned_events(31, 35, first=False))
    u2 = f.poll()
    assert u2.new_events >= 5 and list(u2.series[LOSS][0]) == [31, 32, 33, 34, 35]
    fake.emit({"type": "end", "t": T0 + 40, "status": "finished", "reason": "done"})
    u3 = f.poll()
    assert u3.finished and u3.run["status"] == "finished" and f.finished
    f.close()


def test_follower_reads_a_long_history_in_bounded_chunks(launched, tmp_path):
    store, fake, run = launched
    fake.emit(*canned_events(31, 3000, first=False, eval_every=0))
    f = RunFollower(tmp_path / "runs.db", run["id"], fake, clock=lambda: T0, chunk_bytes=64 * 1024)
    updates = []
    for _ in range(100):
        u = f.poll()
        if u is not None:
            updates.append(u)
        if not f.behind:
            break
    assert len(updates) > 3  # it took several polls: no single giant read
    merged = updates[0]
    for u in updates[1:]:
        merged = merged.merged(u)
    xs = merged.series[LOSS][0]
    assert len(xs) == 3000 and np.all(np.diff(xs) == 1)  # every step, in order, once
    assert merged.state.step == 3000
    f.close()


def test_follower_stall_alert_while_running(launched, tmp_path):
    store, fake, run = launched
    now = [T0 + 16]
    f = RunFollower(tmp_path / "runs.db", run["id"], fake, clock=lambda: now[0])
    assert f.poll().alerts == []
    now[0] += 120  # two minutes with no new step, process "alive" (the fake says running)
    fake.log("still here")
    u = f.poll()
    assert [a.kind for a in u.alerts] == ["stall"]
    f.close()


def _steps(a: int, b: int, t0: float = 0.0) -> list[dict]:
    return [{"type": "step", "step": s, "t": t0 + s, "loss": 1.0 / s, "lr": 1e-3, "samples_per_s": 50.0}
            for s in range(a, b + 1)]


def test_an_elastic_restart_cuts_the_curves_back_to_its_checkpoint_in_one_batch_or_across_two():
    restart = {"type": "start", "t": 100.0, "restart": 1, "resumed_from_step": 5, "total_steps": 20}
    # One batch: the old incarnation's steps past the checkpoint never reach the chart.
    st = RunState()
    delta = st.apply([{"type": "start", "t": 0.0, "restart": 0, "total_steps": 20}, *_steps(1, 10),
                      restart, *_steps(6, 8, 100.0)])
    assert delta.truncate_after == 5.0
    assert list(delta[LOSS][0]) == [1, 2, 3, 4, 5, 6, 7, 8] and st.restarts == 1 and st.step == 8
    # Two batches, merged as the follower merges undelivered updates: the cut applies to the older one too.
    st = RunState()
    first = st.apply(_steps(1, 10))
    second = st.apply([restart, *_steps(6, 7, 100.0)])
    assert first.truncate_after is None and second.truncate_after == 5.0
    assert list(second[LOSS][0]) == [6, 7] and list(second[LOSS_EMA][0]) == [6, 7]
    merged = first.merged(second)
    assert merged.truncate_after == 5.0 and list(merged[LOSS][0]) == [1, 2, 3, 4, 5, 6, 7]
    # Applied to a chart that already drew steps 1..10: no step twice, none beyond the cut but the new ones.
    from tui.decimate import Series

    s = Series()
    s.extend(*first[LOSS])
    s.truncate_after(second.truncate_after)
    s.extend(*second[LOSS])
    assert list(s.xs) == [1, 2, 3, 4, 5, 6, 7] and s.y_max == 1.0 and s.y_min == pytest.approx(1 / 7)
