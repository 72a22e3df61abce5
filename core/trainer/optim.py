"""The optimiser, its learning-rate schedule and the mixed-precision wrapping, as the fast path says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import paddle

from core.config import RunConfig
from core.trainer import schedule


@dataclass
class Optimisation:
    model: Any  # the model, decorated for O2 when the fast path says so
    optimizer: Any
    scheduler: Any
    scaler: Any  # paddle.amp.GradScaler for float16, else None


def build_optimisation(model: Any, cfg: RunConfig, total_steps: int, fast: dict[str, Any]) -> Optimisation:
    from paddlenlp.transformers import LinearDecayWithWarmup

    # an int is a number of steps to LinearDecayWithWarmup (a float would be a ratio)
    warmup = schedule.warmup_steps(cfg.warmup_steps, cfg.warmup_ratio, total_steps)
    scheduler = LinearDecayWithWarmup(cfg.learning_rate, total_steps, int(warmup))
    no_decay = ("bias", "norm")
    decay = {p.name for n, p in model.named_parameters() if not any(k in n for k in no_decay)}
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
    optimizer: Any = paddle.optimizer.AdamW(
        learning_rate=scheduler, parameters=model.parameters(), weight_decay=cfg.weight_decay,
        epsilon=cfg.adam_epsilon, apply_decay_param_fun=lambda name: name in decay, grad_clip=clip,
    )
    scaler = None
    if fast.get("amp_dtype"):
        if fast.get("amp_level") == "O2":  # O1 casts op by op under auto_cast and keeps fp32 weights
            model, optimizer = paddle.amp.decorate(
                models=model, optimizers=optimizer, level="O2", dtype=fast["amp_dtype"],
                master_grad=bool(fast.get("master_grad")), save_dtype="float32",
            )
        if fast.get("grad_scaler"):
            scaler = paddle.amp.GradScaler(init_loss_scaling=cfg.scale_loss)
    return Optimisation(model, optimizer, scheduler, scaler)
