"""The dashboard's one door to processes: start, stop, reconcile and list a run's processes.

The app takes any object with these methods (``Gpt2App(launcher=...)``); tests pass a fake that writes
canned events instead of starting paddle. Every method is called from a thread worker with that
thread's own Store (sqlite3 connections are per thread here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from core.config import RunConfig
from core.control import RunControl
from core.store import Store

ProgressFn = Callable[[int, int | None], None]


class Launcher(Protocol):
    def launch(self, store: Store, cfg: RunConfig, report: Any = None,
               progress: ProgressFn | None = None) -> dict[str, Any]:
        """Start a run; returns its store row. Raises a user error (ConfigError, DataError...) on bad input."""
        ...

    def resume(self, store: Store, run_id: str) -> dict[str, Any]:
        """Continue a stopped/failed/lost run from its latest checkpoint as a new linked run."""
        ...

    def stop(self, store: Store, run: dict[str, Any]) -> str:
        """Stop gracefully (checkpoint first), then by signals; returns the final status."""
        ...

    def reconcile(self, store: Store, run_id: str) -> dict[str, Any]:
        """The run's row after checking its processes (a vanished run stops being 'running')."""
        ...

    def processes(self, run: dict[str, Any]) -> list[tuple[str, int]]:
        """(label, pid) of the run's live processes: 'rank 0', 'rank 1', 'launcher', ..."""
        ...


class ProcessLauncher(RunControl):
    """The real thing: core.control's run API (prepare + spawn, stop, resume, reconcile, processes)."""
