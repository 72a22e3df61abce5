"""Following one run for the live screen, on a worker thread. Pure, no Textual.

Each ``poll()`` takes the next bounded chunk of typed events from a ``core.watch.Watcher`` (which feeds
the store first: it takes every event, idempotently), folds them into a RunState, checks alerts and
tails the worker logs. It returns a FollowUpdate, or None
when nothing changed. Updates merge (``merged``) so a UI that falls behind coalesces them without
losing a point.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store import Store
from core.watch import CHUNK_BYTES, Watcher
from tui.alerts import Alert, AlertMonitor
from tui.launcher import Launcher
from tui.logtail import WorkerLogs
from tui.runstate import RunState, SeriesDelta

# Reconcile (process checks) every this many polls (~4 s at the live screen's 1 s polls), not every poll.
RECONCILE_EVERY = 4


@dataclass
class FollowUpdate:
    run_id: str
    state: RunState
    series: SeriesDelta = field(default_factory=SeriesDelta)
    new_events: int = 0
    log_lines: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    run: dict[str, Any] | None = None
    finished: bool = False
    bad_lines: int = 0

    def merged(self, newer: FollowUpdate) -> FollowUpdate:
        """This update followed by ``newer``, as one: lists and points concatenate, state is the newer."""
        return FollowUpdate(
            run_id=newer.run_id, state=newer.state, series=self.series.merged(newer.series),
            new_events=self.new_events + newer.new_events, log_lines=self.log_lines + newer.log_lines,
            error_lines=self.error_lines + newer.error_lines, alerts=self.alerts + newer.alerts,
            run=newer.run or self.run, finished=self.finished or newer.finished,
            bad_lines=newer.bad_lines,
        )


class RunFollower:
    def __init__(self, store_path: str | os.PathLike[str], run_id: str, launcher: Launcher,
                 clock: Callable[[], float] = time.time, chunk_bytes: int = CHUNK_BYTES):
        self.store_path = Path(store_path)
        self.run_id = run_id
        self.launcher = launcher
        self.clock = clock
        self.chunk_bytes = chunk_bytes
        self.state = RunState()
        self.alerts = AlertMonitor()
        self.behind = False  # more events are waiting than one poll reads: poll again without sleeping
        self.finished = False
        self._store: Store | None = None
        self._watcher: Watcher | None = None
        self._logs: WorkerLogs | None = None
        self._polls = 0
        self._last_status: str | None = None

    @property
    def store(self) -> Store:
        if self._store is None:  # opened on the thread that polls: one connection per thread
            self._store = Store(self.store_path)
        return self._store

    @property
    def watcher(self) -> Watcher:
        if self._watcher is None:
            self._watcher = Watcher(self.store, self.run_id, chunk_bytes=self.chunk_bytes)
        return self._watcher

    @property
    def bad_lines(self) -> int:
        return self._watcher.bad_lines if self._watcher is not None else 0

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._watcher = None

    def poll(self) -> FollowUpdate | None:
        store = self.store
        self._polls += 1
        batch = self.watcher.poll()
        run: Any = batch.run  # a RunRow; the launcher protocol hands back plain dicts
        self.behind = batch.behind
        events = batch.events
        delta = self.state.apply(events)
        now = self.clock()
        alerts = self.alerts.observe(events, now)
        if self._logs is None:
            self._logs = WorkerLogs(Path(run["run_dir"]) / "logs")
        log_lines, error_lines = self._logs.poll()
        if run["status"] == "running" and not self.behind and (
                self._polls % RECONCILE_EVERY == 1 or self.state.end is not None):
            run = self.launcher.reconcile(store, self.run_id)
        finished = run["status"] != "running" and not self.behind
        alerts += self.alerts.check(now, alive=run["status"] == "running" and not self.behind)
        status_changed = run["status"] != self._last_status
        self._last_status = run["status"]
        if finished and not self.finished:
            self.finished = True
            # The launcher records its exit code a moment after the end event; take it if it is there.
            run = self.launcher.reconcile(store, self.run_id)
        elif not (events or log_lines or error_lines or alerts or status_changed or batch.bad_lines):
            return None
        return FollowUpdate(
            run_id=self.run_id, state=self.state.snapshot(), series=delta, new_events=len(events),
            log_lines=log_lines, error_lines=error_lines, alerts=alerts, run=run, finished=finished,
            bad_lines=self.bad_lines,
        )
