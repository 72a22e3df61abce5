"""The run API (core.control): delete with eval jobs and folders, refusals, processes, resume refusals."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from core import control
from core.store import Store


def make_run(store, root, rid, status="finished", **kw):
    run_dir = root / rid
    run_dir.mkdir(parents=True)
    store.create_run({"id": rid, "status": status, "created_at": time.time(), "run_dir": str(run_dir),
                      "config": {}, **kw})
    return run_dir


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


def test_delete_takes_the_eval_jobs_and_only_folders_inside_the_runs_root(store, tmp_path):
    root = control.runs_root_for(store.path)
    run_dir = make_run(store, root, "r1")
    job_dir = make_run(store, root, "e1", kind="eval", parent_run="r1")
    outside = make_run(store, tmp_path / "elsewhere", "e2", kind="eval", parent_run="r1")
    assert control.RunControl().delete(store, "r1", files=True) is True
    assert store.get_run("r1") is None and store.get_run("e1") is None and store.get_run("e2") is None
    assert not run_dir.exists() and not job_dir.exists()
    assert outside.exists()  # never outside the runs root


def test_delete_keeps_folders_unless_asked(store):
    root = control.runs_root_for(store.path)
    run_dir = make_run(store, root, "r1")
    assert control.delete(store, "r1") is False
    assert store.get_run("r1") is None and run_dir.exists()


def test_delete_refuses_a_running_run_or_one_with_a_running_eval(store):
    root = control.runs_root_for(store.path)
    make_run(store, root, "r1", status="running")
    with pytest.raises(control.DeleteRefused, match="stop it first"):
        control.delete(store, "r1")
    make_run(store, root, "r2")
    make_run(store, root, "e2", status="running", kind="eval", parent_run="r2")
    with pytest.raises(control.DeleteRefused, match="e2"):
        control.delete(store, "r2", files=True)
    assert store.get_run("r2") is not None and (root / "r2").exists()
    with pytest.raises(control.DeleteRefused, match="not in the store"):
        control.delete(store, "nope")


def test_resume_refuses_without_a_checkpoint(store):
    make_run(store, control.runs_root_for(store.path), "r1", status="failed")
    with pytest.raises(control.LaunchError, match="no checkpoint"):
        control.resume(store, "r1")
    with pytest.raises(control.LaunchError, match="no run"):
        control.resume(store, "nope")


def test_processes_are_labelled_ranks_first(store, tmp_path):
    run_dir = make_run(store, control.runs_root_for(store.path), "r1", status="running")
    cmd = [sys.executable, "-c", "import time; time.sleep(60)", "--run_dir", str(run_dir)]
    other = subprocess.Popen(cmd)
    rank = subprocess.Popen(cmd, env={"PADDLE_TRAINER_ID": "1"})
    try:
        run = store.get_run("r1")
        assert control.processes(run) == [("rank 1", rank.pid), ("process", other.pid)]
    finally:
        for p in (other, rank):
            p.kill()
            p.wait()
