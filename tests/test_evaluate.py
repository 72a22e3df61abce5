"""core/evaluate.py as a real subprocess: classify reproduces the trainer's own eval, cloze needs no head."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from test_train_unit import DEV_ROWS, SAMPLE, TINY, _env, events, run_train

from core import batching


def run_eval(run_dir, checkpoint, *extra, eval_path=SAMPLE / "dev.tsv"):
    argv = [sys.executable, str(ROOT / "core" / "evaluate.py"), "--run_dir", str(run_dir), "--checkpoint",
            str(checkpoint), "--eval_path", str(eval_path), *extra]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=_env(), cwd=str(ROOT))
    return r, events(run_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train_for_eval")
    r = run_train(run_dir, "--max_steps", "30", "--eval_steps", "100", "--save_steps", "100")
    assert r.returncode == 0, r.stderr[-3000:]
    evs = events(run_dir)
    final_eval = [e for e in evs if e["type"] == "eval"][-1]
    ckpt = Path([e for e in evs if e["type"] == "checkpoint"][-1]["path"])
    return ckpt, final_eval


def _the_eval(evs):
    found = [e for e in evs if e["type"] == "eval"]
    assert len(found) == 1
    return found[0]


def test_classify_reproduces_the_training_eval(trained, tmp_path):
    ckpt, train_eval = trained
    r, evs = run_eval(tmp_path, ckpt)  # batch 64 here, 32 in the trainer: batching must not matter
    assert r.returncode == 0, r.stderr[-3000:]
    e = _the_eval(evs)
    assert e["accuracy"] == train_eval["accuracy"] and e["n"] == train_eval["n"] == DEV_ROWS
    assert e["loss"] == pytest.approx(train_eval["loss"], rel=1e-4)
    assert e["step"] == 30 and e["mode"] == "classify" and e["checkpoint"] == str(ckpt)
    conf = e["confusion"]
    assert sum(map(sum, conf)) == e["n"]
    assert (conf[0][0] + conf[1][1]) / e["n"] == pytest.approx(e["accuracy"])
    assert set(e["precision"]) == set(e["recall"]) == set(e["f1"]) == {"0", "1"}
    start = next(x for x in evs if x["type"] == "start")
    steps = [x for x in evs if x["type"] == "step"]
    assert start["total_steps"] == len(steps) == -(-DEV_ROWS // 64) and start["samples_per_epoch"] == DEV_ROWS
    assert [x["step"] for x in steps] == list(range(1, len(steps) + 1))
    assert evs[-1]["type"] == "end" and evs[-1]["status"] == "finished"


def test_cloze_on_the_untuned_model(tmp_path):
    r, evs = run_eval(tmp_path, TINY, "--mode", "cloze")
    assert r.returncode == 0, r.stderr[-3000:]
    e = _the_eval(evs)
    assert e["n"] == DEV_ROWS and 0.0 <= e["accuracy"] <= 1.0 and e["mode"] == "cloze"
    assert sum(map(sum, e["confusion"])) == DEV_ROWS and e["step"] == 0 and e["loss"] > 0


def test_cloze_on_a_fine_tuned_checkpoint(trained, tmp_path):
    ckpt, _ = trained
    r, evs = run_eval(tmp_path, ckpt, "--mode", "cloze")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _the_eval(evs)["n"] == DEV_ROWS


def test_cloze_without_lm_weights_is_a_clear_error(trained, tmp_path):
    ckpt, _ = trained
    head_only = tmp_path / "head-only"
    shutil.copytree(ckpt, head_only)
    # in a subprocess: the test process never imports paddle (the UI-side guard tests rely on that)
    code = ("import paddle, sys; s = paddle.load(sys.argv[1]); "
            "paddle.save({k: v for k, v in s.items() if k == 'score.weight'}, sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(ckpt / "model_state.pdparams"),
                    str(head_only / "model_state.pdparams")], check=True, capture_output=True, env=_env())
    r, evs = run_eval(tmp_path / "ev", head_only, "--mode", "cloze")
    assert r.returncode == 1
    assert evs[-1]["status"] == "failed" and "language-model weights" in evs[-1]["reason"]


def test_run_glue_style_checkpoint_takes_the_tokenizer_from_its_parent(trained, tmp_path):
    ckpt, train_eval = trained
    out = tmp_path / "output"
    bare = out / "checkpoint-30"
    bare.mkdir(parents=True)
    for f in ("model_state.pdparams", "config.json"):
        shutil.copy(ckpt / f, bare / f)
    # no tokenizer anywhere: a clear error that names the way out
    r, evs = run_eval(tmp_path / "ev1", bare)
    assert r.returncode == 1 and "--tokenizer" in evs[-1]["reason"]
    r, evs = run_eval(tmp_path / "ev2", bare, "--tokenizer", str(TINY), "--max_seq_length", "64")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _the_eval(evs)["accuracy"] == train_eval["accuracy"]
    for f in ("vocab.json", "merges.txt"):  # run_glue saves the tokenizer in output_dir
        shutil.copy(TINY / f, out / f)
    r, evs = run_eval(tmp_path / "ev3", bare, "--max_seq_length", "64")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _the_eval(evs)["step"] == 0  # no trainer_state.json


def test_unlabelled_file_fails_cleanly(tmp_path):
    r, evs = run_eval(tmp_path, TINY, eval_path=SAMPLE / "test.tsv")
    assert r.returncode == 1
    assert evs[-1]["type"] == "end" and evs[-1]["status"] == "failed" and "test.tsv" in evs[-1]["reason"]


def test_metrics_by_hand():
    m = batching.classification_metrics(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]))
    assert m["confusion"] == [[1, 1], [1, 2]] and m["accuracy"] == pytest.approx(0.6)
    assert m["precision"]["1"] == pytest.approx(2 / 3) and m["recall"]["1"] == pytest.approx(2 / 3)
    assert m["precision"]["0"] == pytest.approx(0.5) and m["f1"]["0"] == pytest.approx(0.5)


def test_help_quotes_the_cloze_prompt_and_words():
    r = subprocess.run([sys.executable, str(ROOT / "core" / "evaluate.py"), "--help"], capture_output=True,
                       text=True, timeout=120, env=_env())
    text = " ".join(r.stdout.split())  # argparse wraps lines
    assert r.returncode == 0 and "'{sentence} It was'" in text and "' terrible' (0)" in text
    assert "' great' (1)" in text


def test_our_state_is_json(trained):
    ckpt, _ = trained
    state = json.loads((ckpt / "gpt2tui_state.json").read_text())
    assert state["max_seq_length"] == 64 and Path(state["model_dir"]).is_absolute()
