"""Gradient accumulation, clipping, epsilon and loss scale with the real tiny model, in a subprocess (the
test process never imports paddle), and the schedule options through a real single-process run."""

import json
import math
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT
from test_train_unit import DEV_ROWS, TINY, TRAIN_ROWS, _env, events, run_train

from core import batching

STEP_SCRIPT = textwrap.dedent("""
    import json, sys, types
    import numpy as np, paddle
    from paddlenlp.transformers import GPTTokenizer
    from core import batching
    from core.config import RunConfig
    from core.trainer.checkpoints import load_classifier
    from core.trainer.encoding import encode_split, pad_id_for
    from core.trainer.loop import Trainer
    from core.trainer.optim import build_optimisation

    tiny, data = sys.argv[1], sys.argv[2]
    paddle.set_device("cpu")
    tok = GPTTokenizer.from_pretrained(tiny)
    probe = load_classifier(tiny)
    enc, _ = encode_split(tok, data + "/dev.tsv", 64, pad_id_for(probe), write_cache=False)
    rows = batching.global_batches(enc.lengths, 10, 1, seed=0, epoch=0)[1]

    def one_step(accum):
        # SGD shows the gradient itself in the update (AdamW's first step would hide its scale)
        paddle.seed(0)
        model = load_classifier(tiny, {"dropout_zeroed": True})
        model.train()
        lr = types.SimpleNamespace(get_lr=lambda: 0.5, step=lambda: None)
        t = types.SimpleNamespace(cfg=RunConfig(gradient_accumulation_steps=accum), train_enc=enc,
                                  pad_id=pad_id_for(model), model=model, fast={}, global_step=0, world=1, accum=accum,
                                  scaler=None, scheduler=lr,
                                  optimizer=paddle.optimizer.SGD(0.5, parameters=model.parameters()))
        loss = float(Trainer.train_step(t, rows))
        return loss, {n: p.numpy().copy() for n, p in model.named_parameters()}

    base_loss, base = one_step(1)
    out = {"rows": len(rows)}
    for accum in (3, 4):
        loss, params = one_step(accum)
        out[f"loss_diff_{accum}"] = abs(loss - base_loss)
        out[f"param_diff_{accum}"] = max(float(np.abs(params[n] - base[n]).max()) for n in base)
    out["moved"] = max(float(np.abs(base[n] - p.numpy()).max()) for n, p in probe.named_parameters())

    o = build_optimisation(load_classifier(tiny), RunConfig(max_grad_norm=0.0, adam_epsilon=1e-6), 10, {})
    out["clip_off"] = o.optimizer._grad_clip is None
    out["epsilon"] = float(o.optimizer._epsilon)
    paddle.amp.GradScaler = lambda **kw: kw  # on a CPU the real one disables itself (scale 1.0)
    o = build_optimisation(load_classifier(tiny), RunConfig(max_grad_norm=0.5, scale_loss=1024.0), 10,
                           {"amp_dtype": "float16", "amp_level": "O1", "grad_scaler": True})
    out["clip_norm"] = float(o.optimizer._grad_clip.clip_norm)
    out["loss_scale"] = o.scaler["init_loss_scaling"]
    print(json.dumps(out))
""")


def test_accumulated_micro_batches_make_the_step_of_one_big_batch():
    r = subprocess.run([sys.executable, "-c", STEP_SCRIPT, str(TINY), str(ROOT / "assets" / "sst2-sample")],
                       capture_output=True, text=True, timeout=300, env=_env(), cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rows"] == 10 and out["moved"] > 1e-3  # the step changed the weights
    for accum in (3, 4):  # 10 rows as 4+3+3 and 3+3+2+2: the same mean loss and the same update
        assert out[f"loss_diff_{accum}"] < 1e-5 and out[f"param_diff_{accum}"] < 1e-5, out
    assert out["clip_off"] and out["epsilon"] == pytest.approx(1e-6)
    assert out["clip_norm"] == 0.5 and out["loss_scale"] == 1024.0


@pytest.fixture(scope="module")
def accum_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("accum")
    r = run_train(run_dir, "--per_device_train_batch_size", "32", "--gradient_accumulation_steps", "4",
                  "--num_train_epochs", "1.5", "--evaluation_strategy", "epoch", "--eval_steps", "1",
                  "--save_strategy", "no", "--save_steps", "1", "--warmup_steps", "10", "--warmup_ratio", "0.5",
                  "--logging_steps", "1", "--fp16", "true")
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir, events(run_dir)


def test_a_step_is_an_optimiser_step_of_accumulated_micro_batches(accum_run):
    _, evs = accum_run
    start = next(e for e in evs if e["type"] == "start")
    per_epoch = batching.steps_per_epoch(TRAIN_ROWS, 128, 1)
    assert start["global_batch"] == 128 and start["steps_per_epoch"] == per_epoch
    assert start["total_steps"] == math.ceil(1.5 * per_epoch)
    steps = [e for e in evs if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, start["total_steps"] + 1))
    assert "fp16 was asked" in start["fast_path"]["note"] and start["fast_path"]["amp_dtype"] is None


def test_warmup_steps_override_the_ratio_in_the_run(accum_run):
    _, evs = accum_run
    lr = {e["step"]: e["lr"] for e in evs if e["type"] == "step"}
    assert lr[1] == 0.0 and lr[6] == pytest.approx(0.5 * 3e-3) and lr[11] == pytest.approx(3e-3)


def test_epoch_strategy_evaluates_at_epoch_ends_and_no_saves_only_the_last(accum_run):
    _, evs = accum_run
    start = next(e for e in evs if e["type"] == "start")
    assert [e["step"] for e in evs if e["type"] == "eval"] == [start["steps_per_epoch"], start["total_steps"]]
    assert all(e["n"] == DEV_ROWS for e in evs if e["type"] == "eval")
    assert [e["step"] for e in evs if e["type"] == "checkpoint"] == [start["total_steps"]]


def test_do_eval_false_evaluates_nothing_and_epoch_saves(tmp_path):
    r = run_train(tmp_path, "--per_device_train_batch_size", "32", "--gradient_accumulation_steps", "4",
                  "--max_steps", "30", "--do_eval", "false", "--save_strategy", "epoch")
    assert r.returncode == 0, r.stderr[-3000:]
    evs = events(tmp_path)
    per_epoch = batching.steps_per_epoch(TRAIN_ROWS, 128, 1)
    assert not [e for e in evs if e["type"] == "eval"]
    assert [e["step"] for e in evs if e["type"] == "checkpoint"] == [per_epoch, 30]
    assert evs[-1]["status"] == "finished"
