"""The engine end to end: the installed `gpt2-tui train`, 2 CPU ranks under paddle.distributed.launch.

One default offline run (module fixture, about a minute) is checked from every side; stop and resume
use runs of their own.
"""

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, gpt2_tui

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    r = gpt2_tui("--db", str(work / "runs.db"), "train", "--json", cwd=work, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, json.loads(r.stdout.strip().splitlines()[-1]), r


def test_default_offline_run_finishes_and_is_recorded(offline_run):
    work, rec, r = offline_run
    assert rec["status"] == "finished" and rec["exit_code"] == 0
    assert rec["config"]["model_name_or_path"] == "gpt2-tiny" and rec["world_size"] == 2
    steps = [s["step"] for s in rec["steps"]]
    assert len(steps) >= 40 and steps == list(range(1, len(steps) + 1))  # one row per step
    assert len(steps) == rec["total_steps"]
    losses = [s["loss"] for s in rec["steps"]]
    assert sum(losses[-10:]) < sum(losses[:10])
    assert all(s["samples_per_s"] and s["samples_per_s"] > 0 for s in rec["steps"])
    assert "ETA" in r.stderr  # the progress line was shown


def test_offline_run_reaches_085_on_the_sample_dev_split(offline_run):
    _, rec, _ = offline_run
    dev_rows = sum(1 for _ in open(ROOT / "assets/sst2-sample/dev.tsv")) - 1
    final = [e for e in rec["evals"] if e["step"] == rec["total_steps"]]
    assert final and final[0]["n"] == dev_rows
    assert final[0]["accuracy"] >= 0.85, rec["evals"]


def test_runs_lists_it_and_export_matches(offline_run):
    work, rec, _ = offline_run
    runs = json.loads(gpt2_tui("--db", "runs.db", "runs", "--json", cwd=work, check=True).stdout)
    assert [x["id"] for x in runs] == [rec["id"]] and runs[0]["status"] == "finished"
    csv_text = gpt2_tui("--db", "runs.db", "export", rec["id"], "--format", "csv", cwd=work, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert sum(1 for r in rows if r["kind"] == "step") == len(rec["steps"])
    assert sum(1 for r in rows if r["kind"] == "eval") == len(rec["evals"])
    db = sqlite3.connect(work / "runs.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_checkpoint_loads_and_reproduces_the_dev_accuracy(offline_run):
    work, rec, _ = offline_run
    last = rec["checkpoints"][-1]
    ckpt = Path(last["path"])
    assert last["step"] == rec["total_steps"] and ckpt.name == f"checkpoint-{last['step']}"
    for f in ("model_state.pdparams", "config.json", "vocab.json", "merges.txt"):
        assert (ckpt / f).exists(), f
    out = work / "re-eval"
    out.mkdir()
    subprocess.run([sys.executable, str(ROOT / "core" / "evaluate.py"), "--run_dir", str(out), "--checkpoint",
                    str(ckpt), "--eval_path", str(ROOT / "assets/sst2-sample/dev.tsv"), "--device", "cpu"],
                   check=True, capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    evs = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()]
    ev = next(e for e in evs if e["type"] == "eval")
    train_acc = next(e["accuracy"] for e in rec["evals"] if e["step"] == last["step"])
    assert ev["accuracy"] == pytest.approx(train_acc, abs=1e-9)


def _wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_stop_saves_a_checkpoint_and_leaves_no_process(tmp_path):
    r = gpt2_tui("--db", "runs.db", "train", "--detach", "--max_steps", "2000", "--save_steps", "1000",
                 "--eval_steps", "1000", "--run_name", "to stop", cwd=tmp_path, check=True)
    rid = r.stdout.strip().splitlines()[-1]

    def steps():
        show = json.loads(gpt2_tui("--db", "runs.db", "show", rid, "--json", cwd=tmp_path, check=True).stdout)
        return len(show["steps"]) >= 3 and show

    rec = _wait_for(steps, 180, "3 steps")
    pgid = rec["pgid"]
    stop = gpt2_tui("--db", "runs.db", "stop", rid, "--json", cwd=tmp_path, check=True, timeout=120)
    assert json.loads(stop.stdout)["status"] == "stopped"
    rec = json.loads(gpt2_tui("--db", "runs.db", "show", rid, "--json", cwd=tmp_path, check=True).stdout)
    assert rec["status"] == "stopped"
    assert rec["checkpoints"] and Path(rec["checkpoints"][-1]["path"], "model_state.pdparams").exists()
    assert rec["checkpoints"][-1]["step"] == rec["steps"][-1]["step"]
    assert not _processes_naming(rec["run_dir"], pgid)


def _processes_naming(run_dir: str, pgid: int) -> list:
    """Any process of the run: in its group, or with the run folder in its argv (ranks run in own sessions)."""
    left = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:  # exited; PID 1 here reaps late
            continue
        try:
            if os.getpgid(p.pid) == pgid or any(run_dir in a for a in p.info["cmdline"] or []):
                left.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return left
