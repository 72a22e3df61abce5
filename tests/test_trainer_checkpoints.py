"""Checkpoints of a real single-process run: save_total_limit, stale temporary folders, and PaddleNLP's
TrainerState loading every checkpoint's trainer_state.json (in a subprocess: this process never imports
paddle)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_train_unit import _env, events, run_train

from core import checkpoint_files as cf
from core.events import TYPES

LOAD_STATES = """
import json, sys
from paddlenlp.trainer.trainer_callback import TrainerState
out = {}
for path in sys.argv[1:]:
    s = TrainerState.load_from_json(path)
    out[path] = {"global_step": s.global_step, "max_steps": s.max_steps, "log_history": s.log_history,
                 "best_metric": s.best_metric, "best_model_checkpoint": s.best_model_checkpoint, "epoch": s.epoch}
print(json.dumps(out))
"""


def load_with_paddlenlp(paths):
    r = subprocess.run([sys.executable, "-c", LOAD_STATES, *map(str, paths)], capture_output=True, text=True,
                       timeout=300, env=_env(), cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("limited")
    out = run_dir / "checkpoints"
    stale = out / ".checkpoint-1.tmp-999999999"  # a save interrupted by a crash (no such pid)
    (stale / "half").mkdir(parents=True)
    r = run_train(run_dir, "--max_steps", "12", "--eval_steps", "3", "--save_steps", "3", "--save_total_limit", "2",
                  "--logging_steps", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir, events(run_dir)


def test_save_total_limit_keeps_the_newest_and_the_best(limited):
    run_dir, evs = limited
    out = run_dir / "checkpoints"
    saved = [e["step"] for e in evs if e["type"] == "checkpoint"]
    assert saved == [3, 6, 9, 12]
    acc = {e["step"]: e["accuracy"] for e in evs if e["type"] == "eval"}
    best = min(s for s in saved if acc[s] == max(acc.values()))  # the first step that reached the best
    left = [s for s, _ in cf.list_checkpoints(out)]
    assert left == sorted({9, 12, best})
    gone = sorted(set(saved) - set(left))
    said = [e["text"] for e in evs if e["type"] == "log" and "save_total_limit" in e["text"]]
    assert [t.split()[1] for t in said] == [f"checkpoint-{s}" for s in gone]
    if "checkpoint_deleted" in TYPES:  # the event type comes with the store's schema change (engineer H6)
        deleted = [e for e in evs if e["type"] == "checkpoint_deleted"]
        assert [e["step"] for e in deleted] == gone
        assert all(e["path"] == str(out / f"checkpoint-{e['step']}") for e in deleted)
    # the optimizer state (twice the weights) only where resume needs it: the newest
    assert [s for s, d in cf.list_checkpoints(out) if (d / cf.OPTIMIZER_FILE).exists()] == [12]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_stale_temporary_folder_is_removed_at_start_and_said(limited):
    _, evs = limited
    assert any(e["type"] == "log" and ".checkpoint-1.tmp-999999999" in e["text"] for e in evs)


def test_paddlenlp_loads_every_trainer_state(limited):
    run_dir, evs = limited
    ckpts = cf.list_checkpoints(run_dir / "checkpoints")
    states = load_with_paddlenlp([d / cf.PADDLENLP_STATE for _, d in ckpts])
    acc = {e["step"]: e["accuracy"] for e in evs if e["type"] == "eval"}
    logged = {e["step"]: e for e in evs if e["type"] == "step"}
    for step, d in ckpts:
        s = states[str(d / cf.PADDLENLP_STATE)]
        assert s["global_step"] == step and s["max_steps"] == 12
        train = [h for h in s["log_history"] if "loss" in h]
        evals = [h for h in s["log_history"] if "eval_accuracy" in h]
        assert [h["step"] for h in train] == [k for k in sorted(logged) if k <= step]  # logging_steps 2
        assert all(h["global_step"] == h["step"] and h["loss"] == pytest.approx(logged[h["step"]]["loss"])
                   and "progress_or_epoch" in h and "learning_rate" in h for h in train)
        assert [(h["step"], h["eval_accuracy"]) for h in evals] == [(k, acc[k]) for k in sorted(acc) if k <= step]
        assert s["best_metric"] == max(acc[k] for k in acc if k <= step)
        assert Path(s["best_model_checkpoint"]).name.startswith("checkpoint-")
        ours = json.loads((d / cf.OUR_STATE).read_text())
        assert ours["global_step"] == step and ours["lr_step"] == step and ours["world_size"] == 1
        assert ours["best_accuracy"] == max(acc[k] for k in acc if k <= step)


def test_resume_continues_the_log_history(limited, tmp_path):
    run_dir, _ = limited
    ck = run_dir / "checkpoints" / "checkpoint-12"
    r = run_train(tmp_path, "--max_steps", "14", "--eval_steps", "100", "--save_steps", "100",
                  "--logging_steps", "2", "--resume_from", str(ck))
    assert r.returncode == 0, r.stderr[-3000:]
    before = json.loads((ck / cf.PADDLENLP_STATE).read_text())["log_history"]
    new = tmp_path / "checkpoints" / "checkpoint-14"
    after = load_with_paddlenlp([new / cf.PADDLENLP_STATE])[str(new / cf.PADDLENLP_STATE)]
    assert after["log_history"][: len(before)] == before
    assert [h["step"] for h in after["log_history"][len(before):]] == [14, 14]  # the last step, its eval


def test_an_old_checkpoint_without_our_state_file_still_resumes(limited, tmp_path):
    run_dir, _ = limited
    old = tmp_path / "old" / "checkpoint-12"
    old.parent.mkdir()
    subprocess.run(["cp", "-r", str(run_dir / "checkpoints" / "checkpoint-12"), str(old)], check=True)
    ours = json.loads((old / cf.OUR_STATE).read_text())
    (old / cf.OUR_STATE).unlink()
    (old / cf.PADDLENLP_STATE).write_text(json.dumps(ours))  # the format before gpt2tui_state.json
    r = run_train(tmp_path / "run", "--max_steps", "13", "--eval_steps", "100", "--save_steps", "100",
                  "--resume_from", str(old))
    assert r.returncode == 0, r.stderr[-3000:]
    start = next(e for e in events(tmp_path / "run") if e["type"] == "start")
    assert start["resumed_from_step"] == 12


@pytest.mark.slow
def test_two_ranks_wait_out_a_save_longer_than_gloo_lets_a_collective_wait(tmp_path):
    """bench/medium_cpu.py found it: GPT-2 Medium's save took rank 0 over 30 s while rank 1 sat in the next
    step's gradient all-reduce, and gloo aborted rank 1 (SIGABRT, gloo::TimeoutException). The ranks now
    meet every second while rank 0 writes; here the save at step 2 is made to take 35 s."""
    from conftest import gpt2_tui

    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "train", "--devices", "cpu:2", "--max_steps", "3",
                 "--save_steps", "2", "--eval_steps", "1000", "--json", cwd=tmp_path, timeout=400,
                 env={"GPT2_TUI_TEST_SLOW_SAVE_AT_STEP": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "finished" and rec["summary"]["last_step"] == 3
    assert [c["step"] for c in rec["checkpoints"]] == [2, 3]
