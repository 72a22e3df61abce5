"""Reconcile: make the store's word on a run match what is true on disk and in the process table.

Called by every reader (``gpt2-tui``, ``runs``, ``show``, the follower when the launcher exits). A run
the store calls running is checked: events ingested; exit.json present (the launcher exited)? the
supervisor alive? processes of its group left? A run whose processes are gone without an ``end`` event
becomes ``failed`` (an exit status or orphans say so) or ``lost`` (nothing left at all: a reboot).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.follow import sync_events
from core.probes import launcher_alive, processes_of, read_exit, supervisor_alive
from core.procs import end_processes
from core.records import RunRow
from core.store import Store
from core.supervise import PEER_FAILURE_MARKERS

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


def _worker_logs(run_dir: Path) -> list[tuple[int, Path]]:
    """(rank, workerlog.N) in rank order (workerlog.10 after workerlog.2)."""
    out = []
    for log in (run_dir / "logs").glob("workerlog.*"):
        suffix = log.suffix.lstrip(".")
        if suffix.isdigit():
            out.append((int(suffix), log))
    return sorted(out)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def launcher_killed(ex: dict[str, Any] | None) -> bool:
    """The launcher died by SIGKILL, or left ranks behind that the supervisor had to end."""
    return ex is not None and (ex.get("returncode") == -signal.SIGKILL or bool(ex.get("orphans_ended")))


def failure_reason(run_dir: Path, ex: dict[str, Any] | None, note: str | None = None,
                   head: str | None = None) -> str:
    """Name the rank that failed and keep the last lines of its log.

    paddle's launcher names the wrong rank when one crashes (docs/ARCHITECTURE.md); the supervisor records which
    rank process died first (core.supervise), and failing that the first worker log holding a Python
    traceback that is not a peer's failure is used. ``head`` comes first, ``note`` (what rank 0 reported)
    just before the log lines.
    """
    parts = [head] if head else []
    code = ex.get("returncode") if ex else None
    rank = None
    if ex and ex.get("first_dead"):
        fd = ex["first_dead"]
        rank = fd.get("rank")
        how = fd.get("how")
        parts.append(f"rank {rank} (pid {fd.get('pid')}) died first"
                     + (f" ({how})" if how and how != "exit status unknown" else ""))
    if rank is None:
        found = []
        for r, log in _worker_logs(run_dir):
            text = "\n".join(log_tail(log, 200))
            if "Traceback" in text:
                found.append((any(m in text for m in PEER_FAILURE_MARKERS), r))
        if found:
            rank = min(found)[1]  # a rank that failed on its own before one that lost a peer
            parts.append(f"rank {rank} failed")
    # A peer that vanished (another node died) shows up as a gloo timeout naming the silent pair rank.
    for _, log in _worker_logs(run_dir):
        m = re.search(r"TIMEOUT self_rank = (\d+) pair_rank = (\d+) peer_str = \[?([^\]\s]+)",
                      "\n".join(log_tail(log, 50)))
        if m:
            parts.insert(0, f"rank {m.group(2)} at {m.group(3)} stopped answering (gloo timeout on rank "
                            f"{m.group(1)}): its node or process died")
            break
    if code is not None and code < 0:
        parts.append(f"the launcher was killed by {_signal_name(-code)}")
    elif code is not None:
        parts.append(f"launcher exit code {code}")
    if ex and ex.get("orphans_ended"):
        parts.append(f"its supervisor ended {ex['orphans_ended']} orphaned process(es) of the run")
    if note:
        parts.append(note)
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


def _settle_after_end(store: Store, run: Mapping[str, Any], ex: dict[str, Any], stop_asked: bool) -> None:
    """The run already has a final status from its end event; now its exit status is known too.

    An end event does not tell the whole story: a rank whose launcher was SIGKILLed is ended by the
    supervisor with SIGTERM, saves and reports ``stopped`` (nobody asked for that: it failed); and rank 0
    reports its own error when the rank that really died first was another one.
    """
    run_dir = Path(run["run_dir"])
    fields: dict[str, Any] = {"exit_code": ex.get("returncode")}
    reported = run.get("error") or ""
    fd = ex.get("first_dead") or {}
    # Another rank was killed (a signal), or rank 0's own error is a lost peer: rank 0 only saw the effect.
    # (A rank that exits 1 first in an orderly failure, a NaN say, is not the cause: rank 0 said why.)
    caused_elsewhere = fd.get("rank") not in (None, 0) and (
        (fd.get("status") or 0) & 0x7F != 0 or any(m in reported for m in PEER_FAILURE_MARKERS))
    if run["status"] == "stopped" and not stop_asked and launcher_killed(ex):
        fields.update(status="failed", error=failure_reason(run_dir, ex, note=f"rank 0 then reported: {reported}"))
    elif run["status"] == "failed" and caused_elsewhere:
        fields.update(error=failure_reason(run_dir, ex, note=f"rank 0 reported: {reported}" if reported else None))
    store.update_run(run["id"], **fields)


def reconcile(store: Store, run_id: str, stopping: bool = False) -> RunRow:
    sync_events(store, run_id)
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(run_id)
    run_dir = Path(run["run_dir"])
    ex = read_exit(run_dir)
    stop_asked = stopping or (run_dir / "stop").exists()
    if run["status"] != "running":
        if ex is not None and run.get("exit_code") is None:
            _settle_after_end(store, run, ex, stop_asked)
        return store.get_run(run_id) or run
    if ex is not None:
        code = ex.get("returncode")
        node_rank = (run.get("config") or {}).get("node_rank", 0)
        if code == 0 and node_rank:
            # A worker node writes no events (global rank 0 lives on the master): its exit status is the word.
            store.finish_run(run_id, "finished", exit_code=0)
        else:
            status = "stopped" if stop_asked else "failed"
            store.finish_run(run_id, status, exit_code=code, error=failure_reason(run_dir, ex))
        # The final status is set first: an end event the ranks write when signalled cannot change it.
        left = processes_of(run)
        if left:
            end_processes(left, grace=3)
    elif supervisor_alive(run):
        return run
    else:
        left = processes_of(run)
        if left and launcher_alive(run):
            # Only the supervisor died: the run goes on; its end event (or its absence) decides later.
            return run
        if left:
            status = "stopped" if stop_asked else "failed"
            store.finish_run(run_id, status, error=failure_reason(run_dir, None, head=(
                f"the launcher and its supervisor were killed, so no exit status was recorded; {len(left)} "
                f"orphaned process(es) of the run were ended")))
            end_processes(left, grace=3)
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


def reconcile_all(store: Store) -> list[RunRow]:
    return [reconcile(store, r["id"]) for r in store.running_runs()]
