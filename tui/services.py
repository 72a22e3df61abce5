"""What the dashboard's screens work with, in one injected object (memray's ``TUIApp(reader, ...)`` habit).

``Gpt2App`` builds one ``Services`` (from its constructor keywords, or takes one whole) and hands it to
every screen it opens; a screen never reaches into the app for the store, the launcher or the clock.
Tests build the same object around fakes (``tui.testing.fake_services``) or around a store path alone
(``Services.for_store``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.launch import runs_root_for
from core.store import Store, default_db_path
from tui.evaljobs import CoreEvalLauncher, EvalLauncher
from tui.launcher import Launcher, ProcessLauncher

if TYPE_CHECKING:  # kept out of the import path to the first frame
    from core.devices import DeviceReport, ProcStat
    from tui.messages import DeviceSample

# Readings kept for a live screen opened later (~2 minutes at 1 Hz; the device panel's sparkline length).
DEVICE_HISTORY = 120


class DeviceSource(Protocol):
    """core.devices.DeviceSampler, or a scripted one (tui.testing.FakeSampler)."""

    def sample(self) -> DeviceReport | None:
        """One reading; None when a scripted source has run out (the sampling worker then stops)."""
        ...

    def process_stats(self, pids: list[int]) -> list[ProcStat]: ...


def real_sampler() -> DeviceSource:
    # Imported when sampling starts, after the first frame: NVML and psutil are not needed to draw it.
    from core.devices import DeviceSampler

    return DeviceSampler()


class DeviceFeed:
    """The device readings the app takes, shared with its screens: the latest one, the last two minutes
    (a live screen opened now starts with history in its sparklines), the runs whose processes are
    sampled along with the devices, and who wants readings now.

    Readings are taken only while a screen that shows them is in front (``want`` on resume, ``release``
    on suspend): a psutil/NVML reading a second costs ~0.3 % of a core (bench/screen_cpu.py), and
    the history, a run's page and the results show no device.
    """

    def __init__(self, keep: int = DEVICE_HISTORY):
        self.latest: DeviceSample | None = None
        self.history: deque[DeviceSample] = deque(maxlen=keep)
        self.watched: dict[str, dict[str, Any]] = {}
        self._demand: dict[int, float] = {}  # id(screen) -> the interval it wants readings at
        self._cond = threading.Condition()

    def add(self, sample: DeviceSample) -> None:
        self.latest = sample
        self.history.append(sample)

    def watch(self, run: dict[str, Any]) -> None:
        """Sample this run's processes (CPU, RSS) along with the devices."""
        self.watched[run["id"]] = run

    def unwatch(self, run_id: str) -> None:
        self.watched.pop(run_id, None)

    # ------------------------------------------------------------------ demand (any thread)
    def want(self, owner: object, interval: float) -> None:
        """``owner`` (a screen in front) shows readings: take one every ``interval`` s until ``release``."""
        with self._cond:
            self._demand[id(owner)] = interval
            self._cond.notify_all()

    def release(self, owner: object) -> None:
        with self._cond:
            self._demand.pop(id(owner), None)
            self._cond.notify_all()

    @property
    def wanted(self) -> bool:
        return bool(self._demand)

    def wake(self) -> None:
        """Wake a sampler waiting in ``next_interval`` or ``pause`` (to see a stop flag, say)."""
        with self._cond:
            self._cond.notify_all()

    def next_interval(self, stop: threading.Event) -> float | None:
        """Block until some screen wants readings; the shortest interval wanted, or None once ``stop``."""
        with self._cond:
            self._cond.wait_for(lambda: stop.is_set() or bool(self._demand))
            return None if stop.is_set() else min(self._demand.values())

    def pause(self, seconds: float, stop: threading.Event) -> None:
        """Sleep ``seconds`` between readings; ends early on ``stop`` or when the demand changes."""
        with self._cond:
            if not stop.is_set():
                self._cond.wait(seconds)


# A run's processes are found by one pass over the whole process table (core.probes.run_processes: every
# process's argv): 7 ms of CPU with 88 processes here, 0.7 % of a core if done with every 1 Hz reading.
# They rarely change, so the list is kept this long, or until one of them ends; while no rank is
# listed yet (a run starting), it is looked for again every RESCAN_STARTING_S.
RESCAN_S = 10.0
RESCAN_STARTING_S = 2.0


class RunProcesses:
    """(label, pid) of a run's processes for the device readings, from a scan kept ``RESCAN_S`` s.

    Used from the sampling thread only."""

    def __init__(self, list_processes: Callable[[dict[str, Any]], list[tuple[str, int]]],
                 clock: Callable[[], float] = time.monotonic):
        self._list = list_processes
        self._clock = clock
        self._cache: dict[str, tuple[float, list[tuple[str, int]]]] = {}

    def get(self, run: dict[str, Any]) -> list[tuple[str, int]]:
        now = self._clock()
        hit = self._cache.get(run["id"])
        if hit is not None:
            t, labelled = hit
            ranks = any(label.startswith("rank") for label, _ in labelled)
            if now - t < (RESCAN_S if ranks else RESCAN_STARTING_S):
                return labelled
        labelled = self._list(run)
        self._cache[run["id"]] = (now, labelled)
        return labelled

    def alive(self, run_id: str, pids: set[int]) -> None:
        """The pids that still answered: when one of the list has ended, scan again next time."""
        hit = self._cache.get(run_id)
        if hit is not None and any(pid not in pids for _, pid in hit[1]):
            del self._cache[run_id]

    def keep_only(self, run_ids: set[str]) -> None:
        for run_id in set(self._cache) - run_ids:
            del self._cache[run_id]


@dataclass
class Services:
    store_path: Path
    runs_root: Path  # where launches put run folders (runs/ beside the store)
    launcher: Launcher  # start, resume, stop, reconcile, list processes
    eval_launcher: EvalLauncher = field(default_factory=CoreEvalLauncher)
    clock: Callable[[], float] = time.time
    sampler_factory: Callable[[], DeviceSource] = real_sampler
    # How often a live screen looks at its run's files when it is not behind: it paints once a second
    # (tui/screens/live.py FRAME_S), so reading twice a second only cost CPU (~0.3 % of a core).
    poll_interval: float = 1.0
    sample_interval: float = 1.0  # device readings
    devices: DeviceFeed = field(default_factory=DeviceFeed)

    @classmethod
    def for_store(cls, store_path: str | Path | None = None, *, runs_root: Path | None = None,
                  launcher: Launcher | None = None, eval_launcher: EvalLauncher | None = None,
                  clock: Callable[[], float] = time.time, sampler: DeviceSource | None = None,
                  poll_interval: float = 1.0, sample_interval: float = 1.0) -> Services:
        """The real services around one store (``None``: ./runs.db or $GPT2_TUI_DB); any part replaceable."""
        path = Path(store_path) if store_path is not None else default_db_path()
        return cls(store_path=path, runs_root=runs_root or runs_root_for(path),
                   launcher=launcher if launcher is not None else ProcessLauncher(),
                   eval_launcher=eval_launcher if eval_launcher is not None else CoreEvalLauncher(),
                   clock=clock, sampler_factory=real_sampler if sampler is None else (lambda: sampler),
                   poll_interval=poll_interval, sample_interval=sample_interval)

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A Store for this thread only (sqlite connections are per thread here)."""
        store = Store(self.store_path)
        try:
            yield store
        finally:
            store.close()


def as_services(services: Services | str | Path) -> Services:
    """A screen's ``services`` argument: the object itself, or a store path as shorthand for
    ``Services.for_store(path)`` (a screen shown on its own, e.g. by a benchmark)."""
    return services if isinstance(services, Services) else Services.for_store(services)
