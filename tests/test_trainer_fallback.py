"""The fast path's safety net: pure rules without paddle, and a real run on the CPU whose attention is
patched to raise what paddle raises (a flash-attention kernel error, a GPU out-of-memory error)."""

import json
import subprocess
import sys

from conftest import ROOT
from test_train_unit import SAMPLE, TINY, _env, events

from core.trainer import fallback

FULL = {"amp_dtype": "bfloat16", "amp_level": "O2", "master_grad": True, "grad_scaler": False,
        "flash_attention": True, "fuse_attention_qkv": True, "dropout_zeroed": True}


def test_error_kinds():
    assert fallback.error_kind(RuntimeError("ResourceExhaustedError: Out of memory error on GPU 0")) == "oom"
    assert fallback.error_kind(MemoryError()) == "oom"
    assert fallback.error_kind(RuntimeError("(PreconditionNotMet) flash attention needs sm80")) == "kernel"


def test_kernel_errors_step_down_one_level_at_a_time():
    fast, seen = dict(FULL), []
    while (down := fallback.step_down(fast, 1, 32, "kernel")) is not None:
        fast, accum, what = down
        seen.append(what)
        assert accum == 1
    assert seen == ["flash attention off (dropout as configured)", "fused QKV off", "mixed precision off: fp32"]
    assert fast["amp_dtype"] is None and not fast["dropout_zeroed"] and fallback.level(fast) == 3
    assert FULL["flash_attention"]  # the caller's dict is left alone


def test_out_of_memory_halves_the_micro_batch_until_one_row():
    accums = []
    accum = 1
    while (down := fallback.step_down(FULL, accum, 6, "oom")) is not None:
        _, accum, _ = down
        accums.append(accum)
    assert accums == [2, 4]  # 6 rows: micro-batches of 3, then 2 (8 would leave empty ones)


def test_the_trial_runs_only_where_something_can_fail():
    assert not fallback.worth_trying({"flash_attention": False}, "cpu")
    assert fallback.worth_trying({"fuse_attention_qkv": True}, "cpu")
    assert fallback.worth_trying({}, "gpu")


PATCHED_RUN = """
import sys
import paddle
from paddlenlp.transformers.gpt import modeling
import core.trainer.setup as setup
from core.trainer.main import main

fast = {"device": "cpu", "amp_dtype": None, "amp_level": None, "master_grad": False, "grad_scaler": False,
        "flash_attention": True, "fuse_attention_qkv": True, "dropout_zeroed": True, "note": "test"}
setup.choose_fast_path = lambda *a, **k: dict(fast)
forward = modeling.MultiHeadAttention.forward

def patched(self, query, *a, **k):
    # what paddle raises: a GPU allocator failure for a big batch, the flash kernel's refusal
    if query.shape[0] > 4:
        raise MemoryError("ResourceExhaustedError: Out of memory error on GPU 0, 4.1 GB memory has been allocated")
    if self.config.use_flash_attention:
        raise RuntimeError("(PreconditionNotMet) FlashAttention only supports Ampere GPUs or newer.")
    return forward(self, query, *a, **k)

modeling.MultiHeadAttention.forward = patched
sys.exit(main(sys.argv[1:]))
"""


def test_an_injected_fast_path_failure_steps_down_and_the_run_finishes(tmp_path):
    argv = [sys.executable, "-c", PATCHED_RUN, "--run_dir", str(tmp_path), "--model_dir", str(TINY),
            "--data_dir", str(SAMPLE), "--per_device_train_batch_size", "16", "--max_seq_length", "64",
            "--max_steps", "3", "--eval_steps", "100", "--save_steps", "100", "--per_device_eval_batch_size", "4"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=_env(), cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    evs = events(tmp_path)
    start = next(e for e in evs if e["type"] == "start")
    fp = start["fast_path"]
    assert not fp["flash_attention"] and fp["fuse_attention_qkv"]  # one level down, not more
    assert fp["micro_batch_accumulation"] == 4 and start["global_batch"] == 16  # 16 rows as 4 x 4
    assert [c.split(":")[0] for c in fp["fallbacks"]] == ["out of memory", "out of memory",
                                                           "flash attention off (dropout as configured) after RuntimeError"]
    warned = [e["text"] for e in evs if e["type"] == "log" and "stepped down" in e["text"]]
    assert len(warned) == 3 and "FlashAttention only supports" in warned[-1]
    assert [e["step"] for e in evs if e["type"] == "step"] == [1, 2, 3] and evs[-1]["status"] == "finished"
    ck = json.loads((tmp_path / "checkpoints" / "checkpoint-3" / "config.json").read_text())
    assert ck.get("fuse_attention_qkv") is True and not ck.get("use_flash_attention")


LATE_FAILURE = """
import sys
from paddlenlp.transformers.gpt import modeling
import core.trainer.setup as setup
from core.trainer.main import main

setup.choose_fast_path = lambda *a, **k: {"device": "cpu", "amp_dtype": None, "flash_attention": False,
                                          "fuse_attention_qkv": True, "note": "test"}
forward, calls = modeling.MultiHeadAttention.forward, [0]

def patched(self, query, *a, **k):
    calls[0] += 1
    if calls[0] > 2 * 3:  # 2 layers: the trial and steps 1 and 2 pass, step 3 fails
        raise RuntimeError("(PreconditionNotMet) a kernel that fails late")
    return forward(self, query, *a, **k)

modeling.MultiHeadAttention.forward = patched
sys.exit(main(sys.argv[1:]))
"""


def test_an_error_after_the_trial_still_fails_the_run(tmp_path):
    argv = [sys.executable, "-c", LATE_FAILURE, "--run_dir", str(tmp_path), "--model_dir", str(TINY),
            "--data_dir", str(SAMPLE), "--max_steps", "5", "--eval_steps", "100", "--save_steps", "100"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=_env(), cwd=str(ROOT))
    assert r.returncode != 0
    evs = events(tmp_path)
    assert not any(e["type"] == "log" and "stepped down" in e["text"] for e in evs)
    assert evs[-1]["status"] == "failed" and "a kernel that fails late" in evs[-1]["reason"]
