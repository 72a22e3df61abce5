"""core.logparse: PaddleNLP Trainer's and run_glue's log lines become our events; anything else a log line."""

import math
import subprocess
import sys

import pytest
from pnlp_fixture import trainer_run

from core.events import TYPES
from core.logparse import LogParser, dict_line, parse_lines

# PaddleNLP's own PrinterCallback.on_log and logger print these (a subprocess: paddle stays out of here).
PRINTER = r"""
from types import SimpleNamespace
from paddlenlp.trainer.trainer_callback import PrinterCallback
state = SimpleNamespace(is_local_process_zero=True)
cb = PrinterCallback()
cb.on_log(None, state, None, logs={"loss": 0.6931, "learning_rate": 2e-05, "global_step": 10,
          "interval_runtime": 2.5, "interval_samples_per_second": 128.0, "interval_steps_per_second": 4.0,
          "progress_or_epoch": 0.1})
cb.on_log(None, state, None, logs={"loss": float("nan"), "learning_rate": 1e-05, "global_step": 11,
          "interval_runtime": 0.25, "interval_samples_per_second": 128.0, "interval_steps_per_second": 4.0,
          "progress_or_epoch": 0.11})
cb.on_log(None, state, None, logs={"eval_loss": 0.5, "eval_accuracy": 0.875, "eval_runtime": 1.0,
          "eval_samples_per_second": 872.0, "eval_steps_per_second": 28.0, "progress_or_epoch": 0.11})
"""


@pytest.fixture(scope="module")
def printer_lines():
    p = subprocess.run([sys.executable, "-c", PRINTER], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return [ln for ln in (p.stdout + p.stderr).splitlines() if "loss" in ln]


def test_trainer_lines_from_paddlenlps_printer(printer_lines):
    assert len(printer_lines) == 3
    assert "\x1b[" in printer_lines[0]  # the coloured logger prefix is there, and read past
    _, evs = parse_lines(printer_lines)
    step, nan_step, ev = evs
    assert step == {"type": "step", "step": 10, "epoch": 0.1, "loss": 0.6931, "lr": 2e-05, "samples_per_s": 128.0,
                    "tokens_per_s": None, "step_time": 0.25}
    assert nan_step["step"] == 11 and math.isnan(nan_step["loss"])
    # An eval line carries no step: it belongs to the last step logged.
    assert ev == {"type": "eval", "step": 11, "accuracy": 0.875, "loss": 0.5, "n": None}


def test_run_glue_lines():
    p = LogParser(batch_size=32)
    fmt = "global step %d/%d, epoch: %d, batch: %d, rank_id: %s, loss: %f, lr: %.10f, speed: %.4f step/s"
    ev = p.feed(fmt % (100, 6315, 0, 99, 0, 0.412345, 1.9e-05, 2.5) + "\n")
    assert ev == {"type": "step", "step": 100, "epoch": 0.0, "loss": 0.412345, "lr": 1.9e-05,
                  "samples_per_s": 80.0, "tokens_per_s": None, "step_time": 0.4}
    assert p.total_steps == 6315
    # print(..., end='') puts "eval done" on the eval line. run_glue's own %-formats, on purpose.
    eval_fmt, done_fmt = "eval loss: %f, acc: %s, ", "eval done total : %s s"
    ev = p.feed(eval_fmt % (0.3, 0.9013761467889908) + done_fmt % 12.5)
    assert ev == {"type": "eval", "step": 100, "accuracy": 0.9013761467889908, "loss": 0.3, "n": None}
    assert p.feed("eval done total : 3.1 s") == {"type": "log", "level": "info", "text": "eval done total : 3.1 s"}
    # Variants: s/step, and avg_ips (samples/s printed by the script itself).
    ev = p.feed(fmt.replace("step/s", "s/step") % (101, 6315, 0, 100, 0, 0.4, 1e-05, 0.5))
    assert ev["step_time"] == 0.5 and ev["samples_per_s"] == 64.0
    ev = p.feed(fmt % (102, 6315, 0, 101, 0, 0.4, 1e-05, 2.0) + ", avg_reader_cost: 0.0010 sec, avg_batch_cost: "
                "0.5000 sec, avg_samples: 32, avg_ips: 70.0000 sequences/sec")
    assert ev["samples_per_s"] == 70.0


def test_unreadable_lines_are_logs_never_errors():
    p = LogParser()
    for line in ["", "   ", "Traceback (most recent call last):", "loss: abc", "global step x/y", "epoch: 1, loss:",
                 "\x1b[31mgarbage\x00\x1b[0m", "a: 1, b: 2 and some prose", "ValueError: boom"]:
        ev = p.feed(line)
        assert ev is None or (ev["type"] == "log" and ev["type"] in TYPES), (line, ev)
    assert p.feed("Traceback (most recent call last):")["level"] == "error"
    assert p.feed("[2026-12-02 16:50:44,334] [ WARNING] - careful")["level"] == "warning"
    assert dict_line("a: 1, b: 2 and some prose") is None
    assert dict_line("a: 1, b: 2") == {"a": 1.0, "b": 2.0}


@pytest.mark.slow
def test_a_real_trainer_log(tmp_path_factory):
    run = trainer_run(tmp_path_factory)
    p, evs = parse_lines(run.log.splitlines())
    steps = [e for e in evs if e["type"] == "step"]
    evals = [e for e in evs if e["type"] == "eval"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    # The final trainer.evaluate() logs a second eval at step 4.
    assert [e["step"] for e in evals] == [2, 4, 4]
    assert all(e["n"] == 16 for e in evals)  # from "Num examples = 16" under "Running Evaluation"
    assert p.total_steps == 4 and p.samples_per_epoch == 16
    assert p.args["learning_rate"] == "0.0005" and p.args["per_device_train_batch_size"] == "4"
    import json
    history = json.loads((run.output_dir / "trainer_state.json").read_text())["log_history"]
    logged = [h for h in history if "loss" in h]
    assert [e["loss"] for e in steps] == [h["loss"] for h in logged]
    assert [e["lr"] for e in steps] == [h["learning_rate"] for h in logged]


def test_a_line_behind_the_trainers_progress_bar():
    # With disable_tqdm off, the logger's line follows the bar's last redraw on the same line (seen in a real
    # run of tests/paddlenlp_run.py --tqdm): the prefix is found where it is.
    line = ("\rTrainProcess:   0%|          | 0/4 [00:00<?, ?it/s]\x1b[32m[2026-12-02 17:31:37,067] [    INFO]\x1b[0m"
            " - loss: 0.65787566, learning_rate: 0.000375, global_step: 1, interval_runtime: 0.0652, "
            "interval_samples_per_second: 61.3135, interval_steps_per_second: 15.3284, progress_or_epoch: 0.25\x1b[0m")
    ev = LogParser().feed(line)
    assert ev["type"] == "step" and ev["step"] == 1 and ev["samples_per_s"] == 61.3135
    line = ("\rPredictProcess:   0%|          | 0/2 [00:00<?, ?it/s]\x1b[A\x1b[32m[2026-12-02 17:31:37,118] [    INFO]"
            "\x1b[0m - eval_loss: 0.8432164192199707, eval_accuracy: 0.375, eval_runtime: 0.0265, "
            "eval_samples_per_second: 604.372, eval_steps_per_second: 75.5465, progress_or_epoch: 0.5\x1b[0m")
    ev = LogParser().feed(line)
    assert ev["type"] == "eval" and ev["accuracy"] == 0.375
