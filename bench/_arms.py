"""The two training paths that bench/ compares, run inside a worker process, with hooks for what each bench measures.

- ``run_ours``: ``core.train.Trainer`` in-process exactly as ``python core/train.py ...`` runs it (rank 0,
  world 1): batches cut into length-close micro-batches (core.batching), token cache, ~1 s event flushes.
- ``run_ref``: run_glue's setup on ``paddlenlp.trainer.Trainer``: ``DataCollatorWithPadding`` (random batches,
  each padded to its longest row), ``logging_steps=1``, ``report_to=none`` (VisualDL logging would slow the
  reference down, which would flatter us).

Both take the same settings (``Settings``): batch, lr with a 10 % linear warm-up then linear decay, AdamW
(weight decay 0.01, clip 1.0), fp32, max_seq_length 128, seed, steps. Both call ``on_step(rows, padded_tokens,
real_tokens)`` right after each optimiser step (padded tokens: what the step computed, over its micro-batches) and ``on_eval(step, accuracy, loss, Span)`` after each dev
evaluation (the span: ``time.time()`` and ``time.process_time()`` at its start and end), so a bench can time
steps and take evaluations off its clock.

``use_sampler`` swaps our sampler (core.batching.global_batches) for an alternative in this process only, to
tell what the batching rule does from the rest of our path.

Paddle and paddlenlp are imported inside the functions: the bench drivers import this module without them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SEQ = 128
NOSPLIT = 10**12  # a call cost that no padding saving beats: one call a step
OnStep = Callable[[int, int, int], None]


@dataclass
class Span:
    """Wall (time.time) and process CPU (time.process_time) at the start and end of an evaluation."""

    t0: float
    t1: float
    c0: float
    c1: float

    @classmethod
    def start(cls) -> Span:
        return cls(time.time(), 0.0, time.process_time(), 0.0)

    def stop(self) -> Span:
        self.t1, self.c1 = time.time(), time.process_time()
        return self


OnEval = Callable[[int, float, float, Span], None]


@dataclass
class Settings:
    model: str
    data: str
    tmp: str
    steps: int
    batch: int = 32
    eval_batch: int = 64
    lr: float = 3e-3
    seed: int = 42
    eval_steps: int = 0  # 0: evaluate once, after the last step


def _noop_step(rows: int, padded: int, real: int) -> None:
    pass


def _noop_eval(step: int, acc: float, loss: float, span: Span) -> None:
    pass


def use_sampler(sampler: str) -> None:
    """Our batching rule as it is (``grouped`` or ""), or changed by ``_``-joined parts: ``random`` (run_glue's
    batches, each padded as one: no sort, no split), ``chunkN`` (a sort window of N global batches instead of
    core.batching.CHUNK_BATCHES), ``costN`` (core.batching.CALL_COST_TOKENS = N), ``nosplit`` (one call a step,
    as before the length split)."""
    import numpy as np

    from core import batching

    for part in sampler.split("_") if sampler not in ("", "grouped") else []:
        if part == "random":
            def random_global_batches(lengths: Any, global_batch: int, world: int, seed: int, epoch: int,
                                      chunk_batches: int = 0) -> list[list[int]]:
                order = np.random.default_rng([seed, epoch]).permutation(len(lengths))
                return [order[i : i + global_batch].tolist() for i in range(0, len(order), global_batch)]

            batching.global_batches = random_global_batches  # type: ignore[assignment]
            batching.CALL_COST_TOKENS = NOSPLIT
        elif part == "nosplit":
            batching.CALL_COST_TOKENS = NOSPLIT
        elif part.startswith("cost") and part[4:].isdigit():
            batching.CALL_COST_TOKENS = int(part[4:])
        elif part.startswith("chunk") and part[5:].isdigit():
            grouped, window = batching.global_batches, int(part[5:])

            def rechunked(lengths: Any, global_batch: int, world: int, seed: int, epoch: int,
                          chunk_batches: int = 0, _g: Any = grouped, _w: int = window) -> list[list[int]]:
                return _g(lengths, global_batch, world, seed, epoch, _w)

            batching.global_batches = rechunked  # type: ignore[assignment]
        else:
            raise ValueError(f"unknown sampler part {part!r} in {sampler!r}: use random, chunkN, costN, nosplit")


def run_ours(s: Settings, on_step: OnStep = _noop_step, on_eval: OnEval = _noop_eval) -> dict[str, Any]:
    """Train with our path; returns rc and the last evaluation's accuracy and loss."""
    from core import batching
    from core import train as ct
    from core.trainer import loop

    run_dir = Path(s.tmp) / f"ours-{time.time_ns()}"
    eval_steps = s.eval_steps or s.steps
    argv = ["--run_dir", str(run_dir), "--model_dir", s.model, "--data_dir", s.data,
            "--max_seq_length", str(MAX_SEQ), "--per_device_train_batch_size", str(s.batch),
            "--per_device_eval_batch_size", str(s.eval_batch), "--learning_rate", str(s.lr),
            "--warmup_ratio", "0.1", "--weight_decay", "0.01", "--max_steps", str(s.steps),
            "--logging_steps", "1", "--save_steps", str(s.steps), "--eval_steps", str(eval_steps),
            "--device", "cpu", "--devices", "cpu:1", "--seed", str(s.seed)]
    ns, cfg = ct.parse_args(argv)
    tr = ct.Trainer(ns, cfg)
    inner_step = tr.train_step
    inner_split = batching.length_micro_batches
    calls: list[list[list[int]]] = []

    def split(*args: Any, **kw: Any) -> list[list[int]]:  # remembers the step's micro-batches (no extra work)
        groups = inner_split(*args, **kw)
        calls.clear()
        calls.append(groups)
        return groups

    def timed_step(rows: list[int], micro: Any = None) -> Any:
        out = inner_step(rows, micro)
        lens = tr.train_enc.lengths
        padded = sum(len(g) * int(lens[g].max()) for g in calls[-1]) if calls else len(rows) * int(lens[rows].max())
        on_step(len(rows), padded, int(lens[rows].sum()))
        return out

    batching.length_micro_batches = split  # type: ignore[assignment]

    inner_eval = loop.evaluate_dev

    def timed_eval(*args: Any, **kw: Any) -> Any:
        span = Span.start()
        res = inner_eval(*args, **kw)
        on_eval(tr.global_step, float(res.accuracy), float(res.loss), span.stop())
        return res

    tr.train_step = timed_step  # type: ignore[method-assign]
    loop.evaluate_dev = timed_eval  # type: ignore[assignment]
    try:
        rc = tr.run()
    finally:
        loop.evaluate_dev = inner_eval  # type: ignore[assignment]
        batching.length_micro_batches = inner_split  # type: ignore[assignment]
    evs = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    ev = [e for e in evs if e["type"] == "eval"][-1]
    return {"rc": rc, "accuracy": ev["accuracy"], "eval_loss": ev["loss"]}


def run_ref(s: Settings, on_step: OnStep = _noop_step, on_eval: OnEval = _noop_eval) -> dict[str, Any]:
    """Train with the reference path; returns rc and the last evaluation's accuracy and loss."""
    import numpy as np
    import paddle
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.datasets import MapDataset
    from paddlenlp.trainer import Trainer, TrainerCallback, TrainingArguments
    from paddlenlp.transformers import GPTForSequenceClassification, GPTTokenizer

    tok = GPTTokenizer.from_pretrained(s.model)
    if tok.pad_token_id is None:  # run_glue pads GPT with EOS
        tok.pad_token = tok.eos_token
    pad = int(tok.pad_token_id)

    def load(name: str) -> MapDataset:
        lines = (Path(s.data) / name).read_text(encoding="utf-8").splitlines()[1:]
        rows = []
        for line in lines:
            text, y = line.rsplit("\t", 1)
            rows.append({"input_ids": tok(text, max_length=MAX_SEQ, truncation=True)["input_ids"], "labels": int(y)})
        return MapDataset(rows)

    train_ds, dev_ds = load("train.tsv"), load("dev.tsv")
    paddle.seed(s.seed)
    model = GPTForSequenceClassification.from_pretrained(s.model, num_labels=2, dtype="float32")
    last: dict[str, float] = {}

    class Recording(Trainer):
        def training_step(self, model: Any, inputs: dict[str, Any]) -> Any:
            ids = inputs["input_ids"].numpy()
            self._shape = (ids.shape[0], ids.shape[0] * ids.shape[1], int((ids != pad).sum()))
            return super().training_step(model, inputs)

        def evaluate(self, *args: Any, **kw: Any) -> dict[str, float]:
            span = Span.start()
            res = super().evaluate(*args, **kw)
            last.update(accuracy=float(res["eval_accuracy"]), loss=float(res["eval_loss"]))
            on_eval(int(self.state.global_step), last["accuracy"], last["loss"], span.stop())
            return res

    class StepHook(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            on_step(*trainer._shape)

    def metrics(p: Any) -> dict[str, float]:
        preds = p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions
        return {"accuracy": float((np.argmax(preds, axis=-1) == p.label_ids.reshape(-1)).mean())}

    args = TrainingArguments(
        output_dir=str(Path(s.tmp) / f"ref-{time.time_ns()}"), do_train=True, max_steps=s.steps,
        per_device_train_batch_size=s.batch, per_device_eval_batch_size=s.eval_batch, learning_rate=s.lr,
        warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, logging_steps=1, save_strategy="no",
        evaluation_strategy="steps" if s.eval_steps else "no", eval_steps=s.eval_steps or None, seed=s.seed,
        disable_tqdm=True, device="cpu", dataloader_num_workers=0, report_to=["none"],
    )
    trainer = Recording(model=model, args=args, train_dataset=train_ds, eval_dataset=dev_ds,
                        data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics, callbacks=[StepHook()])
    trainer.train()
    if not s.eval_steps or s.steps % s.eval_steps:  # the last step was not evaluated on the way
        trainer.evaluate()
    return {"rc": 0, "accuracy": last["accuracy"], "eval_loss": last["loss"]}
