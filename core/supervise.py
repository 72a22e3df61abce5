"""The supervisor: leader of a run's process group, parent of paddle's launcher.

``python -m core.supervise RUN_DIR -- ARGV...`` runs ARGV (the launcher) as its child and, when it
exits, writes ``RUN_DIR/exit.json`` with the exit status. Nobody has to stay attached for a detached
run's outcome to be known. It also watches the ranks, because the launcher names the wrong rank when
one crashes (docs/ARCHITECTURE.md): the first rank process to vanish while the launcher lives is recorded.

It imports neither paddle nor the store: a few MB of RSS for the life of the run.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core.probes import exit_status, is_ours, rank_of, run_processes
from core.procs import end_processes

# A killed rank stays a zombie until the launcher reaps it (its watch loop polls once a second). Each
# rank's pidfd wakes the supervisor the moment the rank exits, so it reads the zombie's exit status
# (SIGKILL, abort, exit 1) before the launcher reaps it; POLL_S bounds the wait otherwise.
POLL_S = 0.1
# What a rank's log ends with when it died only because a peer did: it is a victim, not the cause.
PEER_FAILURE_MARKERS = ("Connection reset by peer", "Connection closed by peer", "gloo::IoException",
                        "pair_rank", "Broken pipe", "EnforceNotMet: Connection")
# After the launcher exits, ranks it left behind (it was SIGKILLed, say) get this long after SIGTERM.
ORPHAN_GRACE_S = 5.0


def describe_status(status: int | None) -> str:
    """waitpid status -> 'killed by SIGKILL' / 'exit code 1'."""
    if status is None:
        return "exit status unknown"
    if status & 0x7F:
        sig = status & 0x7F
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}" + (" (core dumped)" if status & 0x80 else "")
    return f"exit code {(status >> 8) & 0xFF}"


def _is_victim(run_dir: Path, rank: int) -> bool:
    """True when rank's log ends with a peer's failure (it died because another rank did)."""
    try:
        with open(run_dir / "logs" / f"workerlog.{rank}", "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 8192))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return False
    return any(m in tail for m in PEER_FAILURE_MARKERS)


def blame(run_dir: Path, dead: list[dict]) -> dict:
    """Of ranks seen dead in the same poll, the one that caused it: not a victim of a peer, else the first."""
    causes = [d for d in dead if not _is_victim(run_dir, d["rank"])]
    return (causes or dead)[0]


class _ExitWaker:
    """Sleep until one of the watched processes exits, or the timeout (pidfd_open, Linux >= 5.3).

    Without pidfds (older kernels) it just sleeps: the 0.1 s polling still sees most deaths.
    """

    def __init__(self) -> None:
        self._poll = select.poll()
        self._fds: set[int] = set()

    def add(self, pid: int) -> None:
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd support, or the pid is already gone
            return
        self._fds.add(fd)
        self._poll.register(fd, select.POLLIN)

    def wait(self, timeout_s: float) -> None:
        if not self._fds:
            time.sleep(timeout_s)
            return
        for fd, _ in self._poll.poll(timeout_s * 1000):
            # An exited process stays readable: stop watching it so the next wait sleeps again.
            self._poll.unregister(fd)
            self._fds.discard(fd)
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


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
    waker = _ExitWaker()
    finished: set[int] = set()  # ranks seen exiting 0
    first_dead: dict | None = None
    launcher = psutil.Process(child.pid)
    polls = 0
    while child.poll() is None:
        if not ranks or polls % 10 == 0:  # new ranks appear at start; scanning for them costs ~2 ms
            try:
                kids = launcher.children()  # the ranks are the launcher's own children (subprocess.Popen)
            except psutil.Error:
                kids = []
            for k in kids:
                if k.pid not in ranks:
                    r = rank_of(k)
                    if r is not None:
                        ranks[k.pid] = r
                        waker.add(k.pid)
        polls += 1
        if first_dead is None:
            # A zombie with a bad status, or a rank already reaped, died; one that exited 0 finished.
            dead = []
            for pid, r in ranks.items():
                if pid in finished:
                    continue
                status = exit_status(pid)
                if status == 0:
                    finished.add(pid)
                elif status is not None or not is_ours(pid):
                    dead.append({"rank": r, "pid": pid, "t": time.time(), "status": status,
                                 "how": describe_status(status)})
            if dead and child.poll() is None:
                first_dead = blame(run_dir, dead)
                if len(dead) > 1:
                    first_dead["seen_with"] = [d["rank"] for d in dead if d is not first_dead]
        waker.wait(POLL_S)
    waker.close()
    code = child.returncode
    # Ranks live in sessions of their own: a launcher killed hard leaves them running. End them.
    orphans = end_processes(run_processes(run_dir, pgid=os.getpgid(0), since=started - 60, exclude=os.getpid()),
                            grace=ORPHAN_GRACE_S)
    _write_json(run_dir / "exit.json", {
        "returncode": code, "t": time.time(), "first_dead": first_dead,
        "launcher": describe_status(-code if code < 0 else code << 8),
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
