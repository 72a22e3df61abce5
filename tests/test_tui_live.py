"""The live screen in a Pilot, fed by a fake launcher that writes canned events into a real
events.jsonl: panels update, evals land, alerts ring, stop / detach / attach work."""

from __future__ import annotations

import numpy as np
import pytest

from core.presets import offline_preset
from core.store import Store
from tui.app import Gpt2App
from tui.follower import FollowUpdate
from tui.messages import RunUpdated
from tui.runstate import EVAL_ACC, LOSS, LOSS_EMA, LR, SAMPLES, TOKENS, RunState, SeriesDelta
from tui.screens.attach import AttachScreen
from tui.screens.configure import ConfigureScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.live import LiveScreen
from tui.testing import T0, FakeClock, FakeLauncher, FakeSampler, canned_events, wait_for
from tui.widgets.alerts_panel import AlertsPanel
from tui.widgets.device_panel import HISTORY, DevicePanel, GpuCard
from tui.widgets.log_panel import LogPanel
from tui.widgets.progress_panel import ProgressPanel
from tui.widgets.ranks_table import RanksTable
from tui.widgets.run_charts import RunCharts


@pytest.fixture
def anyio_backend():
    return "asyncio"


def started_run(tmp_path, events=None, devices="gpu:0,1"):
    """A run 'in progress' in a temp store, as if launched before the dashboard opened."""
    fake = FakeLauncher(events=canned_events(1, 40) if events is None else events, devices=devices)
    store = Store(tmp_path / "runs.db")
    fake.launch(store, offline_preset())
    store.close()
    return fake


def make_app(tmp_path, fake, clock=None, attach=None, gpus=2, samples=5):
    return Gpt2App(store_path=tmp_path / "runs.db", launcher=fake, sampler=FakeSampler(gpus=gpus, samples=samples),
                   clock=clock or FakeClock(T0 + 25), attach=attach, poll_interval=0.02, sample_interval=0.02)


async def live(pilot) -> LiveScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen) and pilot.app.screen.updates > 0)
    return pilot.app.screen


@pytest.mark.anyio
async def test_panels_update_from_events_and_an_eval_lands(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        charts, progress = screen.query_one(RunCharts), screen.query_one(ProgressPanel)
        await wait_for(pilot, lambda: progress.state.step == 40)
        assert progress.state.total_steps == 120 and progress.status == "running"
        assert "step 40 / 120" in str(progress.render()) and "ETA 00:40" in str(progress.render())
        for name in (LOSS, LOSS_EMA, LR, SAMPLES, TOKENS):
            assert charts.series_len(name) == 40
        assert charts.series_len(EVAL_ACC) == 2  # evals at steps 20 and 40
        assert charts.charts["chart-loss"].series(LOSS).x_max == 40
        ranks = screen.query_one(RanksTable)
        assert sorted(ranks.ranks) == [0, 1] and ranks.silent == []
        assert "fake run started" in " ".join(screen.query_one(LogPanel).rank0_lines)
        # More steps arrive, then an evaluation at step 60.
        fake.emit(*canned_events(41, 60, first=False))
        fake.log("step 60: eval accuracy 0.70")
        await wait_for(pilot, lambda: progress.state.step == 60)
        assert charts.series_len(LOSS) == 60
        await wait_for(pilot, lambda: charts.series_len(EVAL_ACC) == 3)
        assert progress.state.evals[-1].step == 60 and progress.state.best_accuracy == pytest.approx(0.7)
        assert "best acc 0.7000" in str(progress.render())
        await wait_for(pilot, lambda: "step 60: eval accuracy 0.70" in screen.query_one(LogPanel).rank0_lines)
        # The chart draws what it holds: braille dots and the accuracy marker.
        await pilot.pause(0.3)
        text = "\n".join(charts.charts["chart-loss"].plain_lines())
        assert "•" in text and any(0x2800 < ord(c) <= 0x28FF for c in text)


@pytest.mark.anyio
async def test_device_panel_shows_the_runs_gpus_and_processes(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id, samples=None)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        panel = screen.query_one(DevicePanel)
        # Readings taken before the screen opened are its history too.
        assert panel.samples >= 1
        await wait_for(pilot, lambda: "rank 0" in str(panel.query_one("#proc-table").render()))
        cards = list(panel.query(GpuCard))
        assert [c.index for c in cards] == [0, 1]
        # Every reading is kept, up to the sparkline's length (a slow box takes more than that before "rank 0").
        assert len(cards[0].util.history) == min(panel.samples, HISTORY)
        assert cards[0].util.spark.data == list(cards[0].util.history)
        assert "NVIDIA H200" in str(cards[0].title.render())
        procs = str(panel.query_one("#proc-table").render())
        assert "4242" in procs and "launcher" in procs


@pytest.mark.anyio
async def test_cpu_run_shows_cores_and_ranks_processes(tmp_path):
    fake = started_run(tmp_path, devices="cpu:2")
    app = make_app(tmp_path, fake, attach=fake.run_id, gpus=0, samples=None)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        panel = screen.query_one(DevicePanel)
        await wait_for(pilot, lambda: panel.samples >= 4 and "rank 1" in str(panel.query_one("#proc-table").render()))
        assert panel.kind == "cpu" and not panel.query_one("#gpu-cards").display
        bars = str(panel.query_one("#core-bars").render())
        assert bars.count("%") == 8  # one reading per core
        assert len(panel.cpu_load.history) == panel.samples
        assert "rank 1" in str(panel.query_one("#proc-table").render())


@pytest.mark.anyio
async def test_nan_loss_raises_an_alert_and_rings(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        alerts = screen.query_one(AlertsPanel)
        assert alerts.alerts == []
        fake.emit(*canned_events(41, 45, first=False, nan_at=43))
        await wait_for(pilot, lambda: alerts.alerts)
        assert [a.kind for a in alerts.alerts] == ["nan"] and "step 43" in alerts.alerts[0].message
        assert "loss is nan" in str(alerts.render()) and alerts.has_class("-has-alerts")
        assert bells
        assert screen.query_one(RunCharts).charts["chart-loss"].series(LOSS).skipped == 1


@pytest.mark.anyio
async def test_a_silent_rank_is_flagged(tmp_path):
    fake = started_run(tmp_path)
    clock = FakeClock(T0 + 25)
    app = make_app(tmp_path, fake, clock=clock, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        ranks = screen.query_one(RanksTable)
        await wait_for(pilot, lambda: sorted(ranks.ranks) == [0, 1])
        assert ranks.silent == []
        clock.advance(60)  # last heard at T0 + 20: now 65 s ago
        await wait_for(pilot, lambda: ranks.silent == [0, 1], timeout=3)
        assert "SILENT" in str(ranks.render())


@pytest.mark.anyio
async def test_stop_asks_first_then_stops_and_shows_the_status(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # changed my mind
        await pilot.pause()
        assert app.screen is screen and fake.stopped == []
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.finished)
        assert fake.stopped == [fake.run_id]
        assert screen.status == "stopped"
        assert "STOPPED" in str(screen.query_one(ProgressPanel).render())
        store = Store(tmp_path / "runs.db")
        assert store.get_run(fake.run_id)["status"] == "stopped"
        store.close()
        await pilot.press("s")  # not running any more: nothing to confirm
        await pilot.pause()
        assert app.screen is screen and fake.stopped == [fake.run_id]


@pytest.mark.anyio
async def test_a_finished_run_shows_its_final_status(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        fake.emit(*canned_events(41, 120, first=False))
        fake.emit({"type": "end", "t": T0 + 61, "status": "finished", "reason": "done"})
        await wait_for(pilot, lambda: screen.finished)
        progress = screen.query_one(ProgressPanel)
        assert screen.status == "finished" and progress.state.step == 120
        assert "FINISHED" in str(progress.render()) and "100%" in str(progress.render())
        assert any("finished" in n.message for n in app._notifications)


@pytest.mark.anyio
async def test_a_failed_run_shows_other_ranks_errors(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        fake.log("Traceback (most recent call last):", "RuntimeError: rank 1 ran out of memory", rank=1)
        fake.emit({"type": "end", "t": T0 + 30, "status": "failed", "reason": "rank 1 died"})
        await wait_for(pilot, lambda: screen.finished)
        assert screen.status == "failed"
        errors = screen.query_one(LogPanel).error_lines
        assert "rank 1: RuntimeError: rank 1 ran out of memory" in errors
        assert "rank 1 died" in str(screen.query_one(ProgressPanel).render())


@pytest.mark.anyio
async def test_detach_then_attach_again_from_the_running_list(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        await live(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfigureScreen)
        store = Store(tmp_path / "runs.db")
        assert store.get_run(fake.run_id)["status"] == "running"  # detach leaves it running
        store.close()
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, AttachScreen))
        await pilot.press("enter")
        screen = await live(pilot)
        assert screen.run_id == fake.run_id
        await wait_for(pilot, lambda: screen.state.step == 40)


@pytest.mark.anyio
async def test_startup_offers_to_attach_to_runs_in_progress(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake)  # no attach=: the dashboard asks
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, AttachScreen))
        assert [r["id"] for r in app.screen.runs] == [fake.run_id]
        await pilot.press("enter")
        screen = await live(pilot)
        assert screen.run_id == fake.run_id


@pytest.mark.anyio
async def test_escape_on_the_attach_offer_leaves_the_runs_alone(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, AttachScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfigureScreen) and fake.stopped == []


@pytest.mark.anyio
async def test_attach_to_an_unknown_run_says_so(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach="no-such-run")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: any("no-such-run" in n.message for n in app._notifications))
        assert isinstance(app.screen, ConfigureScreen)


@pytest.mark.anyio
async def test_results_hook_and_zoom(tmp_path):
    fake = started_run(tmp_path)
    app = make_app(tmp_path, fake, attach=fake.run_id)
    opened = []
    app.open_results = opened.append
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await live(pilot)
        await pilot.press("r")
        assert opened == [fake.run_id]
        await pilot.press("m")
        assert screen.maximized is screen.query_one(RunCharts)
        await pilot.press("m")
        assert screen.maximized is None


@pytest.mark.anyio
async def test_a_million_points_are_kept_and_drawn(tmp_path):
    """A long run's history arrives as a few big updates; the charts keep every point and draw a
    decimated view whose size depends on the panel, not on the point count."""
    fake = started_run(tmp_path, events=canned_events(1, 2))
    app = make_app(tmp_path, fake, attach=fake.run_id)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await live(pilot)
        charts = screen.query_one(RunCharts)
        n = 1_000_000
        xs = np.arange(3, n + 3, dtype=float)
        state = RunState(total_steps=n + 2, step=n + 2)
        for lo in range(0, n, 250_000):
            part = SeriesDelta({LOSS: (xs[lo:lo + 250_000], 0.3 + 0.4 * np.exp(-xs[lo:lo + 250_000] / 2e5))})
            screen.post_message(RunUpdated(FollowUpdate(run_id=fake.run_id, state=state, series=part)))
        await wait_for(pilot, lambda: charts.series_len(LOSS) == n + 2)
        await pilot.pause(0.4)
        lines = charts.charts["chart-loss"].plain_lines()
        assert lines and "1M" in lines[-1]  # x axis up to a million steps


def test_updates_coalesce_without_losing_points():
    """When the UI falls behind, a pending RunUpdated absorbs the older one (toolong-style), lossless."""
    st = RunState()
    a = RunUpdated(FollowUpdate("r", st.snapshot(), st.apply(canned_events(1, 5)), log_lines=["a"]))
    b = RunUpdated(FollowUpdate("r", st.snapshot(), st.apply(canned_events(6, 8, first=False)), log_lines=["b"]))
    other = RunUpdated(FollowUpdate("other-run", st.snapshot()))
    assert not a.can_replace(other)
    assert a.can_replace(b)
    assert list(b.update.series[LOSS][0]) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert b.update.log_lines == ["a", "b"]
