"""Ending a run's processes (finding them is core.probes' job).

Always signal every process of the run, not only its group: paddle's launcher starts each rank in a
session of its own, so a signal to the group does not reach ranks that a killed launcher orphaned.
"""

from __future__ import annotations

import psutil

from core.probes import run_processes as run_processes  # its old home, for callers not yet on core.probes


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
