"""Killing real processes of real runs (2 CPU ranks under paddle.distributed.launch), then the store.

Each test starts the installed `gpt2-tui` in a temp folder, kills something with SIGKILL and checks what
the next reader (`show`, `runs`) records: nothing lost, nothing doubled, nothing left running.
"""

import json
import os
import random
import signal
import time

import psutil
import pytest
from faultkit import (
    FOREVER,
    alive,
    assert_store_matches_events,
    cli,
    events,
    follower,
    foreground,
    kill_all,
    rank_process,
    reaper,  # noqa: F401  (fixture)
    show,
    start_detached,
    step_events,
    supervisor_info,
    wait_for,
    wait_steps,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reaper")]


def _finished_with_exit(cwd, rid):
    """The run's record once it is final *and* its exit status is known (no transient state)."""
    rec = show(cwd, rid)
    return rec if rec["status"] != "running" and rec["exit_code"] is not None else None


# ---------------------------------------------------------------------------- followers
@pytest.fixture(scope="module")
def followed_run(tmp_path_factory):
    """A run whose followers are SIGKILLed 5 times (the foreground CLI first), then stopped."""
    cwd = tmp_path_factory.mktemp("followed")
    fg = foreground(cwd, *FOREVER, "--eval_steps", "40", "--run_name", "followed", log=cwd / "fg.log")
    procs = [fg]
    try:
        run_dir = wait_for(lambda: next((cwd / "runs").glob("*/events.jsonl"), None), 120, "the run folder").parent
        rid = run_dir.name
        wait_steps(run_dir, 3)
        # 1. The foreground `gpt2-tui train` itself: the run lives in its own session and goes on.
        fg.send_signal(signal.SIGKILL)
        fg.wait(10)
        rng = random.Random(5)
        seen = []
        for i in range(4):
            before = len(step_events(run_dir))
            wait_for(lambda b=before: len(step_events(run_dir)) > b, 60, "the run to go on after a kill")
            rec = show(cwd, rid)  # a fresh reader catches up with everything written so far
            assert rec["status"] == "running", rec["error"]
            steps = [s["step"] for s in rec["steps"]]
            assert steps == list(range(1, len(steps) + 1)), "a step row is missing or doubled"
            seen.append(len(steps))
            # 2. A dashboard-like follower, SIGKILLed at a random moment (often inside an ingest).
            f = follower(cwd, rid, poll_s=0.02)
            procs.append(f)
            time.sleep(rng.uniform(0.3, 1.5) + (1.0 if i == 0 else 0.0))
            f.send_signal(signal.SIGKILL)
            f.wait(10)
        assert alive(run_dir), "the run died with its followers"
        stop = cli(cwd, "stop", rid, "--json", "--grace", "60", timeout=150)
        assert stop.returncode == 0 and json.loads(stop.stdout)["status"] == "stopped", stop.stderr
        return cwd, rid, run_dir, seen
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for d in (cwd / "runs").glob("*"):  # a failure above must not leave the run training
            kill_all(d)


def test_killed_followers_lose_nothing_and_double_nothing(followed_run):
    cwd, rid, run_dir, seen = followed_run
    assert seen == sorted(seen) and seen[-1] > seen[0]  # every new reader caught up further
    rec = show(cwd, rid)
    assert rec["status"] == "stopped"
    assert_store_matches_events(cwd / "runs.db", rid, run_dir)
    assert [s["step"] for s in rec["steps"]] == list(range(1, rec["steps"][-1]["step"] + 1))
    assert rec["checkpoints"][-1]["step"] == rec["steps"][-1]["step"]  # the stop saved the last step
    assert not alive(run_dir)


def test_resume_a_stopped_run_continues_its_curve(followed_run):
    cwd, rid, run_dir, _ = followed_run
    old = show(cwd, rid)
    ck = old["checkpoints"][-1]
    r = cli(cwd, "train", "--resume", rid, "--max_steps", str(ck["step"] + 4), "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    new = json.loads(r.stdout.strip().splitlines()[-1])
    assert new["status"] == "finished" and new["id"] != rid
    assert new["parent_run"] == rid and new["resumed_from"] == ck["path"]
    assert [s["step"] for s in new["steps"]] == list(range(ck["step"] + 1, ck["step"] + 5))
    assert "resumed from" in r.stderr or any(
        e.get("text", "").startswith("resumed from") for e in events(cwd / "runs" / new["id"]))
    start = next(e for e in events(cwd / "runs" / new["id"]) if e["type"] == "start")
    assert start["resumed_from_step"] == ck["step"]
    assert show(cwd, rid)["status"] == "stopped"  # the old run is left as it was


# ---------------------------------------------------------------------------- a rank dies
def test_a_killed_rank_fails_the_run_naming_it(tmp_path):
    rid, run_dir = start_detached(tmp_path, *FOREVER)
    wait_steps(run_dir, 3)
    victim = rank_process(run_dir, 1)
    victim.send_signal(signal.SIGKILL)
    rec = wait_for(lambda: _finished_with_exit(tmp_path, rid), 60, "the run to fail")
    assert rec["status"] == "failed"
    err = rec["error"]
    assert f"rank 1 (pid {victim.pid}) died first (killed by SIGKILL)" in err, err
    assert "--- last lines of workerlog.1 ---" in err
    last_line = [ln for ln in (run_dir / "logs" / "workerlog.1").read_text(errors="replace").splitlines()
                 if ln.strip()][-1]
    assert err.rstrip().endswith(last_line.rstrip())
    assert not alive(run_dir)
    assert_store_matches_events(tmp_path / "runs.db", rid, run_dir)


# ---------------------------------------------------------------------------- the launcher dies
def test_a_killed_launcher_has_its_ranks_ended_by_the_supervisor(tmp_path):
    rid, run_dir = start_detached(tmp_path, *FOREVER)
    wait_steps(run_dir, 3)
    ranks = [rank_process(run_dir, 0), rank_process(run_dir, 1)]
    os.kill(supervisor_info(run_dir)["launcher_pid"], signal.SIGKILL)
    rec = wait_for(lambda: _finished_with_exit(tmp_path, rid), 60, "the run to be recorded")
    # The ranks, ended with SIGTERM, save and report 'stopped'; nobody asked for a stop: it failed.
    assert rec["status"] == "failed", rec["error"]
    assert "the launcher was killed by SIGKILL" in rec["error"]
    assert "its supervisor ended 2 orphaned process(es)" in rec["error"]
    assert rec["exit_code"] == -signal.SIGKILL
    assert json.loads((run_dir / "exit.json").read_text())["orphans_ended"] == 2
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
    assert not alive(run_dir)
    assert_store_matches_events(tmp_path / "runs.db", rid, run_dir)


def test_launcher_and_supervisor_killed_then_runs_reconciles(tmp_path):
    rid, run_dir = start_detached(tmp_path, *FOREVER)
    wait_steps(run_dir, 3)
    sup = supervisor_info(run_dir)
    os.kill(sup["pid"], signal.SIGKILL)
    os.kill(sup["launcher_pid"], signal.SIGKILL)
    time.sleep(1.0)
    orphans = [rank_process(run_dir, 0), rank_process(run_dir, 1)]  # still training, nobody watching
    assert not (run_dir / "exit.json").exists()
    r = cli(tmp_path, "runs", "--json")
    assert r.returncode == 0, r.stderr
    row = next(x for x in json.loads(r.stdout) if x["id"] == rid)
    assert row["status"] == "failed"
    rec = show(tmp_path, rid)
    assert rec["status"] == "failed"
    assert "the launcher and its supervisor were killed" in rec["error"]
    assert "2 orphaned process(es) of the run were ended" in rec["error"]
    psutil.wait_procs(orphans, timeout=5)
    assert not alive(run_dir)
    assert_store_matches_events(tmp_path / "runs.db", rid, run_dir)


# ---------------------------------------------------------------------------- a "reboot"
@pytest.fixture
def rebooted_run(tmp_path):
    # save_total_limit: 20,000 planned checkpoints would not fit on the disk (core.disk_plan refuses them)
    rid, run_dir = start_detached(tmp_path, *FOREVER, "--save_steps", "5", "--save_total_limit", "2")
    wait_for(lambda: any(e["type"] == "checkpoint" for e in events(run_dir)), 180, "a checkpoint")
    procs = alive(run_dir)
    assert len(procs) == 4  # supervisor, launcher, 2 ranks
    sup_pid = supervisor_info(run_dir)["pid"]
    # Everything at once, the supervisor first so that nobody writes exit.json: as a power cut does.
    for p in sorted(procs, key=lambda p: p.pid != sup_pid):
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return tmp_path, rid, run_dir


def test_a_reboot_leaves_the_run_lost_with_its_last_event_time(rebooted_run):
    cwd, rid, run_dir = rebooted_run
    last_t = max(e["t"] for e in events(run_dir))
    assert not any(e["type"] == "end" for e in events(run_dir))
    r = cli(cwd, "runs", "--json")
    assert r.returncode == 0, r.stderr
    assert next(x for x in json.loads(r.stdout) if x["id"] == rid)["status"] == "lost"
    rec = show(cwd, rid)
    assert rec["status"] == "lost" and rec["last_event_at"] == pytest.approx(last_t)
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_t)) in rec["error"]
    assert_store_matches_events(cwd / "runs.db", rid, run_dir)
    # ... and a lost run resumes from its latest checkpoint like a stopped one.
    ck = rec["checkpoints"][-1]
    r = cli(cwd, "train", "--resume", rid, "--max_steps", str(ck["step"] + 2), "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    new = json.loads(r.stdout.strip().splitlines()[-1])
    assert new["status"] == "finished" and new["parent_run"] == rid
    assert [s["step"] for s in new["steps"]] == [ck["step"] + 1, ck["step"] + 2]


# ---------------------------------------------------------------------------- the supervisor alone dies
def test_a_killed_supervisor_alone_leaves_a_healthy_run_running_to_its_end(tmp_path):
    rid, run_dir = start_detached(tmp_path, "--devices", "cpu:1", "--max_steps", "150", "--eval_steps", "1000",
                                  "--save_steps", "1000")
    wait_steps(run_dir, 3)
    os.kill(supervisor_info(run_dir)["pid"], signal.SIGKILL)
    r = cli(tmp_path, "runs", "--json")  # reconciles: the launcher and its rank still work
    assert next(x for x in json.loads(r.stdout) if x["id"] == rid)["status"] == "running"
    assert rank_process(run_dir, 0).is_running()
    rec = wait_for(lambda: (x := show(tmp_path, rid))["status"] != "running" and x, 120, "the run to end")
    assert rec["status"] == "finished" and rec["steps"][-1]["step"] == 150
    wait_for(lambda: not alive(run_dir), 30, "the launcher to exit")
    assert_store_matches_events(tmp_path / "runs.db", rid, run_dir)
