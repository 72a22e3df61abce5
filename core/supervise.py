"""The supervisor: leader of a run's process group, parent of paddle's launcher.

``python -m core.supervise RUN_DIR -- ARGV...`` runs ARGV (the launcher) as its child and, when it
exits, writes ``RUN_DIR/exit.json`` with the exit status. Nobody has to stay attached for a detached
run's outcome to be known. It also watches the ranks, because the launcher names the wrong rank when
one crashes (DESIGN.md): the first rank process to vanish while the launcher lives is recorded.

It imports neither paddle nor the store: a few MB of RSS for the life of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core.procs import end_processes, run_processes

POLL_S = 0.25
# After the launcher exits, ranks it left behind (it was SIGKILLed, say) get this long after SIGTERM.
ORPHAN_GRACE_S = 5.0


def _rank_of(proc: psutil.Process) -> int | None:
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        return None
    rank = env.get("PADDLE_TRAINER_ID")
    return int(rank) if rank and rank.isdigit() else None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def supervise(run_dir: Path, argv: list[str]) -> int:
    # SIGTERM/SIGINT to the group reach the launcher too; we stay to record how it ended.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    started = time.time()
    child = subprocess.Popen(argv, preexec_fn=lambda: (signal.signal(signal.SIGTERM, signal.SIG_DFL),
                                                       signal.signal(signal.SIGINT, signal.SIG_DFL),
                                                       signal.signal(signal.SIGHUP, signal.SIG_DFL)))
    _write_json(run_dir / "supervisor.json", {"pid": os.getpid(), "launcher_pid": child.pid, "t": started})
    ranks: dict[int, int] = {}  # pid -> rank
    first_dead: dict | None = None
    launcher = psutil.Process(child.pid)
    while child.poll() is None:
        try:
            kids = launcher.children(recursive=True)
        except psutil.Error:
            kids = []
        alive = {k.pid for k in kids}
        for k in kids:
            if k.pid not in ranks:
                r = _rank_of(k)
                if r is not None:
                    ranks[k.pid] = r
        if first_dead is None:
            for pid, r in ranks.items():
                if pid not in alive and child.poll() is None:
                    first_dead = {"rank": r, "pid": pid, "t": time.time()}
                    break
        time.sleep(POLL_S)
    code = child.returncode
    # Ranks live in sessions of their own: a launcher killed hard leaves them running. End them.
    orphans = end_processes(run_processes(run_dir, pgid=os.getpgid(0), since=started - 60, exclude=os.getpid()),
                            grace=ORPHAN_GRACE_S)
    _write_json(run_dir / "exit.json", {
        "returncode": code, "t": time.time(), "first_dead": first_dead,
        "ranks": {str(r): p for p, r in ranks.items()}, "orphans_ended": orphans,
    })
    return 0


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m core.supervise RUN_DIR -- ARGV...", file=sys.stderr)
        return 2
    return supervise(Path(args[0]), args[2:])


if __name__ == "__main__":
    sys.exit(main())
