"""The training engines a run can use, without paddle: ours (``gpt2-tui``) and PaddleNLP's own ``Trainer``.

``--engine paddlenlp`` is the reference a user compares us against: run_glue's setup on PaddleNLP's
``Trainer`` (core/engine_paddlenlp.py), launched, stopped and watched like our trainer. This module holds
the paddle-free rules: which RunConfig fields only our engine honours (``problems``), and the
``TrainingArguments`` a config becomes (``training_arguments``), so both are unit-tested without paddle.
It reads a config by attribute and never imports core.config (config.validate calls it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

OURS = "gpt2-tui"
PADDLENLP = "paddlenlp"
ENGINES = (OURS, PADDLENLP)
SCHEDULER_FILE = "scheduler.pdparams"  # PaddleNLP's Trainer writes it beside optimizer.pdopt

# Fields only our engine honours, with what to do instead under PaddleNLP's Trainer. Set away from their
# defaults with engine=paddlenlp they are refused, never silently ignored. (fast_path is not here: its
# default 'auto' and 'off' both mean "the recipe's numerics" to PaddleNLP's Trainer, which has no fast path.)
OURS_ONLY = {
    "flash_attention_drops_dropout": "flash attention is part of gpt2-tui's fast path; PaddleNLP's Trainer runs "
                                     "the model as configured: leave it false",
    "max_restart": "an elastic restart continues from gpt2-tui's own checkpoint state; with --engine paddlenlp "
                   "leave it 0 and resume the stopped run (gpt2-tui train --resume RUN)",
}


def problems(cfg: Any) -> list[tuple[str, str]]:
    """(field, message) for an unknown engine, or an ours-only field set away from its default."""
    engine = getattr(cfg, "engine", OURS)
    if engine not in ENGINES:
        return [("engine", f"must be {' or '.join(ENGINES)}, got {engine!r}")]
    if engine == OURS:
        return []
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    return [(name, f"not supported with --engine {PADDLENLP} (set to {getattr(cfg, name)!r}): {why}")
            for name, why in OURS_ONLY.items() if getattr(cfg, name) != defaults[name]]


def resume_problem(engine: str, checkpoint: str | os.PathLike[str]) -> str | None:
    """Why ``engine`` cannot continue from ``checkpoint``, or None. PaddleNLP's Trainer loads the learning
    rate schedule from ``scheduler.pdparams``, which our engine does not write (its schedule position is in
    gpt2tui_state.json): it fails late, after the launch, with "scheduler-file not found". Our engine
    continues from either kind."""
    ck = Path(checkpoint)
    if engine == PADDLENLP and not (ck / SCHEDULER_FILE).is_file():
        return (f"{ck.name} was written by gpt2-tui's engine (no {SCHEDULER_FILE}), which PaddleNLP's Trainer "
                f"cannot continue from: resume it with --engine {OURS}")
    return None


def training_arguments(cfg: Any, output_dir: str, device: str, bf16_ok: bool = False) -> dict[str, Any]:
    """PaddleNLP ``TrainingArguments(**...)`` for a config: run_glue's flags as the config has them.

    ``device`` is paddle's kind, 'cpu' or 'gpu'; ``bf16_ok`` says the GPU computes in bfloat16 (compute
    capability 8+). gpt2-tui's meanings are kept where the two differ: use_amp (the reference preset's)
    is bf16 where the GPU has it, else fp16, on a GPU only, as our engine reads it;
    do_eval false turns evaluation off altogether; save_total_limit keeps the best checkpoint by dev
    accuracy besides the newest (PaddleNLP's rotation keeps ``best_model_checkpoint``, which
    metric_for_best_model sets); the final evaluation and checkpoint are the engine callback's.
    """
    evaluating = bool(cfg.do_eval)
    # Mixed precision on an accelerator only, as our engine reads fp16/bf16/use_amp: a CPU run is fp32.
    accel = device != "cpu"
    auto_amp = bool(cfg.use_amp) and not (cfg.fp16 or cfg.bf16) and accel
    return {
        "output_dir": output_dir, "overwrite_output_dir": bool(cfg.overwrite_output_dir),
        "do_train": True, "do_eval": evaluating,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "per_device_eval_batch_size": cfg.per_device_eval_batch_size,
        "learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay, "adam_epsilon": cfg.adam_epsilon,
        "max_grad_norm": cfg.max_grad_norm, "warmup_ratio": cfg.warmup_ratio, "warmup_steps": cfg.warmup_steps,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "num_train_epochs": cfg.num_train_epochs, "max_steps": cfg.max_steps, "seed": cfg.seed,
        "logging_steps": cfg.logging_steps,
        "evaluation_strategy": cfg.evaluation_strategy if evaluating else "no", "eval_steps": cfg.eval_steps,
        "save_strategy": cfg.save_strategy, "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit or None,
        "metric_for_best_model": "accuracy" if evaluating else None, "greater_is_better": True,
        "fp16": accel and (bool(cfg.fp16) or (auto_amp and not bf16_ok)),
        "bf16": accel and (bool(cfg.bf16) or (auto_amp and bf16_ok)),
        "fp16_opt_level": cfg.fp16_opt_level,
        "scale_loss": cfg.scale_loss, "device": device,
        # Metrics go to our events (runs.db), not to VisualDL; no progress bar in the rank logs.
        "report_to": [], "disable_tqdm": True, "dataloader_num_workers": 0,
    }
