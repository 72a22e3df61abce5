"""Reconcile: make the store's word on a run match what is true on disk and in the process table.

Called by every reader (``gpt2-tui``, ``runs``, ``show``, the follower when the launcher exits). A run
the store calls running is checked: events ingested; exit.json present (the launcher exited)? the
supervisor alive? processes of its group left? A run whose processes are gone without an ``end`` event
becomes ``failed`` (an exit status or orphans say so) or ``lost`` (nothing left at all: a reboot).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from core.follow import sync_events
from core.launch import processes_of, read_exit, supervisor_alive
from core.procs import end_processes
from core.store import Store

LOG_TAIL_LINES = 20


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in data.splitlines() if ln.strip()][-lines:]


def worker_log(run_dir: Path, rank: int) -> Path:
    return run_dir / "logs" / f"workerlog.{rank}"


def failure_reason(run_dir: Path, ex: dict[str, Any] | None) -> str:
    """Name the rank that failed and keep the last lines of its log.

    paddle's launcher names the wrong rank when one crashes (DESIGN.md); the supervisor records which
    rank process vanished first, and failing that the first worker log holding a traceback is used.
    """
    parts = []
    code = ex.get("returncode") if ex else None
    rank = None
    if ex and ex.get("first_dead"):
        rank = ex["first_dead"].get("rank")
        parts.append(f"rank {rank} (pid {ex['first_dead'].get('pid')}) died first")
    if rank is None:
        for log in sorted((run_dir / "logs").glob("workerlog.*")):
            text = "\n".join(log_tail(log, 200))
            if "Traceback" in text or "Error" in text:
                rank = int(log.suffix.lstrip(".") or 0) if log.suffix.lstrip(".").isdigit() else None
                parts.append(f"rank {rank} failed")
                break
    # A peer that vanished (another node died) shows up as a gloo timeout naming the silent pair rank.
    for log in sorted((run_dir / "logs").glob("workerlog.*")):
        m = re.search(r"TIMEOUT self_rank = (\d+) pair_rank = (\d+) peer_str = \[?([^\]\s]+)",
                      "\n".join(log_tail(log, 50)))
        if m:
            parts.insert(0, f"rank {m.group(2)} at {m.group(3)} stopped answering (gloo timeout on rank "
                            f"{m.group(1)}): its node or process died")
            break
    if code is not None:
        parts.append(f"launcher exit code {code}")
    tail: list[str] = []
    if rank is not None:
        tail = log_tail(worker_log(run_dir, rank))
    if not tail:
        tail = log_tail(run_dir / "launcher.log")
    msg = "; ".join(parts) or "the run ended without an end event"
    if tail:
        msg += f"\n--- last lines of {'workerlog.' + str(rank) if rank is not None else 'launcher.log'} ---\n"
        msg += "\n".join(tail)
    return msg


def reconcile(store: Store, run_id: str, stopping: bool = False) -> dict[str, Any]:
    sync_events(store, run_id)
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(run_id)
    run_dir = Path(run["run_dir"])
    ex = read_exit(run_dir)
    if run["status"] != "running":
        if ex is not None and run.get("exit_code") is None:
            store.update_run(run_id, exit_code=ex.get("returncode"))
        return store.get_run(run_id) or run
    stop_asked = stopping or (run_dir / "stop").exists()
    if ex is not None:
        code = ex.get("returncode")
        left = processes_of(run)
        if left:
            end_processes(left, grace=3)
        node_rank = (run.get("config") or {}).get("node_rank", 0)
        if code == 0 and node_rank:
            # A worker node writes no events (global rank 0 lives on the master): its exit status is the word.
            store.finish_run(run_id, "finished", exit_code=0)
        else:
            status = "stopped" if stop_asked else "failed"
            store.finish_run(run_id, status, exit_code=code, error=failure_reason(run_dir, ex))
    elif supervisor_alive(run):
        return run
    else:
        left = processes_of(run)
        if left:
            n = end_processes(left, grace=3)
            status = "stopped" if stop_asked else "failed"
            store.finish_run(run_id, status, error=(
                f"the launcher and its supervisor were killed; {n} orphaned process(es) of the run were ended. "
                + failure_reason(run_dir, None)))
        elif stop_asked:
            store.finish_run(run_id, "stopped", error="stopped by signal before it could save")
        else:
            last = run.get("last_event_at")
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
            store.finish_run(run_id, "lost", error=(
                f"no process of the run is left and it wrote no end event (machine restarted or killed?); "
                f"last event at {when}"))
    sync_events(store, run_id)
    return store.get_run(run_id) or run


def reconcile_all(store: Store) -> list[dict[str, Any]]:
    return [reconcile(store, r["id"]) for r in store.running_runs()]
