"""core.paddlenlp_lean: the workers import PaddleNLP's GPT-2 classes without paddlenlp/__init__'s eager
imports, train and evaluate exactly as with a plain ``import paddlenlp``, and plain use still works.

Each case is a fresh subprocess (what is in sys.modules is the point). ~25 s in all on 2 cores: a
4-step training run and an evaluation, each with the lean import and with the plain one.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from core.paddlenlp_lean import HEAVY_MODULES
from core.trainer import phases

TINY = ROOT / "assets" / "gpt2-tiny"
SAMPLE = ROOT / "assets" / "sst2-sample"

# Runs a worker's main() in this process, then says what it imported. "plain" imports paddlenlp first,
# the package's own way, so the worker's install() finds it there and changes nothing.
WORKER = r"""
import json, sys
mode, worker, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "plain":
    import paddlenlp
if worker == "train":
    from core.trainer.main import main
else:
    from core.evaluate import main
rc = main(argv)
import paddlenlp
from core import paddlenlp_lean
print("RESULT " + json.dumps({"rc": rc, "heavy": paddlenlp_lean.heavy_modules_loaded(),
                              "package": type(paddlenlp).__name__}))
"""


def _env():
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def _worker(mode, worker, *argv):
    p = subprocess.run([sys.executable, "-c", WORKER, mode, worker, *map(str, argv)], capture_output=True,
                       text=True, timeout=300, env=_env(), cwd=str(ROOT))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, p.stdout[-2000:] + p.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):]), p.stdout


def _events(run_dir):
    return [json.loads(line) for line in open(run_dir / "events.jsonl", encoding="utf-8")]


def _numbers(evs):
    """What a run computed: per-step loss and lr, evaluation results (no times)."""
    keep = {"step": ("step", "loss", "lr", "epoch"), "eval": ("step", "accuracy", "loss", "n")}
    return [(e["type"], *(e[k] for k in keep[e["type"]])) for e in evs if e["type"] in keep]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The same 4-step run (eval and checkpoint at step 4), with the lean import and with the plain one."""
    out = {}
    for mode in ("lean", "plain"):
        run_dir = tmp_path_factory.mktemp(f"train-{mode}")
        res, stdout = _worker(mode, "train", "--run_dir", run_dir, "--model_dir", TINY, "--data_dir", SAMPLE,
                              "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
                              "--max_seq_length", "64", "--max_steps", "4", "--eval_steps", "4",
                              "--save_steps", "4", "--logging_steps", "1", "--seed", "3")
        out[mode] = (run_dir, res, _events(run_dir), stdout)
    return out


def test_worker_trains_without_the_heavy_modules(trained):
    _, res, evs, stdout = trained["lean"]
    assert res["rc"] == 0 and res["package"] == "LazyPackage"
    assert res["heavy"] == []  # taskflow, datasets, metrics -> seqeval -> scikit-learn never imported
    assert evs[-1]["type"] == "end" and evs[-1]["status"] == "finished"
    assert [e["step"] for e in evs if e["type"] == "checkpoint"] == [4]
    start = next(e for e in evs if e["type"] == "start")
    assert start["versions"]["paddlenlp"] == "2.8.1.post"  # __version__ from the package's own __init__
    # the worker's start-up line, phase by phase, in its log
    line = next(ln for ln in stdout.splitlines() if "] startup " in ln)
    parsed = phases.parse(line)
    assert parsed is not None and {"paddle", "paddlenlp", "model", "data", "optimiser"} <= set(parsed)


def test_plain_import_is_what_the_check_would_see(trained):
    # the control: with paddlenlp imported the package's way, the heavy modules are there
    _, res, _, _ = trained["plain"]
    assert res["rc"] == 0 and res["package"] == "module"
    assert {"paddlenlp.taskflow", "sklearn", "seqeval"} <= set(res["heavy"])


def test_training_results_do_not_depend_on_the_import(trained):
    lean, plain = _numbers(trained["lean"][2]), _numbers(trained["plain"][2])
    assert len(lean) == 5 and lean == plain  # 4 steps and an eval, equal to the last bit
    weights = [(trained[m][0] / "checkpoints" / "checkpoint-4" / "model_state.pdparams").read_bytes()
               for m in ("lean", "plain")]
    assert weights[0] == weights[1]


@pytest.mark.parametrize("mode", ["classify", "cloze"])
def test_evaluation_results_do_not_depend_on_the_import(trained, tmp_path, mode):
    ckpt = trained["lean"][0] / "checkpoints" / "checkpoint-4"
    got = {}
    for imp in ("lean", "plain"):
        run_dir = tmp_path / imp
        res, stdout = _worker(imp, "eval", "--run_dir", run_dir, "--checkpoint", ckpt,
                              "--eval_path", SAMPLE / "dev.tsv", "--mode", mode, "--device", "cpu")
        assert res["rc"] == 0
        assert res["heavy"] == ([] if imp == "lean" else res["heavy"]) and (imp == "plain") == bool(res["heavy"])
        evs = _events(run_dir)
        ev = next(e for e in evs if e["type"] == "eval")
        got[imp] = (ev["accuracy"], ev["loss"], ev["n"], ev["confusion"])
        assert phases.parse(next(ln for ln in stdout.splitlines() if "] startup " in ln)) is not None
    assert got["lean"] == got["plain"]
    if mode == "classify":  # the checkpoint scores the dev file as the training run's own eval did
        train_eval = next(e for e in trained["lean"][2] if e["type"] == "eval")
        assert got["lean"][0] == pytest.approx(train_eval["accuracy"])


PLAIN_USE = r"""
import json, sys
from core import paddlenlp_lean
first = paddlenlp_lean.install()
again = paddlenlp_lean.install()
import paddlenlp
from paddlenlp.transformers import GPTForSequenceClassification, GPTTokenizer
lean_heavy = paddlenlp_lean.heavy_modules_loaded()
names = dir(paddlenlp)
import paddlenlp.trainer  # imports in circles that only paddlenlp/__init__'s order resolves
from paddlenlp.trainer import Trainer, TrainingArguments
taskflow = paddlenlp.Taskflow.__module__
print(json.dumps({"first": first, "again": again, "lean_heavy": lean_heavy, "version": paddlenlp.__version__,
                  "dir": "transformers" in names and "Taskflow" in names, "trainer": Trainer.__module__,
                  "taskflow": taskflow, "same": paddlenlp.transformers.GPTTokenizer is GPTTokenizer,
                  "complete": paddlenlp._complete, "trainer_spec": paddlenlp.trainer.__spec__.origin}))
"""


def test_plain_paddlenlp_use_still_works_after_install():
    p = subprocess.run([sys.executable, "-c", PLAIN_USE], capture_output=True, text=True, timeout=300,
                       env=_env(), cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["first"] is True and r["again"] is False
    assert r["lean_heavy"] == [] and r["version"] == "2.8.1.post" and r["dir"] and r["same"]
    # the first import outside the GPT-2 path ran the package's whole __init__, then the import went on
    assert r["complete"] is True and r["trainer"] == "paddlenlp.trainer.trainer"
    assert r["taskflow"] == "paddlenlp.taskflow.taskflow"
    assert r["trainer_spec"].endswith(os.path.join("paddlenlp", "trainer", "__init__.py"))


def test_heavy_list_names_real_modules():
    # a typo here would make the "not imported" checks pass for nothing
    import importlib.util
    from pathlib import Path

    package = Path(importlib.util.find_spec("paddlenlp").origin).parent  # finding it imports nothing
    for m in HEAVY_MODULES:
        if m.startswith("paddlenlp."):
            assert (package / m.split(".")[1] / "__init__.py").is_file(), m
        else:
            assert importlib.util.find_spec(m) is not None, m
