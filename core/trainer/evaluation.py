"""Scoring rows with a classifier: the trainer's dev evaluation and core.evaluate use the same batches."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F

from core import batching
from core.trainer.runtime import Collectives


def amp_context(fast: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    if fast.get("amp_dtype"):
        return paddle.amp.auto_cast(level=fast.get("amp_level") or "O2", dtype=fast["amp_dtype"])
    return contextlib.nullcontext()


def predict(model: Any, enc: batching.Encoded, rows: list[int], batch_size: int, pad_id: int,
            fast: dict[str, Any] | None = None,
            on_batch: Callable[[int, int, int], None] | None = None) -> tuple[list[int], np.ndarray, float]:
    """Classify ``rows``: (rows in the order scored, predictions, summed cross-entropy).

    Batches are the rows sorted by length (core.batching.eval_batches), so the trainer's eval and
    core.evaluate see identical batches for the same rows and batch size.
    """
    fast = fast or {}
    was_training = model.training
    model.eval()
    order: list[int] = []
    preds: list[np.ndarray] = []
    loss_sum = 0.0
    batches = batching.eval_batches(enc, rows, batch_size)
    try:
        with paddle.no_grad():
            for bi, b in enumerate(batches):
                ids, labels, _ = batching.pad_batch(enc, b, pad_id)
                with amp_context(fast):
                    logits = model(paddle.to_tensor(ids))
                logits = logits.astype("float32")
                loss = F.cross_entropy(logits, paddle.to_tensor(labels), reduction="sum")
                preds.append(logits.argmax(axis=-1).numpy())
                loss_sum += float(loss)
                order.extend(b)
                if on_batch is not None:
                    on_batch(bi + 1, len(batches), len(b))
    finally:
        if was_training:
            model.train()
    return order, (np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)), loss_sum


@dataclass
class DevResult:
    accuracy: float
    loss: float | None
    n: int
    seconds: float


def evaluate_dev(model: Any, enc: batching.Encoded, rank: int, world: int, batch_size: int, pad_id: int,
                 fast: dict[str, Any], comm: Collectives) -> DevResult:
    """Every rank scores every world-th dev row; the counts are summed over the ranks."""
    t0 = time.perf_counter()
    rows = list(range(rank, len(enc), world))
    order, preds, loss_sum = predict(model, enc, rows, batch_size, pad_id, fast)
    correct = float((preds == enc.labels[order]).sum()) if order else 0.0
    correct, total, loss_sum = comm.all_sum([correct, float(len(order)), loss_sum])
    return DevResult(accuracy=correct / total if total else 0.0, loss=loss_sum / total if total else None,
                     n=int(total), seconds=time.perf_counter() - t0)
