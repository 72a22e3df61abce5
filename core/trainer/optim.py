"""The optimiser, its learning-rate schedule and the mixed-precision wrapping, as the fast path says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import paddle

from core.config import RunConfig


@dataclass
class Optimisation:
    model: Any  # the model, decorated for O2 when the fast path says so
    optimizer: Any
    scheduler: Any
    scaler: Any  # paddle.amp.GradScaler for float16, else None


def build_optimisation(model: Any, cfg: RunConfig, total_steps: int, fast: dict[str, Any]) -> Optimisation:
    from paddlenlp.transformers import LinearDecayWithWarmup

    scheduler = LinearDecayWithWarmup(cfg.learning_rate, total_steps, float(cfg.warmup_ratio))
    no_decay = ("bias", "norm")
    decay = {p.name for n, p in model.named_parameters() if not any(k in n for k in no_decay)}
    optimizer: Any = paddle.optimizer.AdamW(
        learning_rate=scheduler, parameters=model.parameters(), weight_decay=cfg.weight_decay,
        apply_decay_param_fun=lambda name: name in decay, grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0),
    )
    scaler = None
    if fast.get("amp_dtype"):
        model, optimizer = paddle.amp.decorate(
            models=model, optimizers=optimizer, level="O2", dtype=fast["amp_dtype"],
            master_grad=True, save_dtype="float32",
        )
        if fast.get("grad_scaler"):
            scaler = paddle.amp.GradScaler(init_loss_scaling=2.0**15)
    return Optimisation(model, optimizer, scheduler, scaler)
