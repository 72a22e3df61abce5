"""Process probes: is a process ours and alive, which processes belong to a run, how did it exit.

Looking only, never signalling (core.procs ends processes). One rule decides whether a pid is ours
(``is_ours``): the process exists, is not a zombie, and started no earlier than the run was created —
a pid reused after a reboot started before the run and is not ours. Every check of a run's supervisor,
launcher or ranks goes through it.

The files a run's supervisor writes (core.supervise): ``supervisor.json`` (its pid and the launcher's)
when it starts, ``exit.json`` (the launcher's exit status) when the launcher exits.

Imports neither the store nor paddle: core.supervise uses it for the life of every run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

# Clocks: a process's create_time and the run's created_at come from different reads of the clock
# (and psutil rounds to the boot time's tick), so a process started just before the row was written is
# still ours within this slack.
CLOCK_SLACK_S = 5.0


def is_ours(pid: int | None, since: float = 0.0) -> bool:
    """The one rule: pid is alive (not a zombie) and started at or after ``since`` (a run's created_at)."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and p.create_time() >= since - CLOCK_SLACK_S
    except psutil.Error:
        return False


def run_processes(run_dir: str | os.PathLike[str], pgid: int | None = None, since: float = 0.0,
                  exclude: int | None = None) -> list[psutil.Process]:
    """Live processes of the run: its process group, and any process whose argv names the run folder.

    paddle's launcher starts each rank in a session of its own (setsid), so the run's process group holds
    only the supervisor and the launcher: signalling the group does not reach ranks that a killed launcher
    orphaned. Every process of a run carries the run folder in its argv (--run_dir / --log_dir), so that
    is how they are found — after a crash of anything, and without pid files that could go stale.
    """
    needle = str(Path(run_dir))
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        info = p.info
        if p.pid == exclude or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        mine = False
        if pgid:
            try:
                mine = os.getpgid(p.pid) == pgid
            except (ProcessLookupError, PermissionError):
                continue
        if not mine:
            # Match a whole argv element or its prefix (RUN/logs), never a longer sibling name (RUN-2).
            mine = any(a == needle or a.startswith(needle + os.sep) for a in (info.get("cmdline") or []))
        # is_ours's rule, on the values process_iter already read (one pass over the process table).
        if mine and (info.get("create_time") or 0) >= since - CLOCK_SLACK_S:
            out.append(p)
    return out


def processes_of(run: Mapping[str, Any]) -> list[psutil.Process]:
    """Live processes of a stored run (its row: run_dir, pgid, created_at)."""
    return run_processes(run["run_dir"], pgid=run.get("pgid"), since=run.get("created_at") or 0)


def supervisor_alive(run: Mapping[str, Any]) -> bool:
    """The run's supervisor (leader of its process group, pid = pgid) still runs."""
    return is_ours(run.get("pgid"), run.get("created_at") or 0)


def _json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file written by the supervisor; None while absent, torn or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_supervisor(run_dir: str | Path) -> dict[str, Any] | None:
    """supervisor.json: {"pid", "launcher_pid", "t"}; None before the supervisor wrote it."""
    return _json_object(Path(run_dir) / "supervisor.json")


def launcher_alive(run: Mapping[str, Any]) -> bool:
    """The supervisor's child (paddle's launcher, or an eval script) still runs, supervised or not."""
    sup = read_supervisor(run["run_dir"]) or {}
    try:
        pid = int(sup["launcher_pid"])
    except (KeyError, TypeError, ValueError):
        return False
    return is_ours(pid, run.get("created_at") or 0)


def read_exit(run_dir: str | Path) -> dict[str, Any] | None:
    """exit.json: how the launcher exited; None while it runs (or when its supervisor was killed)."""
    return _json_object(Path(run_dir) / "exit.json")


def launcher_exited(run: Mapping[str, Any]) -> bool:
    """The launcher's exit is recorded, or nobody is left to record it: time to reconcile the run."""
    return read_exit(run["run_dir"]) is not None or not supervisor_alive(run)


def wait_for_exit(run: Mapping[str, Any], timeout: float, poll_s: float = 0.2) -> bool:
    """Wait until the launcher has exited and no process of the run is left; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if launcher_exited(run) and not processes_of(run):
            return True
        time.sleep(poll_s)
    return False


def rank_of(proc: psutil.Process) -> int | None:
    """The trainer rank a process runs (paddle's launcher sets PADDLE_TRAINER_ID), or None."""
    try:
        rank = proc.environ().get("PADDLE_TRAINER_ID")
    except (psutil.Error, OSError):
        return None
    return int(rank) if rank and rank.isdigit() else None


def label_of(proc: psutil.Process) -> str:
    """What a run's process is: 'rank N', 'supervisor', 'launcher' or 'process'."""
    rank = rank_of(proc)
    if rank is not None:
        return f"rank {rank}"
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return "process"
    if "core.supervise" in cmd:
        return "supervisor"
    if "paddle.distributed.launch" in cmd:
        return "launcher"
    return "process"


def exit_status(pid: int) -> int | None:
    """A zombie's exit status in waitpid form (/proc/PID/stat field 52, Linux >= 3.5); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        if fields[0] != b"Z":
            return None
        return int(fields[49])
    except (OSError, IndexError, ValueError):
        return None
