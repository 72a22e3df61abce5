"""LiveScreen: one run as it happens. Charts, progress, devices, ranks, logs and alerts.

One thread worker per screen follows the run (tui.follower.RunFollower: the store takes every event;
the screen keeps its own cursor) and posts RunUpdated. Updates and device readings go into the state and
the charts' buffers as they come; the screen paints them in one frame a second (``FRAME_S``), together
with what ages with time (elapsed, heartbeat ages). Every panel repainted on its own beat cost ~4 frames
a second and 4.5-5.4 % of a core at 160 x 48; one joint frame is Textual's compositor once
(bench/screen_cpu.py). An end, an alert or a stop paints at once. Stop asks for a confirmation, then
runs the launcher's graceful stop on a thread.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from tui.follower import RunFollower
from tui.messages import DeviceSample, DevicesSampled, ResultsRequested, RunUpdated
from tui.runstate import RunState
from tui.screens.confirm import ConfirmScreen
from tui.services import Services
from tui.widgets.alerts_panel import AlertsPanel
from tui.widgets.device_panel import DevicePanel
from tui.widgets.log_panel import LogPanel
from tui.widgets.progress_panel import ProgressPanel
from tui.widgets.ranks_table import RanksTable
from tui.widgets.run_charts import RunCharts

# Seconds between the live screen's frames: what a person reads (step, loss, ETA) moves at this pace.
FRAME_S = 1.0
# The charts, the largest region (~40 % of a frame's CPU), repaint every this many frames (every 2 s,
# as nvitop's default refresh): a curve of hundreds of steps does not need a new picture every second.
CHART_FRAMES = 2
# Device readings for this screen every this many ``sample_interval``s (2 s, nvitop's default): each
# reading repaints the device panel (two sparklines, the core bars, the process table).
DEVICE_EVERY = 2


class LiveScreen(Screen[None]):
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("r", "results", "Results"),
        Binding("m", "zoom", "Zoom panel"),
        Binding("escape", "unzoom", "Unzoom", show=False),
    ]
    TITLE = "gpt2-tui"

    def __init__(self, run: dict[str, Any], services: Services, *, frame_s: float = FRAME_S):
        super().__init__()
        self.frame_s = frame_s
        self.frames = 0
        self._pending_logs: tuple[list[str], list[str]] = ([], [])
        self._pending_samples: list[DeviceSample] = []
        self.services = services
        self.run = run
        self.run_id: str = run["id"]
        self.state = RunState()
        self.status: str = run.get("status") or "running"
        self.stopping = False
        self.finished = self.status != "running"
        self.updates = 0
        self._device_seq = 0
        self._wake = threading.Event()
        self.sub_title = f"{run.get('name') or ''} · {self.run_id}"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield ProgressPanel(id="progress")
        with Container(id="live-body"):
            yield RunCharts(refresh_interval=0, id="charts", classes="panel")  # painted in this screen's frame
            with Vertical(id="live-side"):
                yield DevicePanel(id="devices", classes="panel")
                yield RanksTable(id="ranks", classes="panel")
                yield AlertsPanel(id="alerts", classes="panel")
            yield LogPanel(id="logs", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        for pid, title in (("charts", "loss · learning rate · throughput"), ("devices", "devices"),
                           ("ranks", "ranks"), ("alerts", "alerts"), ("logs", "logs")):
            self.query_one(f"#{pid}").border_title = title
        self.query_one(DevicePanel).set_devices(self.run.get("devices"))
        self.services.devices.watch(self.run)
        self._catch_up()
        self.paint(charts=True)
        self.set_interval(self.frame_s, self.paint)
        self._follow()

    def on_unmount(self) -> None:
        self._wake.set()
        self.services.devices.unwatch(self.run_id)
        self.services.devices.release(self)

    def on_screen_resume(self) -> None:
        self.services.devices.want(self, self.services.sample_interval * DEVICE_EVERY)
        self._catch_up()

    def on_screen_suspend(self) -> None:
        self.services.devices.release(self)

    def _catch_up(self) -> None:
        """Readings taken while another screen was in front (the app hands them to the one in front)."""
        for sample in list(self.services.devices.history):
            self._push_devices(sample)

    @property
    def now(self) -> float:
        return float(self.services.clock())

    # ------------------------------------------------------------------ following
    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def _follow(self) -> None:
        worker = get_current_worker()
        services = self.services
        follower = RunFollower(services.store_path, self.run_id, services.launcher, clock=services.clock)
        try:
            while not worker.is_cancelled:
                update = follower.poll()
                if update is not None:
                    self.post_message(RunUpdated(update))
                if follower.finished:
                    return
                if not follower.behind:
                    self._wake.wait(services.poll_interval)
                    self._wake.clear()
        finally:
            follower.close()

    def on_run_updated(self, event: RunUpdated) -> None:
        u = event.update
        self.updates += 1
        self.state = u.state
        charts = self.query_one(RunCharts)
        charts.set_total_steps(u.state.total_steps)
        charts.extend(u.series)
        self._pending_logs[0].extend(u.log_lines)
        self._pending_logs[1].extend(u.error_lines)
        if u.alerts:
            self.query_one(AlertsPanel).add(u.alerts)
            self.app.bell()
            a = u.alerts[-1]  # the panel lists them all; one toast per batch is enough
            more = f" (+{len(u.alerts) - 1} more in the alerts panel)" if len(u.alerts) > 1 else ""
            self.notify(a.message + more, title=f"alert: {a.kind}",
                        severity="error" if a.level == "error" else "warning")
        if u.run is not None:
            self.run = u.run
            if not self.stopping or u.run["status"] != "running":
                self.status = u.run["status"]
        if u.finished and not self.finished:
            self._finish()
        if self.updates == 1 or u.finished or u.alerts:
            self.paint(charts=True)  # the first numbers, an end or an alert: now, not at the next frame

    def paint(self, charts: bool = False) -> None:
        """One frame: the log lines and device readings held since the last one, the numbers, and the
        charts every ``CHART_FRAMES`` frames (or when ``charts``)."""
        self.frames += 1
        lines, errors = self._pending_logs
        if lines or errors:
            self._pending_logs = ([], [])
            self.query_one(LogPanel).add(lines, errors)
        samples, self._pending_samples = self._pending_samples, []
        for sample in samples:
            self.query_one(DevicePanel).push(sample.report, sample.procs.get(self.run_id))
        self.refresh_panels()
        if charts or self.frames % CHART_FRAMES == 0:
            self.query_one(RunCharts).refresh_now()

    def _finish(self) -> None:
        self.finished = True
        self.stopping = False
        error = self.run.get("error")
        if self.status == "failed" and error:
            self._pending_logs[1].extend(f"run failed: {line}" for line in str(error).splitlines()[:40])
        severity: SeverityLevel = "information" if self.status in ("finished", "stopped") else "error"
        self.notify(f"run {self.run_id} {self.status}", title="Run ended", severity=severity)

    def refresh_panels(self) -> None:
        now = self.now
        status = "stopping" if self.stopping and self.status == "running" else self.status
        reason = None
        if self.finished:
            end = self.state.end or {}
            reason = str(end.get("reason") or self.run.get("error") or "") or None
        self.query_one(ProgressPanel).show(self.state, status, now, reason)
        self.query_one(RanksTable).show(self.state.ranks, now, live=not self.finished)

    # ------------------------------------------------------------------ devices
    def on_devices_sampled(self, event: DevicesSampled) -> None:
        self._push_devices(event.sample)

    def _push_devices(self, sample: DeviceSample) -> None:
        if sample.seq <= self._device_seq:  # already had it from the app's history
            return
        self._device_seq = sample.seq
        self._pending_samples.append(sample)  # drawn in the next frame

    # ------------------------------------------------------------------ actions
    def action_stop(self) -> None:
        if self.finished or self.status != "running":
            self.notify(f"The run is not running ({self.status}).")
            return
        if self.stopping:
            self.notify("Already stopping: waiting for the trainer to save a checkpoint.")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.stopping = True
                self.refresh_panels()
                self._stop()

        self.app.push_screen(ConfirmScreen(
            f"Stop run {self.run_id}?\n\nThe trainer saves a checkpoint at its next step and exits; after "
            "a grace period the processes are signalled.", yes="Stop"), answer)

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def _stop(self) -> None:
        with self.services.store() as store:
            run = store.get_run(self.run_id) or self.run
            status = self.services.launcher.stop(store, run)
        self._wake.set()  # the follower looks now, not at its next tick, and reports the end
        if status == "running":  # the launcher could not stop it: say so (the follower would not)
            self.app.call_from_thread(self.notify, f"run {self.run_id} is still running", severity="error")

    def action_detach(self) -> None:
        if self.status == "running":
            self.notify(f"Detached: {self.run_id} keeps running. `gpt2-tui attach {self.run_id}` comes back.")
        self.app.pop_screen()

    def action_results(self) -> None:
        self.post_message(ResultsRequested(self.run_id))

    def action_zoom(self) -> None:
        """Fill the screen with the focused panel (the charts when none is focused); again to restore."""
        if self.maximized is not None:
            self.minimize()
            return
        chain = list(self.focused.ancestors_with_self) if self.focused is not None else []
        panel = next((w for w in chain if isinstance(w, Widget) and w.has_class("panel")), None)
        self.maximize(panel or self.query_one(RunCharts), container=False)

    def action_unzoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
