"""Following one run for the live screen, on a worker thread. Pure, no Textual.

Each ``poll()`` ingests what is new into the store (``core.follow.sync_events``: the store takes every
event, idempotently), reads the screen's own cursor over events.jsonl in bounded chunks, folds the
events into a RunState, checks alerts and tails the worker logs. It returns a FollowUpdate, or None
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

from core.events import read_from
from core.follow import events_path, sync_events
from core.store import Store
from tui.alerts import Alert, AlertMonitor
from tui.launcher import Launcher
from tui.logtail import WorkerLogs
from tui.runstate import RunState, SeriesDelta

# 8 MB of events (~50,000 step lines) per poll: a million-step history arrives in ~20 updates, each
# folded in well under a second, instead of one multi-second stall.
CHUNK_BYTES = 8 << 20
# Reconcile (process checks: a scan of the process table) every this many polls, not every 0.5 s.
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
        self.offset = 0
        self.bad_lines = 0
        self.behind = False  # more events are waiting than one poll reads: poll again without sleeping
        self.finished = False
        self._store: Store | None = None
        self._logs: WorkerLogs | None = None
        self._polls = 0
        self._last_status: str | None = None

    @property
    def store(self) -> Store:
        if self._store is None:  # opened on the thread that polls: one connection per thread
            self._store = Store(self.store_path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def poll(self) -> FollowUpdate | None:
        store = self.store
        self._polls += 1
        sync_events(store, self.run_id)
        run = store.get_run(self.run_id)
        if run is None:
            raise LookupError(f"run {self.run_id} is not in {self.store_path}")
        path = events_path(run)
        chunk = read_from(path, self.offset, self.chunk_bytes)
        self.offset = chunk.offset
        self.bad_lines += chunk.bad_lines
        try:
            self.behind = path.stat().st_size - self.offset > self.chunk_bytes // 2
        except OSError:
            self.behind = False
        delta = self.state.apply(chunk.events)
        now = self.clock()
        alerts = self.alerts.observe(chunk.events, now)
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
        elif not (chunk.events or log_lines or error_lines or alerts or status_changed or chunk.bad_lines):
            return None
        return FollowUpdate(
            run_id=self.run_id, state=self.state.snapshot(), series=delta, new_events=len(chunk.events),
            log_lines=log_lines, error_lines=error_lines, alerts=alerts, run=run, finished=finished,
            bad_lines=self.bad_lines,
        )
