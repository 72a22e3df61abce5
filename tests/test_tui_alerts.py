"""tui.alerts: NaN loss, stalled steps and throughput collapse fire once each, and re-arm."""

from __future__ import annotations

from tui.alerts import STALL_MIN_S, AlertMonitor


def step(s: int, t: float, loss: float | str = 0.5, sps: float = 100.0) -> dict:
    return {"type": "step", "step": s, "t": t, "loss": loss, "samples_per_s": sps}


def test_nan_loss_alerts_once_until_finite_again():
    m = AlertMonitor()
    assert m.observe([step(1, 1.0), step(2, 2.0)], now=2.0) == []
    alerts = m.observe([step(3, 3.0, "nan"), step(4, 4.0, "inf")], now=4.0)
    assert [a.kind for a in alerts] == ["nan"]
    assert "step 3" in alerts[0].message and alerts[0].level == "error"
    assert m.observe([step(5, 5.0, "nan")], now=5.0) == []  # still NaN: no new alert
    assert m.observe([step(6, 6.0, 0.4)], now=6.0) == []
    again = m.observe([step(7, 7.0, float("inf"))], now=7.0)
    assert [a.kind for a in again] == ["nan"] and "inf" in again[0].message


def test_stall_needs_a_live_process_and_the_longer_of_60s_and_10x_median():
    m = AlertMonitor()
    m.observe([step(s, 100.0 + 2.0 * s) for s in range(1, 11)], now=120.0)  # a step every 2 s
    assert m.stall_limit() == STALL_MIN_S  # 10 x 2 s = 20 s < 60 s
    last = m.last_step_t
    assert m.check(last + 59, alive=True) == []
    assert m.check(last + 61, alive=False) == []  # a dead run is not "stalled"
    alerts = m.check(last + 61, alive=True)
    assert [a.kind for a in alerts] == ["stall"] and "61 s" in alerts[0].message
    assert m.check(last + 90, alive=True) == []  # once per stall
    m.observe([step(11, last + 95)], now=last + 95)  # a new step re-arms
    assert m.check(last + 95 + 61, alive=True)[0].kind == "stall"


def test_slow_steps_raise_the_stall_limit():
    m = AlertMonitor()
    m.observe([step(s, 30.0 * s) for s in range(1, 6)], now=150.0)  # GPT-2 Medium on CPU: 30 s a step
    assert m.stall_limit() == 300.0
    assert m.check(m.last_step_t + 200, alive=True) == []
    assert m.check(m.last_step_t + 301, alive=True)[0].kind == "stall"


def test_no_stall_before_the_first_step():
    m = AlertMonitor()
    assert m.check(1e9, alive=True) == []


def test_throughput_collapse_below_30_percent_of_the_running_median():
    m = AlertMonitor()
    assert m.observe([step(s, s, sps=100.0 + s % 3) for s in range(1, 21)], now=20.0) == []
    # A single slow step is noise (an eval, a checkpoint, a busy neighbour): no alert.
    assert m.observe([step(21, 21.0, sps=5.0), step(22, 22.0, sps=101.0)], now=22.0) == []
    # Sustained at 40 % of the median: slow, not a collapse.
    assert m.observe([step(s, s, sps=40.0) for s in range(23, 30)], now=30.0) == []
    m.observe([step(s, s, sps=100.0) for s in range(30, 40)], now=40.0)
    alerts = m.observe([step(s, s, sps=20.0) for s in range(40, 46)], now=46.0)
    assert [a.kind for a in alerts] == ["throughput"] and alerts[0].level == "warning"
    assert "20 samples/s" in alerts[0].message and alerts[0].step == 42  # the third slow reading tips it
    assert m.observe([step(s, s, sps=10.0) for s in range(46, 50)], now=50.0) == []  # still collapsed
    m.observe([step(s, s, sps=100.0) for s in range(50, 56)], now=56.0)  # recovered
    assert [a.kind for a in m.observe([step(s, s, sps=5.0) for s in range(56, 62)], now=62.0)] == ["throughput"]


def test_no_collapse_verdict_during_warm_up():
    m = AlertMonitor()
    # The first readings of a run are slow (allocation, compilation): not enough history to judge.
    assert m.observe([step(1, 1.0, sps=100.0), step(2, 2.0, sps=1.0)], now=2.0) == []


def test_other_events_and_missing_fields_are_ignored():
    m = AlertMonitor()
    evs = [{"type": "eval", "t": 1.0, "step": 1, "accuracy": 0.5}, {"type": "step", "t": 2.0, "step": 2},
           {"type": "heartbeat", "t": 3.0, "rank": 0}]
    assert m.observe(evs, now=3.0) == []
    assert m.last_step == 2


def test_a_straggler_is_flagged_against_the_median_step_time():
    from tui.runstate import RankInfo
    from tui.widgets.ranks_table import render_ranks, stragglers

    ranks = {r: RankInfo(rank=r, step=10, heard_t=100.0, step_time=0.05, host=f"node{r // 2}") for r in range(4)}
    assert stragglers(ranks) == []
    ranks[3].step_time = 0.2  # four times the others
    assert stragglers(ranks) == [3]
    text = render_ranks(ranks, now=101.0, live=True).plain
    assert "STRAGGLER" in text and text.count("STRAGGLER") == 1 and "node1" in text
    assert stragglers({0: RankInfo(rank=0, step_time=1.0)}) == []  # one rank has no one to lag behind


def test_an_elastic_restart_raises_one_warning_per_restart_and_a_first_start_none():
    m = AlertMonitor()
    assert m.observe([{"type": "start", "t": 1.0, "restart": 0, "resumed_from_step": 0}, step(1, 2.0)], 2.0) == []
    alerts = m.observe([{"type": "start", "t": 9.0, "restart": 1, "resumed_from_step": 50}, step(51, 10.0)], 10.0)
    assert [(a.kind, a.level, a.step) for a in alerts] == [("restart", "warning", 50)]
    assert "restart 1" in alerts[0].message and "continuing from step 50" in alerts[0].message
    again = m.observe([{"type": "start", "t": 20.0, "restart": 2, "resumed_from_step": 0}], 20.0)
    assert "starting again at step 1" in again[0].message
    assert m.observe([{"type": "start", "t": 30.0, "restart": True}], 30.0) == []  # not a count


def test_a_stepped_down_fast_path_raises_a_warning_with_the_reasons():
    m = AlertMonitor()
    quiet = {"type": "start", "t": 1.0, "fast_path": {"amp_dtype": "bfloat16", "fallbacks": []}}
    assert m.observe([quiet], now=1.0) == []
    start = {"type": "start", "t": 1.0, "fast_path": {"fallbacks": ["flash attention off: RuntimeError: kernel"]}}
    alerts = m.observe([start], now=1.0)
    assert [a.kind for a in alerts] == ["fast-path"] and alerts[0].level == "warning"
    assert "flash attention off" in alerts[0].message


def test_show_names_the_fast_path_step_downs(tmp_path):
    import json

    from core.export import fast_path_of

    lines = [{"type": "start", "t": 1.0, "fast_path": {"fallbacks": []}},
             {"type": "step", "t": 2.0, "step": 1},
             {"type": "start", "t": 3.0, "fast_path": {"fallbacks": ["fp32: out of memory"]}}]  # a restart
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
                                           + '{"type":"start", torn')
    assert fast_path_of({"run_dir": str(tmp_path)}) == {"fallbacks": ["fp32: out of memory"]}
    assert fast_path_of({"run_dir": str(tmp_path / "gone")}) is None
