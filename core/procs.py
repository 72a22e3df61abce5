"""Finding and ending a run's processes.

paddle's launcher starts each rank in a session of its own (setsid), so the run's process group holds
only the supervisor and the launcher: signalling the group does not reach ranks that a killed launcher
orphaned. Every process of a run carries the run folder in its argv (--run_dir / --log_dir), so that is
how they are found — after a crash of anything, and without pid files that could go stale.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil


def run_processes(run_dir: str | os.PathLike[str], pgid: int | None = None, since: float = 0.0,
                  exclude: int | None = None) -> list[psutil.Process]:
    """Live processes of the run: its process group, and any process whose argv names the run folder."""
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
        # A pid reused after a reboot is not ours: it started before the run did.
        if mine and (info.get("create_time") or 0) >= since - 5:
            out.append(p)
    return out


def end_processes(procs: list[psutil.Process], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL what is left after ``grace`` seconds. Returns how many there were."""
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2)
    return len(procs)


def signal_all(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass
