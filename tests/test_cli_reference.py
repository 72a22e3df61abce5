"""The reference's own commands through the installed `gpt2-tui` (issue 11), with real training and evaluation.

The training command is the reference's as written, except for what this CPU-only, offline machine forces:
`--device cpu` instead of `--device gpu` (a GPU request without a GPU is refused, issue 10), the model and
data pointed at the bundled gpt2-tiny and SST-2 sample, and `--max_steps 3` to keep the test short. The
evaluation command is run_eval_sst2.py's as written, with the same substitutions, on the checkpoint that
training left in ./output_dir/glue.
"""

import json
import shutil

import pytest
from conftest import ROOT, gpt2_tui

pytestmark = pytest.mark.slow

SAMPLE_DEV = ROOT / "assets" / "sst2-sample" / "dev.tsv"
TRAIN = ("--model_name_or_path gpt2-tiny --task_name SST-2 --max_seq_length 128 --per_device_train_batch_size 32 "
         "--learning_rate 2e-5 --num_train_epochs 3 --logging_steps 1 --save_steps 500 --output_dir ./output_dir/glue "
         "--eval_steps 1 --device cpu --do_train true --data_dir sample --max_steps 3").split()


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    r = gpt2_tui("train", *TRAIN, "--json", "--db", "runs.db", cwd=work, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_the_reference_training_command_runs_as_written(reference_run):
    work, rec, err = reference_run
    assert rec["status"] == "finished" and rec["config"]["task_name"] == "SST-2"
    assert rec["config"]["do_train"] is True and rec["config"]["eval_steps"] == 1
    assert [e["step"] for e in rec["evals"]] == [1, 2, 3]  # eval_steps 1 acts alone: every step
    # ...and train said what that costs before it started
    assert "warning: evaluation would take ~" in err and "every step" in err and "--eval_steps" in err
    ckpt = work / "output_dir" / "glue" / "checkpoint-3"
    assert (ckpt / "model_state.pdparams").is_file()


def _eval(work, *args):
    return gpt2_tui("eval", *args, "--eval_path", str(SAMPLE_DEV), "--batch_size", "1", "--device", "cpu",
                    "--db", "runs.db", "--json", cwd=work, timeout=600)


def test_the_reference_evaluation_command_on_a_bare_pdparams(reference_run, tmp_path):
    work, rec, _ = reference_run
    bare = tmp_path / "elsewhere" / "model_state.pdparams"  # no config, no tokenizer beside it
    bare.parent.mkdir()
    shutil.copy(work / "output_dir" / "glue" / "checkpoint-3" / "model_state.pdparams", bare)
    r = _eval(work, "--cloze_eval", "--init_checkpoint_path", str(bare))
    assert r.returncode == 2 and "--model_name" in r.stderr and "Traceback" not in r.stderr
    r = _eval(work, "--model_name", "gpt2-tiny", "--cloze_eval", "--init_checkpoint_path", str(bare))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["mode"] == "cloze" and res["n"] == 300 and 0 <= res["accuracy"] <= 1
    # The same weights in classify mode: the fine-tuned head, the run's own last dev accuracy.
    r = _eval(work, "--model_name", "gpt2-tiny", "--init_checkpoint_path", str(bare))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["accuracy"] == rec["evals"][-1]["accuracy"]
    # Recorded as an imported run that the history lists, with both evaluations as its own.
    runs = json.loads(gpt2_tui("runs", "--json", "--db", "runs.db", cwd=work, check=True).stdout)
    imported = [x for x in runs if x["name"] == "elsewhere (imported)"]
    assert len(imported) == 1 and imported[0]["status"] == "finished"
    shown = json.loads(gpt2_tui("show", imported[0]["id"], "--json", "--db", "runs.db", cwd=work, check=True).stdout)
    assert sorted(e["mode"] for e in shown["evals"]) == ["classify", "cloze"]
    assert [c["step"] for c in shown["checkpoints"]] == [0]  # a bare file in a folder not named checkpoint-N
    # Asked again: the same import, recognised as a repeat (nothing is run).
    r = _eval(work, "--model_name", "gpt2-tiny", "--cloze_eval", "--init_checkpoint_path", str(bare))
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["repeat"] is True


def test_a_checkpoint_folder_needs_no_model_name(reference_run):
    work, rec, _ = reference_run
    ckpt = work / "output_dir" / "glue" / "checkpoint-3"
    r = _eval(work, "--init_checkpoint_path", str(ckpt))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["step"] == 3 and res["accuracy"] == rec["evals"][-1]["accuracy"]
