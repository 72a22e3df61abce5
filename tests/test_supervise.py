"""The supervisor's pieces that decide which rank died first and how (core.supervise)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from core.probes import exit_status
from core.supervise import _ExitWaker, blame, describe_status


def test_describe_status_reads_waitpid_form():
    assert describe_status(signal.SIGKILL) == "killed by SIGKILL"
    assert describe_status(signal.SIGABRT | 0x80) == "killed by SIGABRT (core dumped)"
    assert describe_status(3 << 8) == "exit code 3"
    assert describe_status(None) == "exit status unknown"


def test_a_zombie_tells_how_it_died_and_a_live_process_does_not():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert exit_status(p.pid) is None  # alive
        p.send_signal(signal.SIGKILL)
        deadline = time.time() + 10
        while exit_status(p.pid) is None and time.time() < deadline:
            time.sleep(0.01)
        assert describe_status(exit_status(p.pid)) == "killed by SIGKILL"
    finally:
        p.kill()
        p.wait()
    assert exit_status(p.pid) is None  # reaped: nothing left to read


def test_the_waker_wakes_when_a_watched_process_exits_not_at_the_timeout():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    waker = _ExitWaker()
    try:
        waker.add(p.pid)
        threading.Timer(0.3, p.kill).start()
        t0 = time.monotonic()
        waker.wait(30)
        woke_after = time.monotonic() - t0
        assert woke_after < 10, f"slept {woke_after:.1f} s: the exit did not wake it"
        # The zombie is still there to read (its parent, this test, has not reaped it).
        assert describe_status(exit_status(p.pid)) == "killed by SIGKILL"
        t0 = time.monotonic()
        waker.wait(0.2)  # the dead process no longer wakes it: it sleeps the timeout
        assert time.monotonic() - t0 >= 0.15
    finally:
        waker.close()
        p.kill()
        p.wait()


def test_blame_prefers_the_rank_that_did_not_die_of_a_peer(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "workerlog.0").write_text("step 3\ngloo::IoException: Connection reset by peer\n")
    (logs / "workerlog.1").write_text("step 3\n")
    dead = [{"rank": 0, "pid": 10}, {"rank": 1, "pid": 11}]
    assert blame(tmp_path, dead)["rank"] == 1
    (logs / "workerlog.1").write_text("Broken pipe\n")
    assert blame(tmp_path, dead)["rank"] == 0  # both victims: the first seen
