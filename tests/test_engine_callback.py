"""The engine's TrainerCallback alone (no Trainer, no launcher): the flow decisions and the events it writes.

PaddleNLP's real TrainerState and TrainerControl; the Trainer itself runs in test_engine_paddlenlp.py.
"""

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("paddlenlp")

from paddlenlp.trainer.trainer_callback import TrainerControl, TrainerState  # noqa: E402

from core.engine_paddlenlp import EngineCallback  # noqa: E402
from core.presets import offline_preset  # noqa: E402


@pytest.fixture
def run(tmp_path):
    cb = EngineCallback(str(tmp_path / "events.jsonl"), offline_preset().replace(engine="paddlenlp"))
    cb.heartbeat_s = None
    cb.eval_rows = 32
    args = SimpleNamespace(world_size=1, output_dir=str(tmp_path / "ck"), per_device_train_batch_size=4,
                           gradient_accumulation_steps=1, num_train_epochs=1.0, local_rank=0, device="cpu")
    state = TrainerState(max_steps=10, is_world_process_zero=True, is_local_process_zero=True)
    loader = SimpleNamespace(dataset=list(range(64)))
    cb.on_train_begin(args, state, TrainerControl(), train_dataloader=loader)
    yield cb, args, state, tmp_path
    cb.close()


def events(tmp_path):
    return [json.loads(ln) for ln in (tmp_path / "events.jsonl").read_text().splitlines()]


def test_start_then_a_stop_request_saves_and_ends_stopped(run):
    cb, args, state, tmp = run
    state.global_step = 3
    control = cb.on_step_end(args, state, TrainerControl())
    assert not control.should_save and not control.should_training_stop
    (tmp / "stop").write_text("now")
    control = cb.on_step_end(args, state, TrainerControl())
    assert control.should_save and control.should_training_stop
    cb.on_train_end(args, state, control)
    start, end = events(tmp)[0], events(tmp)[-1]
    assert (start["type"], start["total_steps"], start["samples_per_epoch"], start["steps_per_epoch"]) == (
        "start", 10, 64, 16)
    assert (end["type"], end["status"]) == ("end", "stopped") and "checkpoint-3" in end["reason"]


def test_the_last_step_is_evaluated_and_saved_whatever_the_strategies(run):
    cb, args, state, tmp = run
    state.global_step = 10
    control = cb.on_step_end(args, state, TrainerControl())
    assert control.should_save and control.should_evaluate
    cb.on_log(args, state, control, {"eval_loss": 0.5, "eval_accuracy": 0.75, "eval_runtime": 0.1})
    cb.on_save(args, state, control)
    control = TrainerControl(should_evaluate=True, should_save=True)  # an epoch strategy asks again
    assert not any(vars(cb.on_epoch_end(args, state, control)).get(k) for k in ("should_evaluate", "should_save"))
    cb.on_train_end(args, state, control)
    ev = {e["type"]: e for e in events(tmp)}
    assert (ev["eval"]["step"], ev["eval"]["accuracy"], ev["eval"]["n"]) == (10, 0.75, 32)
    assert ev["checkpoint"]["step"] == 10 and ev["checkpoint"]["path"].endswith("checkpoint-10")
    assert ev["end"]["status"] == "finished"


def test_a_nan_loss_saves_stops_and_fails_the_run(run):
    cb, args, state, tmp = run
    state.global_step = 4
    control = TrainerControl()
    cb.on_log(args, state, control, {"loss": float("nan"), "learning_rate": 1e-3, "global_step": 4,
                                     "interval_runtime": 0.5, "interval_samples_per_second": 8.0})
    assert control.should_save and control.should_training_stop
    cb.on_train_end(args, state, control)
    step, end = [e for e in events(tmp) if e["type"] in ("step", "end")]
    assert step["step"] == 4 and step["loss"] == "nan" and step["samples_per_s"] == 8.0
    assert end["status"] == "failed" and "nan at step 4" in end["reason"]


def test_a_checkpoint_the_trainer_rotated_away_is_announced(run):
    cb, args, state, tmp = run
    for step in (2, 4):
        (tmp / "ck" / f"checkpoint-{step}").mkdir(parents=True)
        state.global_step = step
        cb.on_save(args, state, TrainerControl())
    (tmp / "ck" / "checkpoint-2").rmdir()  # save_total_limit=1 removed it inside the next save
    (tmp / "ck" / "checkpoint-6").mkdir()
    state.global_step = 6
    cb.on_save(args, state, TrainerControl())
    kinds = [(e["type"], e["step"]) for e in events(tmp) if e["type"].startswith("checkpoint")]
    assert kinds == [("checkpoint", 2), ("checkpoint", 4), ("checkpoint", 6), ("checkpoint_deleted", 2)]


def test_a_worker_that_fails_before_training_writes_a_failed_end(tmp_path):
    """main() itself, in this process (paddlenlp is loaded already): a model folder that does not load ends
    the run `failed` with the error, and the error still propagates (the rank exits non-zero)."""
    from conftest import ROOT

    from core.engine_paddlenlp import main

    with pytest.raises(OSError):
        main(["--run_dir", str(tmp_path), "--model_dir", str(tmp_path / "no-model"), "--engine", "paddlenlp",
              "--data_dir", str(ROOT / "assets" / "sst2-sample"), "--max_steps", "2", "--device", "cpu"])
    (end,) = events(tmp_path)
    assert end["type"] == "end" and end["status"] == "failed" and "no-model" in end["reason"]


def test_several_ranks_meet_about_a_stop_only_at_logging_steps(run):
    """Between meeting steps a rank that sees the stop file goes on (the others may not have seen it yet)."""
    cb, args, state, tmp = run
    (tmp / "stop").write_text("now")
    args.world_size, args.logging_steps = 2, 5
    state.global_step = 3
    assert cb.meet(args, state) == (False, [])  # no collective here: one would hang without a process group
    args.logging_steps, state.global_step = 50, 11
    assert cb.meet(args, state) == (False, [])  # at least every 10 steps (step 10, 20, ...)


def test_rank_health_goes_out_every_few_seconds(run, monkeypatch):
    import core.watch_callback as wc

    cb, args, state, tmp = run
    cb.device = "cpu:0"
    for step in (1, 2):  # the first step end reports; the next, under 5 s later, does not
        state.global_step = step
        cb.on_step_end(args, state, TrainerControl())
    monkeypatch.setattr(wc, "RANKS_EVERY_S", 0.0)
    state.global_step = 4
    cb.on_step_end(args, state, TrainerControl())
    ranks = [e for e in events(tmp) if e["type"] == "ranks"]
    assert [e["step"] for e in ranks] == [1, 4]
    (rec,) = ranks[1]["ranks"]
    assert (rec["rank"], rec["device"], rec["samples"]) == (0, "cpu:0", 16)
    assert rec["step_time"] > 0 and rec["mem_bytes"] > 0


def test_rank_zero_sends_heartbeats_until_the_end(tmp_path):
    import time

    cb = EngineCallback(str(tmp_path / "events.jsonl"), offline_preset().replace(engine="paddlenlp"))
    cb.heartbeat_s, cb.device = 0.05, "cpu:0"
    args = SimpleNamespace(world_size=1, output_dir=str(tmp_path), per_device_train_batch_size=4,
                           gradient_accumulation_steps=1, num_train_epochs=1.0, local_rank=-1, device="cpu")
    state = TrainerState(max_steps=10, global_step=0)
    cb.on_train_begin(args, state, TrainerControl())
    deadline = time.monotonic() + 10
    while not any(e["type"] == "heartbeat" for e in events(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    cb.on_train_end(args, state, TrainerControl())
    beats = [e for e in events(tmp_path) if e["type"] == "heartbeat"]
    assert beats and beats[0]["rank"] == 0 and beats[0]["device"] == "cpu:0" and beats[0]["local_rank"] == 0
    assert beats[0]["mem_bytes"] > 0 and events(tmp_path)[-1]["type"] == "end"
    n = len(events(tmp_path))
    time.sleep(0.15)
    assert len(events(tmp_path)) == n  # no heartbeat after the end
