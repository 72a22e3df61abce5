"""The run API: everything that happens to a run, for the CLI, the dashboard and the tests alike.

The life of a run::

    prepare  check the config, data, model, devices and output folder; make runs/<id>/ and the command
    spawn    record the row (status running), then start core.supervise in a session of its own
    stop     the stop file (the trainer saves and exits), then SIGTERM, then SIGKILL to every process
    reconcile  make the row match the disk and the process table (a vanished run ends failed or lost)
    resume   a new run linked to a stopped/failed/lost one, from its newest checkpoint on disk
    delete   the rows of a run and of the eval jobs on its checkpoints; their folders when asked

Layers, each importing only those below: ``control`` → ``launch`` (the command, spawn, stop) →
``reconcile`` (the row's status and failure reason) → ``probes`` (is a process ours and alive) /
``procs`` (ending processes). Every function takes the caller's Store: sqlite connections are per
thread, and the dashboard calls from thread workers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core import launch
from core.config import RunConfig
from core.launch import STOP_GRACE_S, LaunchError, Prepared, runs_root_for
from core.probes import label_of, launcher_exited, processes_of
from core.reconcile import reconcile, reconcile_all
from core.records import RunRow
from core.store import Store

__all__ = ["DeleteRefused", "LaunchError", "Prepared", "RunControl", "delete", "inside_runs_root", "launch_run",
           "launcher_exited", "prepare", "processes", "reconcile", "reconcile_all", "resume", "resume_point",
           "spawn", "stop"]

ProgressFn = Callable[[int, int | None], None]

prepare = launch.prepare_run
spawn = launch.spawn
resume_point = launch.resume_point


class DeleteRefused(LaunchError):
    """The run cannot be deleted (it is running, or gone); the message says why."""


def launch_run(store: Store, cfg: RunConfig, report: Any = None, progress: ProgressFn | None = None) -> RunRow:
    """Prepare and spawn a run in the runs folder beside the store; returns its row. Raises a user error
    (ConfigError, DataError, ModelError, DeviceError, LaunchError) on bad input, before anything exists."""
    prep = prepare(cfg, runs_root_for(store.path), report=report, progress=progress)
    return spawn(store, prep)


def resume(store: Store, run_id: str, report: Any = None, progress: ProgressFn | None = None,
           changes: dict[str, Any] | None = None) -> RunRow:
    """Continue a stopped/failed/lost run from its newest checkpoint, as a new run linked to it.

    ``changes`` overrides fields of the old run's config (the CLI's flags), checked like any config.
    """
    run = store.get_run(run_id)
    if run is None:
        raise LaunchError(f"no run {run_id}")
    parent, cfg, ckpt = resume_point(store, run)
    if changes:
        cfg = RunConfig.from_dict({**cfg.to_dict(), **changes}).check()
    prep = prepare(cfg, runs_root_for(store.path), resume_from=ckpt, parent_run=parent["id"], report=report,
                   progress=progress)
    return spawn(store, prep)


def stop(store: Store, run: Mapping[str, Any], grace: float = STOP_GRACE_S) -> str:
    """Stop gracefully (the trainer saves a checkpoint), then by signals; returns the final status."""
    return launch.stop_run(store, run, grace=grace)


def processes(run: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(label, pid) of the run's live processes, ranks first: 'rank 0', 'rank 1', 'launcher', ...

    Not just the process group: paddle's launcher starts each rank in a session of its own.
    """
    return sorted(((label_of(p), p.pid) for p in processes_of(run)), key=_order)


def _order(item: tuple[str, int]) -> tuple[int, int, int]:
    label, pid = item
    if label.startswith("rank "):
        return (0, int(label[5:]), pid)
    return (1, 0, pid)


def inside_runs_root(run_dir: str | Path | None, runs_root: Path) -> bool:
    """True when ``run_dir`` resolves to a folder strictly inside the runs root (symlinks followed)."""
    if not run_dir:
        return False
    d = Path(run_dir).resolve()
    root = runs_root.resolve()
    return d != root and d.is_relative_to(root) and d.is_dir()


def delete(store: Store, run_id: str, files: bool = False, runs_root: Path | None = None) -> bool:
    """Remove the run and the eval jobs of its checkpoints from the store and, when ``files``, their
    folders (only those inside the runs root, by default the one beside the store).

    Returns whether files were removed. The rows go first: a folder left behind by a failed removal is
    harmless, a row pointing at a half-removed folder is not. DeleteRefused while the run or one of its
    eval jobs runs.
    """
    root = runs_root if runs_root is not None else runs_root_for(store.path)
    run = store.get_run(run_id)
    if run is None:
        raise DeleteRefused(f"run {run_id} is not in the store any more")
    if run["status"] == "running":
        raise DeleteRefused(f"run {run_id} is running: stop it first")
    jobs = store.eval_jobs(run_id)
    busy = [j["id"] for j in jobs if j["status"] == "running"]
    if busy:
        raise DeleteRefused(f"an evaluation of run {run_id} is running ({', '.join(busy)}): "
                            "let it finish or stop it first")
    store.delete_run(run_id)
    removed = False
    if files:
        for r in (run, *jobs):
            if inside_runs_root(r.get("run_dir"), root):
                shutil.rmtree(r["run_dir"])
                removed = True
    return removed


class RunControl:
    """The run API as one object, for injection (``Gpt2App(launcher=RunControl())``; tests pass a fake
    with the same methods). Stateless: every method takes the calling thread's Store."""

    def launch(self, store: Store, cfg: RunConfig, report: Any = None,
               progress: ProgressFn | None = None) -> RunRow:
        return launch_run(store, cfg, report=report, progress=progress)

    def resume(self, store: Store, run_id: str) -> RunRow:
        return resume(store, run_id)

    def stop(self, store: Store, run: Mapping[str, Any]) -> str:
        return stop(store, run)

    def reconcile(self, store: Store, run_id: str) -> RunRow:
        return reconcile(store, run_id)

    def reconcile_all(self, store: Store) -> list[RunRow]:
        return reconcile_all(store)

    def delete(self, store: Store, run_id: str, files: bool = False, runs_root: Path | None = None) -> bool:
        return delete(store, run_id, files=files, runs_root=runs_root)

    def processes(self, run: Mapping[str, Any]) -> list[tuple[str, int]]:
        return processes(run)
