"""Other trainers' log lines as our events: PaddleNLP ``Trainer`` and the classic ``run_glue.py``.

Pure and paddle-free. ``LogParser.feed(line)`` returns one event dict (``{"type": ..., fields}``, the
fields of core.events) or None for a blank line. A line it cannot read is a ``log`` event: never an error.

The formats, as the code of paddlenlp 2.8.1 and run_glue print them:

- PaddleNLP ``Trainer`` (``ProgressCallback``/``PrinterCallback.on_log``: ``", ".join(f"{k}: {v}")`` behind
  its logger's ``[time] [ INFO] - `` prefix): ``loss: 0.68, learning_rate: 0.000375, global_step: 1,
  interval_runtime: 0.28, interval_samples_per_second: 14.2, interval_steps_per_second: 3.5,
  progress_or_epoch: 0.25``; evaluations ``eval_loss: ..., eval_accuracy: ..., eval_runtime: ...`` carry no
  step (the parser takes the last step seen); ``Saving model checkpoint to .../checkpoint-N`` is a
  checkpoint; ``Num examples = N`` after ``***** Running training *****`` or ``***** Running Evaluation
  *****`` and ``Total optimization steps = N`` fill samples_per_epoch, an eval's n and total_steps.
- run_glue: ``global step %d/%d, epoch: %d, batch: %d, rank_id: %s, loss: %f, lr: %.10f, speed: %.4f
  step/s`` (some copies print ``s/step``, or append ``avg_ips: %.4f sequences/sec``) and ``eval loss: %f,
  acc: %s, `` — printed with ``end=''``, so ``eval done total : %s s`` often follows on the same line.
"""

from __future__ import annotations

import math
import re
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# PaddleNLP's logger: "[2026-12-02 16:50:44,851] [    INFO] - message"
PNLP_PREFIX = re.compile(r"\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)?)\]\s*\[\s*(?P<level>[A-Z]+)\]\s*-\s?")
KV = re.compile(r"(?P<key>[A-Za-z_][\w/]*): (?P<value>[^,]+?)\s*(?:,|$)")
GLUE_STEP = re.compile(
    r"global step (?P<step>\d+)/(?P<total>\d+), epoch: (?P<epoch>\d+), batch: (?P<batch>\d+), rank_id: \S+?, "
    r"loss: (?P<loss>\S+?), lr: (?P<lr>\S+?), speed: (?P<speed>\S+?) (?P<unit>step/s|s/step)"
    r"(?:.*?avg_ips: (?P<ips>\S+?) sequences/sec)?")
GLUE_EVAL = re.compile(r"eval loss: (?P<loss>\S+?), acc: (?P<acc>[^,\s]+)")
NUM_EXAMPLES = re.compile(r"^\s*Num examples = (?P<n>[\d,]+)")
ARG_LINE = re.compile(r"^(?P<key>[A-Za-z_]\w*)\s*:\s?(?P<value>.*)$")
SAVING = re.compile(r"Saving model checkpoint to (?P<path>\S*?checkpoint-(?P<step>\d+))/?\s*$")
LOADING = re.compile(r"Loading (?:weights|configuration) file (?P<dir>\S+)/(?:model_state\.pdparams|config\.json)\s*$")
TOTAL_STEPS = re.compile(r"^\s*Total optimization steps = (?P<n>[\d,]+)")
LEVELS = {"DEBUG": "debug", "INFO": "info", "TRAIN": "info", "EVAL": "info", "WARNING": "warning",
          "ERROR": "error", "CRITICAL": "error"}


def number(text: str) -> float | None:
    """A printed number as a float ('nan' and 'inf' included); None when it is not one."""
    try:
        v = float(text.strip().rstrip(","))
    except ValueError:
        return None
    return v


def _whole(v: float | None) -> int | None:
    return int(v) if v is not None and math.isfinite(v) and v == int(v) else None


class LogParser:
    """Reads one job's log, line by line; keeps what later lines need (the last step, totals seen).

    ``batch_size`` (the global batch) turns run_glue's step/s into samples/s when the line has no avg_ips.
    """

    def __init__(self, batch_size: int | None = None):
        self.batch_size = batch_size
        self.last_step = 0
        self.total_steps: int | None = None
        self.samples_per_epoch: int | None = None
        self.start_time: str | None = None  # the first logger timestamp seen, as printed
        self.last_time: str | None = None
        self._section: str | None = None  # "train" / "eval": which "Num examples" this is
        self._eval_n: int | None = None
        # The Trainer prints its TrainingArguments ("Training Configuration Arguments", a "name : value"
        # line each) before it trains: the run's configuration, as text.
        self.args: dict[str, str] = {}
        self.model_dir: str | None = None  # the first model folder the log says it loaded
        self.completed = False  # the Trainer said "Training completed", or run_glue reached its last step

    def feed(self, line: str) -> dict[str, Any] | None:
        text = ANSI.sub("", line).replace("\r", "").rstrip("\n").rstrip()
        if not text.strip():
            return None
        level = "info"
        body = text
        # search, not match: with its progress bar on, the Trainer's log line follows the bar's last redraw
        # on the same line ("TrainProcess:  25%|##5 | 1/4 [...][2026-...] [ INFO] - loss: ...").
        m = PNLP_PREFIX.search(text)
        if m:
            level = LEVELS.get(m.group("level"), "info")
            body = text[m.end():]
            self.last_time = m.group("time")
            self.start_time = self.start_time or self.last_time
        elif "Traceback (most recent call last)" in text or re.match(r"^\w*(Error|Exception)\b", text):
            level = "error"
        ev = self._glue(body) or self._trainer(body)
        if ev is not None:
            return ev
        m = SAVING.search(body)
        if m:
            return {"type": "checkpoint", "step": int(m.group("step")), "path": m.group("path")}
        self._note(body)
        return {"type": "log", "level": level, "text": text}

    # ------------------------------------------------------------------ run_glue
    def _glue(self, body: str) -> dict[str, Any] | None:
        m = GLUE_STEP.search(body)
        if m:
            step = int(m.group("step"))
            self.last_step = step
            self.total_steps = int(m.group("total"))
            self.completed = step >= self.total_steps
            speed = number(m.group("speed"))
            step_time = None
            if speed:
                step_time = speed if m.group("unit") == "s/step" else 1.0 / speed
            sps = number(m.group("ips")) if m.group("ips") else None
            if sps is None and step_time and self.batch_size:
                sps = self.batch_size / step_time
            return {"type": "step", "step": step, "epoch": float(m.group("epoch")), "loss": number(m.group("loss")),
                    "lr": number(m.group("lr")), "samples_per_s": sps, "tokens_per_s": None, "step_time": step_time}
        m = GLUE_EVAL.search(body)
        if m:
            return {"type": "eval", "step": self.last_step, "accuracy": number(m.group("acc")),
                    "loss": number(m.group("loss")), "n": None}
        return None

    # ------------------------------------------------------------------ PaddleNLP Trainer
    def _trainer(self, body: str) -> dict[str, Any] | None:
        kv = dict_line(body)
        if kv is None:
            return None
        if "loss" in kv and ("global_step" in kv or "learning_rate" in kv):
            return self.step_event(kv)
        if "train_runtime" in kv:
            self.completed = True
        if any(k.startswith("eval_") for k in kv) and ("eval_loss" in kv or "eval_accuracy" in kv):
            return self.eval_event(kv)
        return None

    def step_event(self, kv: dict[str, float | None]) -> dict[str, Any]:
        """A PaddleNLP ``logs`` dict (a log line's, or a ``log_history`` entry) as a step event."""
        step = _whole(kv.get("global_step"))
        if step is None:
            step = _whole(kv.get("step"))
        step = step if step is not None else self.last_step + 1
        self.last_step = step
        sps = kv.get("interval_steps_per_second")
        tps = kv.get("interval_tokens_per_second_per_device")
        return {"type": "step", "step": step, "epoch": _first(kv, "progress_or_epoch", "epoch"),
                "loss": kv.get("loss"), "lr": kv.get("learning_rate"),
                "samples_per_s": kv.get("interval_samples_per_second"), "tokens_per_s": tps,
                "step_time": 1.0 / sps if sps else None}

    def eval_event(self, kv: dict[str, float | None]) -> dict[str, Any]:
        step = _whole(kv.get("step"))
        n, self._eval_n = self._eval_n, None
        return {"type": "eval", "step": step if step is not None else self.last_step,
                "accuracy": _first(kv, "eval_accuracy", "eval_acc"), "loss": kv.get("eval_loss"), "n": n}

    def _note(self, body: str) -> None:
        """Totals the Trainer prints before it trains or evaluates."""
        m = LOADING.search(body)
        if m and self.model_dir is None:
            self.model_dir = m.group("dir")
        if body.strip() == "Training completed.":
            self.completed = True
        if "Configuration Arguments" in body:
            self._section = "args"
        elif self._section == "args" and (m := ARG_LINE.match(body.strip())):
            self.args.setdefault(m.group("key"), m.group("value").strip())
        if "***** Running training *****" in body:
            self._section = "train"
        elif "***** Running Evaluation *****" in body or "***** Running Prediction *****" in body:
            self._section = "eval"
        m = NUM_EXAMPLES.match(body)
        if m:
            n = int(m.group("n").replace(",", ""))
            if self._section == "train":
                self.samples_per_epoch = n
            elif self._section == "eval":
                self._eval_n = n
        m = TOTAL_STEPS.match(body)
        if m:
            self.total_steps = int(m.group("n").replace(",", ""))


def dict_line(body: str) -> dict[str, float | None] | None:
    """``key: value, key: value`` (at least two numeric pairs, nothing else on the line) as a dict."""
    out: dict[str, float | None] = {}
    pos = 0
    for p in KV.finditer(body):
        # The pairs must tile the line: prose with a colon in it is not a metrics line.
        if body[pos:p.start()].strip():
            return None
        out[p.group("key")] = number(p.group("value"))
        pos = p.end()
    if body[pos:].strip() or sum(v is not None for v in out.values()) < 2:
        return None
    return out


def _first(kv: dict[str, float | None], *keys: str) -> float | None:
    for k in keys:
        if kv.get(k) is not None:
            return kv[k]
    return None


def parse_lines(lines: Any, batch_size: int | None = None) -> tuple[LogParser, list[dict[str, Any]]]:
    """Every line of a log as events; the parser (totals, times) comes back too."""
    p = LogParser(batch_size=batch_size)
    out = [ev for ev in (p.feed(ln) for ln in lines) if ev is not None]
    return p, out
