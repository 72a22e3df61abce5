"""Gpt2App: wiring only. Screens live in tui/screens/, widgets in tui/widgets/, logic in pure modules.

Everything slow happens in thread workers started after the first frame: opening the store
(sqlite_utils imports pandas, ~0.5 s), reconciling runs left running, device detection and sampling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tui.launcher import Launcher
from tui.messages import CloneRequested, DeviceSample, DevicesSampled, RunLaunched
from tui.navigation import Navigator
from tui.screens.attach import AttachScreen
from tui.screens.configure import ConfigureScreen
from tui.screens.help import HelpScreen
from tui.services import DeviceSource, RunProcesses, Services


class Gpt2App(Navigator):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses elsewhere find it too
    TITLE = "gpt2-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", key_display="?/f1"),
        Binding("f2", "history", "History", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, store_path: str | Path | None = None, launcher: Launcher | None = None,
                 sampler: DeviceSource | None = None, clock: Callable[[], float] = time.time,
                 attach: str | None = None, poll_interval: float = 1.0, sample_interval: float = 1.0, *,
                 services: Services | None = None):
        """Either ``services`` whole, or the keywords it is built from (``Services.for_store``)."""
        super().__init__(services or Services.for_store(
            store_path, launcher=launcher, sampler=sampler, clock=clock, poll_interval=poll_interval,
            sample_interval=sample_interval))
        self.attach = attach
        self.running_runs: list[dict[str, Any]] | None = None
        self._stop_sampling = threading.Event()

    def on_mount(self) -> None:
        self.push_screen(ConfigureScreen(self.services))
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        self._sample_devices()
        self._open_store()

    def on_unmount(self) -> None:
        self._stop_sampling.set()
        self.services.devices.wake()

    # ------------------------------------------------------------------ store, reconcile, attach
    @work(thread=True, exclusive=True, group="store", exit_on_error=False)
    def _open_store(self) -> None:
        with self.services.store() as store:
            running = []
            for run in store.running_runs():
                run = self.services.launcher.reconcile(store, run["id"])
                if run["status"] == "running":
                    running.append(run)
            target = store.find_run(self.attach) if self.attach else None
        self.call_from_thread(self._store_ready, running, target)

    def _store_ready(self, running: list[dict[str, Any]], target: dict[str, Any] | None) -> None:
        self.running_runs = running
        if self.attach:
            if target is None:
                self.notify(f"No run matches {self.attach!r}; `gpt2-tui runs` lists them.", severity="error",
                            timeout=10)
            else:
                self.open_live(target)
            return
        if running:
            self.push_screen(AttachScreen(running), self._attach_chosen)

    def _attach_chosen(self, run_id: str | None) -> None:
        for run in self.running_runs or []:
            if run["id"] == run_id:
                self.open_live(run)

    def action_show_running(self) -> None:
        self._list_running()

    @work(thread=True, exclusive=True, group="store", exit_on_error=False)
    def _list_running(self) -> None:
        with self.services.store() as store:
            running = [self.services.launcher.reconcile(store, r["id"]) for r in store.running_runs()]
        running = [r for r in running if r["status"] == "running"]
        self.call_from_thread(self._show_running, running)

    def _show_running(self, running: list[dict[str, Any]]) -> None:
        self.running_runs = running
        if not running:
            self.notify("No run is in progress.")
            return
        self.push_screen(AttachScreen(running), self._attach_chosen)

    def action_history(self) -> None:
        self.open_history()

    def on_clone_requested(self, event: CloneRequested) -> None:
        """History's Clone: back to the configure screen with the run's config in the form."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ConfigureScreen):
            self.pop_screen()
        if isinstance(self.screen, ConfigureScreen):
            self.screen.load_config(event.config.replace(run_name=f"{event.config.run_name or event.run_id} (clone)"),
                                    f"a clone of run {event.run_id}")

    def on_run_launched(self, event: RunLaunched) -> None:
        self.open_live(event.run)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            self.notify(f"{type(err).__name__}: {err}", title=f"{event.worker.group} failed", severity="error",
                        timeout=15)

    # ------------------------------------------------------------------ devices
    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def _sample_devices(self) -> None:
        """Readings while a screen in front wants them (``DeviceFeed.want``), at the interval it asks;
        none at all behind the history, a run's page or the results (issue 14: idle screens <= 1 %)."""
        worker = get_current_worker()
        services = self.services
        feed = services.devices
        sampler = None
        run_procs = RunProcesses(services.launcher.processes)
        seq = 0
        while not worker.is_cancelled and not self._stop_sampling.is_set():
            interval = feed.next_interval(self._stop_sampling)
            if interval is None:
                return
            if sampler is None:  # built on first demand: NVML and psutil are not needed before
                sampler = services.sampler_factory()
            report = sampler.sample()
            if report is None:  # a scripted source ran out (tests, replays)
                return
            procs = {}
            watched = dict(feed.watched)
            run_procs.keep_only(set(watched))
            for run_id, run in watched.items():
                try:
                    labelled = run_procs.get(run)
                    stats = {s.pid: s for s in sampler.process_stats([pid for _, pid in labelled])}
                except Exception:  # a process table hiccup costs this reading its process list, not the panel
                    continue
                run_procs.alive(run_id, set(stats))
                procs[run_id] = [(label, stats[pid]) for label, pid in labelled if pid in stats]
            seq += 1
            self.post_message(DevicesSampled(DeviceSample(report, seq, procs)))
            feed.pause(interval, self._stop_sampling)

    def on_devices_sampled(self, event: DevicesSampled) -> None:
        """Kept for every screen (``DeviceFeed``), handed to the one in front only: a screen behind
        catches up when it comes back (a panel updated behind a screen costs a whole-screen repaint of
        the one in front: 2 a second on the live screen, bench/screen_cpu.py)."""
        self.services.devices.add(event.sample)
        stack = self.screen_stack  # empty while the app shuts down
        if stack and hasattr(stack[-1], "on_devices_sampled"):
            stack[-1].post_message(DevicesSampled(event.sample))

    # ------------------------------------------------------------------ help and the command palette
    def screen_keys(self, screen: Screen[Any]) -> list[tuple[str, str]]:
        keys, seen = [], set()
        for binding in [*getattr(screen, "BINDINGS", []), *self.BINDINGS]:
            if not isinstance(binding, Binding) or not binding.description or binding.description in seen:
                continue
            seen.add(binding.description)
            keys.append((binding.key_display or binding.key.split(",")[0], binding.description))
        keys.append(("ctrl+p", "Command palette"))
        keys.append(("tab / shift+tab", "Next / previous field or panel"))
        keys += getattr(screen, "HELP_NOTES", [])  # a screen's own notes (the history's filter syntax)
        return keys

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = {"ConfigureScreen": "configure", "LiveScreen": "live run"}.get(type(self.screen).__name__, "gpt2-tui")
        self.push_screen(HelpScreen(title, self.screen_keys(self.screen)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description and binding.show:
                key = self.get_key_display(binding)
                yield SystemCommand(binding.description, f"{binding.description} ({key})",
                                    partial(screen.run_action, binding.action))
        yield SystemCommand("Help", "The keys of this screen (?)", self.action_help)


def main(attach: str | None = None) -> int:
    """The dashboard; with ``attach`` (a run id, prefix, name or 'last'), straight on that run's live screen."""
    app = Gpt2App(attach=attach)
    app.run()
    return int(app.return_code or 0)
