"""Process probes: the one 'is this pid ours and alive' rule, and finding a run's processes by its folder."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from core import probes


@pytest.fixture
def sleeper(tmp_path):
    """A process whose argv names a run folder, as every process of a run does (--run_dir / --log_dir)."""
    run_dir = tmp_path / "RUN"
    run_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run_dir", str(run_dir)])
    yield run_dir, proc
    proc.kill()
    proc.wait()


def test_is_ours_needs_a_live_process_started_after_the_run():
    assert probes.is_ours(None) is False and probes.is_ours(0) is False
    import os
    assert probes.is_ours(os.getpid(), since=0)
    # A pid that started long before the run was created is a reused pid, not ours.
    assert not probes.is_ours(os.getpid(), since=time.time() + 3600)


def test_a_zombie_is_not_alive_and_its_exit_status_is_read():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    deadline = time.monotonic() + 30
    while probes.exit_status(proc.pid) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # not reaped: it stays a zombie until proc.wait()
    assert probes.exit_status(proc.pid) == 3 << 8
    assert not probes.is_ours(proc.pid)
    proc.wait()
    assert probes.exit_status(proc.pid) is None


def test_run_processes_match_the_folder_not_a_sibling(sleeper, tmp_path):
    run_dir, proc = sleeper
    assert proc.pid in [p.pid for p in probes.run_processes(run_dir)]
    assert proc.pid in [p.pid for p in probes.processes_of({"run_dir": str(run_dir), "created_at": 0})]
    assert proc.pid not in [p.pid for p in probes.run_processes(tmp_path / "RU")]
    # Created long after the process started: the process cannot be this run's.
    assert proc.pid not in [p.pid for p in probes.run_processes(run_dir, since=time.time() + 3600)]


def test_supervisor_and_launcher_liveness(sleeper):
    run_dir, proc = sleeper
    run = {"run_dir": str(run_dir), "created_at": time.time() - 1, "pgid": proc.pid}
    assert probes.supervisor_alive(run)
    assert not probes.launcher_alive(run)  # no supervisor.json yet
    (run_dir / "supervisor.json").write_text(json.dumps({"pid": 1, "launcher_pid": proc.pid, "t": 0}))
    assert probes.launcher_alive(run)
    assert not probes.launcher_exited(run)
    (run_dir / "exit.json").write_text("{torn")
    assert probes.read_exit(run_dir) is None
    (run_dir / "exit.json").write_text(json.dumps({"returncode": 0}))
    assert probes.read_exit(run_dir) == {"returncode": 0} and probes.launcher_exited(run)
    proc.kill()
    proc.wait()
    assert not probes.supervisor_alive(run) and not probes.launcher_alive(run)
    assert probes.wait_for_exit(run, timeout=10)


def test_labels_of_a_runs_processes(sleeper):
    _, proc = sleeper
    import psutil
    assert probes.label_of(psutil.Process(proc.pid)) == "process"
    assert probes.rank_of(psutil.Process(proc.pid)) is None
    rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env={"PADDLE_TRAINER_ID": "3"})
    try:
        # /proc/PID/environ is the parent's until the child has exec'd: wait for the new program
        deadline = time.monotonic() + 10
        while "time.sleep" not in " ".join(psutil.Process(rank.pid).cmdline()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert probes.label_of(psutil.Process(rank.pid)) == "rank 3"
    finally:
        rank.kill()
        rank.wait()
