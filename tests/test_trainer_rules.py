"""The trainer's pure rules (core.trainer.schedule, fastpath, elastic), tested without paddle."""

import subprocess
import sys

import pytest
from conftest import ROOT

from core.presets import reference_preset
from core.trainer import elastic, schedule
from core.trainer.fastpath import amp_request, choose_fast_path, recipe_changes


def test_the_rules_load_without_paddle():
    # In a fresh interpreter: other tests in this process may have imported paddle already.
    code = ("import sys; import core.trainer.schedule, core.trainer.fastpath, core.trainer.elastic, "
            "core.trainer.state, core.trainer.fallback; print('paddle' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- steps
def test_total_steps_max_steps_wins_else_epochs_rounded_up():
    assert schedule.total_steps(7, 3.0, 100) == 7
    assert schedule.total_steps(0, 1.5, 24) == 36
    assert schedule.total_steps(0, 0.01, 24) == 1


@pytest.mark.parametrize("steps,ratio,total,expect", [(0, 0.0, 100, 0), (0, 0.1, 100, 10), (0, 0.1, 99, 9),
                                                      (10, 0.5, 100, 10), (250, 0.0, 100, 250)])
def test_warmup_steps_override_the_ratio(steps, ratio, total, expect):
    assert schedule.warmup_steps(steps, ratio, total) == expect


def test_resume_position():
    assert schedule.resume_position(2.5, 10) == (2, 5)
    assert schedule.resume_position(1.0, 10) == (1, 0)


# --------------------------------------------------------------------------- when to evaluate and save
def _evals(do_eval, strategy, every=4, steps=10, epoch_len=3):
    return [s for s in range(1, steps + 1)
            if schedule.should_evaluate(s, s == steps, s % epoch_len == 0, do_eval, strategy, every)]


def test_evaluation_strategy():
    assert _evals(True, "steps") == [4, 8, 10]
    assert _evals(True, "epoch") == [3, 6, 9, 10]
    assert _evals(True, "no") == [10]
    for strategy in ("steps", "epoch", "no"):
        assert _evals(False, strategy) == []  # do_eval false: no evaluation at all, not even the last


def test_save_strategy_always_saves_the_last_step():
    def saves(strategy):
        return [s for s in range(1, 11) if schedule.should_save(s, s == 10, s % 3 == 0, strategy, 4)]

    assert saves("steps") == [4, 8, 10]
    assert saves("epoch") == [3, 6, 9, 10]
    assert saves("no") == [10]


# --------------------------------------------------------------------------- the fast path
def _gpu(major, flash=True):
    return (lambda: (major, 0)), (lambda: flash)


def test_cpu_stays_fp32_and_says_why():
    for req, word in (("float16", "fp16"), ("bfloat16", "bf16"), ("auto", "use_amp")):
        fp = choose_fast_path("cpu", req, "O2", *_gpu(8))
        assert fp["amp_dtype"] is None and word in fp["note"] and "GPU only" in fp["note"]
    assert choose_fast_path("cpu", None, "O2", *_gpu(8))["note"] == "cpu: fp32, no flash attention"


def test_gpu_auto_picks_by_capability_and_forced_dtypes_hold():
    assert choose_fast_path("gpu", "auto", "O2", *_gpu(8))["amp_dtype"] == "bfloat16"
    v100 = choose_fast_path("gpu", "auto", "O2", *_gpu(7))
    assert v100["amp_dtype"] == "float16" and v100["grad_scaler"] and not v100["flash_attention"]
    forced = choose_fast_path("gpu", "float16", "O2", *_gpu(9), drop_dropout=True)
    assert forced["amp_dtype"] == "float16" and forced["grad_scaler"] and forced["flash_attention"]
    bf_old = choose_fast_path("gpu", "bfloat16", "O2", *_gpu(7))
    assert bf_old["amp_dtype"] == "bfloat16" and not bf_old["grad_scaler"] and "7.0" in bf_old["note"]
    assert choose_fast_path("gpu", None, "O2", *_gpu(8))["amp_dtype"] is None
    assert not choose_fast_path("gpu", "auto", "O2", *_gpu(8, flash=False))["flash_attention"]


def test_flash_attention_only_when_dropout_may_go_and_fast_path_off_keeps_the_recipe():
    kept = choose_fast_path("gpu", "auto", "O2", *_gpu(9))
    assert not kept["flash_attention"] and not kept["dropout_zeroed"] and "dropout kept" in kept["note"]
    dropped = choose_fast_path("gpu", "auto", "O2", *_gpu(9), drop_dropout=True)
    assert dropped["flash_attention"] and dropped["dropout_zeroed"]
    off = choose_fast_path("gpu", None, "O2", *_gpu(9), fast_path="off", drop_dropout=True)
    assert off["amp_dtype"] is None and not off["flash_attention"] and not off["fuse_attention_qkv"]
    ref = reference_preset()
    assert amp_request(ref) == "auto" and amp_request(ref.replace(fast_path="off")) is None
    assert amp_request(ref.replace(fast_path="off", bf16=True)) == "bfloat16"  # asked for by name: honoured
    assert recipe_changes(ref.replace(fast_path="off"), gpu=True) == []
    assert recipe_changes(ref, gpu=False) == []
    changes = recipe_changes(ref, gpu=True)
    assert any("instead of fp32" in c for c in changes) and any("dropout kept" in c for c in changes)
    assert any("dropout set to 0" in c for c in recipe_changes(ref.replace(flash_attention_drops_dropout=True), True))


def test_opt_level_o1_has_no_master_grads():
    o1 = choose_fast_path("gpu", "auto", "O1", *_gpu(8))
    assert o1["amp_level"] == "O1" and not o1["master_grad"]
    o2 = choose_fast_path("iluvatar_gpu", "auto", "O2", *_gpu(8))
    assert o2["amp_level"] == "O2" and o2["master_grad"] and o2["amp_dtype"] == "float16"
    assert choose_fast_path("iluvatar_gpu", "bfloat16", "O1", *_gpu(8))["amp_dtype"] == "bfloat16"


# --------------------------------------------------------------------------- elastic restarts
def test_restart_expected():
    assert elastic.restart_expected("failed", 2, 0, stop_requested=False, signalled=False)
    assert elastic.restart_expected("stopped", 2, 1, stop_requested=False, signalled=True)
    assert not elastic.restart_expected("stopped", 2, 1, stop_requested=True, signalled=True)
    assert not elastic.restart_expected("failed", 2, 2, stop_requested=False, signalled=False)
    assert not elastic.restart_expected("finished", 2, 0, stop_requested=False, signalled=False)


def test_restarts_so_far(tmp_path):
    f = tmp_path / "events.jsonl"
    assert elastic.restarts_so_far(f) == 0
    f.write_text('{"type":"start"}\n{"type":"step"}\n{"type":"start"}\n')
    assert elastic.restarts_so_far(f) == 2


# --------------------------------------------------------------------------- what a checkpoint records
def test_record_best_checkpoint_is_the_saved_one_with_the_best_eval(tmp_path):
    from core.trainer.state import RunRecord, state_files

    r = RunRecord()
    r.logged_step(2, 0.1, 0.7, 1e-3, 0.5, 16.0)
    r.evaluated(2, 0.1, 0.6, 0.69, 1.0, 300.0)
    r.saving(2, tmp_path / "checkpoint-2")
    r.evaluated(3, 0.15, 0.9, 0.5, 1.0, 300.0)  # the best eval, but no checkpoint at step 3
    r.saving(4, tmp_path / "checkpoint-4")  # no eval at step 4: not a candidate
    assert r.best_accuracy == 0.9 and r.best_metric == 0.6 and r.best_model_checkpoint.endswith("checkpoint-2")
    files = state_files(r, {"global_step": 4, "epoch": 0.2, "steps_per_epoch": 20}, 40)
    nlp, ours = files["trainer_state.json"], files["gpt2tui_state.json"]
    assert nlp["global_step"] == 4 and nlp["max_steps"] == 40 and nlp["num_train_epochs"] == 2
    assert [h["step"] for h in nlp["log_history"]] == [2, 2, 3]
    assert nlp["log_history"][0] == {"loss": 0.7, "learning_rate": 1e-3, "global_step": 2, "interval_runtime": 0.5,
                                     "interval_samples_per_second": 16.0, "interval_steps_per_second": 2.0,
                                     "progress_or_epoch": 0.1, "step": 2}
    assert ours["best_accuracy"] == 0.9 and "log_history" not in ours

    resumed = RunRecord()
    resumed.resumed(ours, nlp, start_step=2)  # entries after the checkpoint's step are dropped
    assert [h["step"] for h in resumed.log_history] == [2, 2] and resumed.best_metric == 0.6
