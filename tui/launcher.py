"""The dashboard's one door to processes: start, stop, reconcile and list a run's processes.

The app takes any object with these methods (``Gpt2App(launcher=...)``); tests pass a fake that writes
canned events instead of starting paddle. Every method is called from a thread worker with that
thread's own Store (sqlite3 connections are per thread here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from core.config import RunConfig
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


class ProcessLauncher:
    """The real thing: core.launch.prepare_run + spawn, stop_run, core.reconcile."""

    def launch(self, store: Store, cfg: RunConfig, report: Any = None,
               progress: ProgressFn | None = None) -> dict[str, Any]:
        from core import launch

        prep = launch.prepare_run(cfg, launch.runs_root_for(store.path), report=report, progress=progress)
        return launch.spawn(store, prep)

    def resume(self, store: Store, run_id: str) -> dict[str, Any]:
        from core import launch

        run = store.get_run(run_id)
        if run is None:
            raise launch.LaunchError(f"no run {run_id}")
        parent, cfg, ckpt = launch.resume_point(store, run)
        prep = launch.prepare_run(cfg, launch.runs_root_for(store.path), resume_from=ckpt, parent_run=parent["id"])
        return launch.spawn(store, prep)

    def stop(self, store: Store, run: dict[str, Any]) -> str:
        from core.launch import stop_run

        return stop_run(store, run)

    def reconcile(self, store: Store, run_id: str) -> dict[str, Any]:
        from core.reconcile import reconcile

        return reconcile(store, run_id)

    def processes(self, run: dict[str, Any]) -> list[tuple[str, int]]:
        # Not just the process group: paddle's launcher starts each rank in a session of its own.
        from core.launch import processes_of

        return sorted(((_label(p), p.pid) for p in processes_of(run)), key=_order)


def _label(proc: Any) -> str:
    try:
        rank = proc.environ().get("PADDLE_TRAINER_ID")
        if rank is not None and rank.isdigit():
            return f"rank {rank}"
    except Exception:  # AccessDenied, a process gone: fall back to its command line
        pass
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:
        return "process"
    if "core.supervise" in cmd:
        return "supervisor"
    if "paddle.distributed.launch" in cmd:
        return "launcher"
    return "process"


def _order(item: tuple[str, int]) -> tuple[int, int, int]:
    label, pid = item
    if label.startswith("rank "):
        return (0, int(label[5:]), pid)
    return (1, 0, pid)
