"""The fast path's trial before step 1 (rules in core.trainer.fallback): forward and backward on the
longest micro-batch under the chosen path, stepping down until it passes; the ranks then agree on the
deepest level any of them needed, so that every rank runs the same model and micro-batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F

from core import batching
from core.trainer import fallback
from core.trainer.evaluation import amp_context


def settle_fast_path(t: Any) -> None:
    """``t``: the TrainerSetup; may change t.fast and t.accum and rebuild t's model and optimiser."""
    if not fallback.worth_trying(t.fast, t.device):
        return
    cfg = t.cfg
    rows_per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    longest = np.argsort(-t.train_enc.lengths, kind="stable")
    changes: list[str] = []
    while True:
        micro = -(-rows_per_step // t.accum)
        try:
            _trial_step(t, longest[:micro].tolist())
            break
        except Exception as e:
            down = fallback.step_down(t.fast, t.accum, rows_per_step, fallback.error_kind(e))
            if down is None:
                raise
            fast, t.accum, what = down
            first = (str(e).strip().splitlines() or [""])[0][:200]
            changes.append(f"{what} after {type(e).__name__}: {first}")
            _release(t)
            if fast is not t.fast:
                t.fast = fast
                t.build_model_and_optimiser()
    table = t.comm.gather_objects((fallback.level(t.fast), t.accum))
    deepest, accum = max(lv for lv, _ in table), max(a for _, a in table)
    while fallback.level(t.fast) < deepest:
        down = fallback.step_down(t.fast, t.accum, rows_per_step, "kernel")
        if down is None:
            break
        t.fast, _, what = down
        changes.append(f"{what}: another rank needed it")
        t.build_model_and_optimiser()
    if accum != t.accum:
        changes.append(f"accumulating {accum} micro-batches per step: another rank ran out of memory")
        t.accum = accum
    if changes:
        t.fast["fallbacks"] = changes
        t.fast["micro_batch_accumulation"] = t.accum
        for c in changes:
            t.notes.append((f"fast path stepped down: {c}", "warning"))


def _trial_step(t: Any, rows: list[int]) -> None:
    """One forward and backward with no update; the random state is put back, so the run's numbers do
    not depend on whether the trial ran."""
    rng = paddle.get_rng_state()
    try:
        ids, labels, _ = batching.pad_batch(t.train_enc, rows, t.pad_id)
        with amp_context(t.fast):
            logits = t.model(paddle.to_tensor(ids))
        loss = F.cross_entropy(logits.astype("float32"), paddle.to_tensor(labels))
        (t.scaler.scale(loss) if t.scaler is not None else loss).backward()
    finally:
        t.optimizer.clear_grad()
        paddle.set_rng_state(rng)


def _release(t: Any) -> None:
    t.optimizer.clear_grad()
    if t.device == "gpu":
        paddle.device.cuda.empty_cache()
