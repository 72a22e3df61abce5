"""The reference engine (``--engine paddlenlp``): PaddleNLP's own ``Trainer`` on run_glue's setup.

Launched exactly like core/train.py (core.launch: ``paddle.distributed.launch ... core/engine_paddlenlp.py
--run_dir RUN --model_dir DIR --<RunConfig field> VALUE ... [--resume_from CHECKPOINT]`` under
core.supervise), with the same flags. What it does is what PaddleNLP's run_glue does: our reading of the
SST-2 TSVs and our tokenisation (core.trainer.encoding: the same token ids as our engine), random batches
padded to the longest by ``DataCollatorWithPadding``, ``GPTForSequenceClassification``,
``TrainingArguments`` from the config (core.engines), accuracy as ``compute_metrics``. Our events come
from ``EngineCallback`` (core.watch_callback's mapping), rank 0 only; checkpoints are PaddleNLP's own
``checkpoint-N/`` folders with the tokenizer, which ``gpt2-tui eval`` and the results pane read.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (the launcher does): make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import RunConfig  # noqa: E402
from core.trainer.main import parse_args  # noqa: E402  (the trainer's argv: one codec for both engines)
from core.watch_callback import EventsCallback  # noqa: E402  (imports paddlenlp)


def main(argv: list[str] | None = None) -> int:
    ns, cfg = parse_args(argv)
    run_dir = Path(ns.run_dir).resolve()
    callback = EngineCallback(str(run_dir / "events.jsonl"), cfg)
    rank0 = int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0) == 0
    try:
        return run(ns, cfg, run_dir, callback)
    except BaseException as e:
        if rank0 and not callback.ended:
            callback.end_now("failed", f"{type(e).__name__}: {str(e) or repr(e)}")
        raise
    finally:
        callback.close()


def run(ns: Any, cfg: RunConfig, run_dir: Path, callback: Any) -> int:
    import numpy as np
    import paddle
    import paddle.distributed as dist
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.trainer import Trainer, TrainingArguments
    from paddlenlp.transformers import GPTForSequenceClassification, GPTTokenizer

    from core.engines import training_arguments
    from core.trainer import runtime
    from core.trainer.encoding import DEV_FILE, TRAIN_FILE, encode_split, pad_id_for

    problems = cfg.validate()
    if problems:
        raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
    device = runtime.pick_device(cfg.device, cfg.devices)
    out_dir = Path(cfg.output_dir).resolve() if cfg.output_dir else run_dir / "checkpoints"
    bf16_ok = device == "gpu" and runtime.gpu_capability() >= (8, 0)
    args = TrainingArguments(**training_arguments(cfg, str(out_dir), device, bf16_ok))
    callback.device = runtime.device_label(device, runtime.local_rank(dist.get_rank()))

    tok = GPTTokenizer.from_pretrained(ns.model_dir)
    # From the checkpoint when resuming: the Trainer loads its weights again, but the config (and so the
    # classifier head's shape) comes from here.
    model = GPTForSequenceClassification.from_pretrained(ns.resume_from or ns.model_dir, num_labels=2,
                                                         dtype="float32")
    pad_id = pad_id_for(model)
    if tok.pad_token_id != pad_id:
        # The collator pads with the tokenizer's pad token; the classifier skips the model's eos id.
        tok.pad_token = tok.convert_ids_to_tokens(pad_id)
    data_dir = Path(cfg.resolved_data_dir())
    # Our token ids and cache (core.trainer.encoding): each node's rank 0 writes the cache, atomically.
    writer = runtime.local_rank(dist.get_rank()) == 0
    train_enc, _ = encode_split(tok, data_dir / TRAIN_FILE, cfg.max_seq_length, pad_id, write_cache=writer)
    dev_enc, _ = encode_split(tok, data_dir / DEV_FILE, cfg.max_seq_length, pad_id, write_cache=writer)
    if len(train_enc) == 0 or len(dev_enc) == 0:
        raise ValueError(f"{data_dir}: train.tsv and dev.tsv must each have at least one row")

    class Rows(paddle.io.Dataset):  # type: ignore[misc]
        # Python lists: DataCollatorWithPadding (tokenizer.pad) refuses numpy arrays. Training rows are
        # TrainIds lists, so the collator (shared with evaluation) counts only their tokens.
        def __init__(self, enc: Any, ids: type = list):
            self.enc, self.ids = enc, ids

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": self.ids(self.enc.row(i).tolist()), "labels": int(self.enc.labels[i])}

        def __len__(self) -> int:
            return len(self.enc)

    collator = CountingCollator(DataCollatorWithPadding(tok, return_attention_mask=False))
    callback.tokens = collator

    def accuracy(p: Any) -> dict[str, float]:
        return {"accuracy": float((np.asarray(p.predictions).argmax(-1) == np.asarray(p.label_ids)).mean())}

    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=Rows(train_enc, TrainIds),
                      eval_dataset=Rows(dev_enc), tokenizer=tok, compute_metrics=accuracy, callbacks=[callback])
    callback.eval_rows = len(dev_enc)
    callback.versions = runtime.versions()
    callback.output_dir = str(out_dir)
    # paddle's imports replace SIGTERM's handler: ours goes in last. A signal is a stop request (save, stop).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _f: setattr(callback, "signal_num", int(signum)))
    trainer.train(resume_from_checkpoint=ns.resume_from or None)
    return 1 if callback.status == "failed" else 0


class TrainIds(list):  # type: ignore[type-arg]
    """A training row's token ids (a list): the batches CountingCollator counts."""


class CountingCollator:
    """The collator, noting each batch's real (unpadded) tokens on the host: tokens/s without reading a
    device tensor (a device sync every step would slow the run it measures). The loader collates ahead of
    the loop, so counts wait in a queue until the loop takes their batch (``taken``, in loader order)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.queue: collections.deque[int] = collections.deque()
        self.count = 0  # tokens of the batches the loop has taken

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        if features and isinstance(features[0]["input_ids"], TrainIds):
            self.queue.append(sum(len(f["input_ids"]) for f in features))  # deque.append is thread-safe
        return self.inner(features)

    def taken(self) -> None:
        if self.queue:
            self.count += self.queue.popleft()


class EngineCallback(EventsCallback):
    """EventsCallback with what our engine promises besides: a start event with the run's facts, a final
    evaluation and checkpoint, tokens/s, stop on a NaN loss, and the ``end`` event."""

    def __init__(self, path: str, cfg: RunConfig):
        super().__init__(path)
        self.cfg = cfg
        self.tokens: Any = None
        self.eval_rows: int | None = None
        self.versions: dict[str, str] = {}
        self.output_dir = ""
        self.device = "cpu:0"
        self.status, self.reason = "finished", ""
        self.ended = False
        self._tokens_logged = 0
        self._world = 1
        self._state: Any = None

    def start_fields(self, args: Any, state: Any, **kwargs: Any) -> dict[str, Any]:
        self._state = state
        fields = super().start_fields(args, state, **kwargs)
        world = self._world = int(args.world_size or 1)
        global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world
        steps_per_epoch = max(1, math.ceil((fields["samples_per_epoch"] or 0) / global_batch))
        ranks: list[Any] = [(socket.gethostname(), self.device)]
        if world > 1:  # every rank is here (on_train_begin): one gather of (host, device) per rank
            import paddle.distributed as dist

            ranks = []
            dist.all_gather_object(ranks, (socket.gethostname(), self.device))
        fields.update(nnodes=len({h for h, _ in ranks}), versions=self.versions,
                      num_epochs=round(state.max_steps / steps_per_epoch, 4), steps_per_epoch=steps_per_epoch,
                      global_batch=global_batch, dev_rows=self.eval_rows, output_dir=self.output_dir,
                      devices=[d for _, d in ranks], hosts=[h for h, _ in ranks])
        return fields

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        control = super().on_step_end(args, state, control, **kwargs)
        if state.global_step >= state.max_steps and not self.stop_requested:
            # Ours evaluates and saves at the end whatever the strategies: so does the reference.
            control.should_save = True
            control.should_evaluate = bool(self.cfg.do_eval)
        return control

    def on_load_data_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.tokens is not None:
            self.tokens.taken()

    def on_step_logged(self, ev: dict[str, Any], kv: dict[str, float | None], state: Any, control: Any) -> None:
        if self.tokens is not None and kv.get("interval_runtime"):
            # rank 0's real tokens x world: the whole job's, as our engine estimates it
            done = self.tokens.count
            ev["tokens_per_s"] = (done - self._tokens_logged) * self._world / kv["interval_runtime"]
            self._tokens_logged = done
        loss = ev.get("loss")
        if self.cfg.stop_on_nan and loss is not None and not math.isfinite(loss):
            # The logged loss is the mean over the ranks (an all-gather): every rank decides alike.
            control.should_save = True
            control.should_training_stop = True
            self.status, self.reason = "failed", f"loss became nan at step {state.global_step} (checkpoint saved)"

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and any(k.startswith("eval_") for k in logs) and "loss" not in logs:
            self.parser._eval_n = self.eval_rows
        super().on_log(args, state, control, logs, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.stop_requested and self.status != "failed":
            why = f"{signal.Signals(self.signal_num).name} received" if self.signal_num else "stop requested"
            self.status, self.reason = "stopped", f"{why}; checkpoint-{state.global_step} saved"
        self.end_now(self.status, self.reason)

    def end_now(self, status: str, reason: str) -> None:
        self.ended = True
        self._hb_stop.set()  # the end is the last event: no heartbeat after it
        if self._state is not None:
            self._emit(self._state, "end", status=status, reason=reason)
        else:  # failed before training began: rank 0 writes (main only calls this on rank 0)
            self._emit(_Rank0(), "end", status=status, reason=reason)
        self.close()


class _Rank0:
    is_world_process_zero = True


if __name__ == "__main__":
    sys.exit(main())
