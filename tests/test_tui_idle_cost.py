"""A dashboard that costs nothing when nothing changes (issue 14; bench/screen_cpu.py measures it).

Device readings are taken only while a screen that shows them is in front; a run's processes are found
by one process-table scan kept for seconds, not one a reading; unchanged text repaints nothing; the live
screen paints what arrived in one frame; the results' hidden progress bar does not animate.
"""

from __future__ import annotations

import threading

import pytest
from textual.app import App, ComposeResult
from textual.widgets import ProgressBar, Static

from core.presets import offline_preset
from core.store import Store
from tui.app import Gpt2App
from tui.format import update_text
from tui.screens.attach import AttachScreen
from tui.screens.configure import ConfigureScreen
from tui.screens.live import LiveScreen
from tui.services import RESCAN_S, RESCAN_STARTING_S, DeviceFeed, RunProcesses
from tui.testing import T0, FakeClock, FakeLauncher, FakeSampler, canned_events, wait_for
from tui.widgets.log_panel import LogPanel
from tui.widgets.progress_panel import ProgressPanel


@pytest.fixture
def anyio_backend():
    return "asyncio"


# ---------------------------------------------------------------------------- demand for readings
def test_the_feed_blocks_the_sampler_until_a_screen_wants_readings_and_wakes_it_to_stop():
    feed, stop = DeviceFeed(), threading.Event()
    got: list[float | None] = []
    t = threading.Thread(target=lambda: got.append(feed.next_interval(stop)))
    t.start()
    t.join(0.2)
    assert t.is_alive() and got == []  # nobody wants readings: the sampler sleeps, it does not poll
    a, b = object(), object()
    feed.want(a, 2.0)
    t.join(2)
    assert got == [2.0]
    feed.want(b, 0.5)
    assert feed.next_interval(stop) == 0.5  # the most eager screen sets the pace
    feed.release(b)
    feed.release(a)
    assert not feed.wanted
    t = threading.Thread(target=lambda: got.append(feed.next_interval(stop)))
    t.start()
    stop.set()
    feed.wake()
    t.join(2)
    assert not t.is_alive() and got[-1] is None


def test_a_runs_processes_are_scanned_once_per_rescan_period_not_once_per_reading():
    scans = []
    clock = FakeClock(0.0)
    procs = [("rank 0", 11), ("rank 1", 12), ("launcher", 10)]

    def list_processes(run):
        scans.append(run["id"])
        return list(procs)

    cache = RunProcesses(list_processes, clock=clock)
    run = {"id": "r1"}
    for _ in range(5):  # five readings within a second or two
        assert cache.get(run) == procs
        cache.alive("r1", {10, 11, 12})
        clock.advance(0.4)
    assert scans == ["r1"]
    clock.advance(RESCAN_S)
    cache.get(run)
    assert len(scans) == 2  # old enough: looked for again
    cache.alive("r1", {10, 11})  # rank 1 ended: the next reading scans again
    cache.get(run)
    assert len(scans) == 3


def test_a_starting_run_without_ranks_yet_is_looked_for_again_soon():
    scans = []
    clock = FakeClock(0.0)
    cache = RunProcesses(lambda run: scans.append(1) or [("launcher", 10)], clock=clock)
    cache.get({"id": "r"})
    clock.advance(RESCAN_STARTING_S + 0.1)
    cache.get({"id": "r"})
    assert len(scans) == 2


@pytest.mark.anyio
async def test_readings_stop_behind_the_history_and_resume_on_the_configure_screen(tmp_path):
    sampler = FakeSampler(gpus=0, samples=None)
    app = Gpt2App(store_path=tmp_path / "runs.db", launcher=FakeLauncher(), sampler=sampler, clock=FakeClock(),
                  poll_interval=0.02, sample_interval=0.02)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: sampler.calls >= 3)  # configure shows the devices: readings flow
        await pilot.press("f2")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfigureScreen))
        await pilot.pause(0.2)
        calls = sampler.calls
        await pilot.pause(0.5)  # 25 reading intervals
        assert sampler.calls <= calls + 1  # at most the one under way when the history opened
        assert not app.services.devices.wanted
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        await wait_for(pilot, lambda: sampler.calls >= calls + 3)
        screen = app.screen
        await wait_for(pilot, lambda: screen.report is app.services.devices.latest.report)


# ---------------------------------------------------------------------------- repaint only what changed
class StaticApp(App):
    def compose(self) -> ComposeResult:
        yield Static("", id="s")


@pytest.mark.anyio
async def test_update_text_with_the_same_text_repaints_nothing():
    from rich.text import Text

    app = StaticApp()
    async with app.run_test() as pilot:
        s = app.query_one(Static)
        calls = []
        real = s.update
        s.update = lambda *a, **k: (calls.append(k), real(*a, **k))  # type: ignore[method-assign]
        update_text(s, Text("loss 0.5", style="bold"))
        update_text(s, Text("loss 0.5", style="bold"))  # the same: nothing
        assert len(calls) == 1 and calls[0]["layout"] is True  # the first text: its size may change
        update_text(s, Text("loss 0.4", style="bold"))  # same shape: a repaint, no layout
        update_text(s, Text("loss 0.4", style="red"))  # same words, another style: a repaint
        assert [c["layout"] for c in calls] == [True, False, False]
        await pilot.pause()


@pytest.mark.anyio
async def test_the_live_screen_paints_what_arrived_in_its_next_frame(tmp_path):
    """Between frames the state takes every update but the panels are not touched; one paint shows it all."""
    fake = FakeLauncher(events=canned_events(1, 40))
    store = Store(tmp_path / "runs.db")
    run = fake.launch(store, offline_preset())
    store.close()
    app = Gpt2App(store_path=tmp_path / "runs.db", launcher=fake, sampler=FakeSampler(gpus=2, samples=None),
                  clock=FakeClock(T0 + 25), poll_interval=0.02, sample_interval=0.02)
    async with app.run_test(size=(160, 48)) as pilot:
        # The running run makes the app offer to attach at start; a late offer would cover the live screen.
        await wait_for(pilot, lambda: isinstance(app.screen, AttachScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AttachScreen))
        screen = LiveScreen(run, app.services, frame_s=3600)  # no timed frame in this test
        await app.push_screen(screen)
        progress = screen.query_one(ProgressPanel)
        await wait_for(pilot, lambda: progress.state.step == 40)  # the first update paints at once
        frames = screen.frames
        fake.emit(*canned_events(41, 50, first=False))
        fake.log("a line between frames")
        await wait_for(pilot, lambda: screen.state.step == 50)
        await pilot.pause(0.2)
        assert progress.state.step == 40 and screen.frames == frames  # held for the next frame
        assert "a line between frames" not in screen.query_one(LogPanel).rank0_lines
        screen.paint()
        assert progress.state.step == 50 and "step 50 / 120" in str(progress.render())
        assert "a line between frames" in screen.query_one(LogPanel).rank0_lines
        assert app.screen is screen, app.screen_stack
        assert app.services.devices.wanted  # the live screen in front shows devices
        await pilot.pause()


@pytest.mark.anyio
async def test_the_results_progress_bar_does_not_animate_while_hidden(tmp_path):
    from tui.screens.results import ResultsScreen
    from tui.testing import fake_services

    Store(tmp_path / "runs.db").close()
    services = fake_services(tmp_path / "runs.db")

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ResultsScreen("nope", services, refresh_s=0))

    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        bar = app.screen.query_one("#eval-progress", ProgressBar)
        assert not bar.display
        assert bar.total is not None  # determinate: no 15 Hz animation timer behind a hidden bar


class ChartApp(App):
    def compose(self) -> ComposeResult:
        from tui.widgets.chart import ChartWidget

        yield ChartWidget(refresh_interval=0, id="c")


@pytest.mark.anyio
async def test_a_chart_whose_picture_did_not_change_is_not_repainted():
    from tui.widgets.chart import ChartWidget

    app = ChartApp()
    async with app.run_test(size=(60, 12)) as pilot:
        chart = app.query_one(ChartWidget)
        chart.add_series("loss", "red")
        chart.set_x_range(0, 1000)
        chart.extend("loss", [0, 500], [1.0, 0.0])
        chart.flush()
        await pilot.pause()
        before = chart.plain_lines()
        refreshes = []
        real = chart.refresh
        chart.refresh = lambda *a, **k: (refreshes.append(1), real(*a, **k))  # type: ignore[method-assign]
        chart.extend("loss", [501], [0.0])  # the same dot column, the same value: the same picture
        chart.flush()
        assert refreshes == [] and chart.plain_lines() == before
        chart.extend("loss", [900], [0.5])  # a new column: a new picture
        chart.flush()
        assert refreshes == [1] and chart.plain_lines() != before
