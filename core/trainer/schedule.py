"""The run's schedule as pure rules (no paddle): how many steps, where a resumed run picks up.

A step is an optimiser step everywhere (with gradient accumulation it takes several micro-batches).
"""

from __future__ import annotations

import math


def total_steps(max_steps: int, num_train_epochs: float, steps_per_epoch: int) -> int:
    """max_steps when > 0, else the epochs' steps rounded up (at least one)."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(num_train_epochs * steps_per_epoch))


def resume_position(epoch_f: float, steps_per_epoch: int) -> tuple[int, int]:
    """(epoch, batches of it to skip) for a checkpoint taken at fractional epoch ``epoch_f``.

    The data order is a function of (seed, epoch), so skipping the consumed batches of the current
    epoch replays the rest exactly with the same world size and batch size; with a different one it
    is approximate (the same fraction of the epoch is skipped)."""
    epoch = int(epoch_f)
    return epoch, min(steps_per_epoch, round((epoch_f - epoch) * steps_per_epoch))


def warmup_steps(warmup_steps: int, warmup_ratio: float, total: int) -> int:
    """Linear warm-up length: warmup_steps when > 0 (it overrides the ratio, as in PaddleNLP), else
    floor(warmup_ratio x total), as PaddleNLP's LinearDecayWithWarmup rounds a ratio."""
    if warmup_steps > 0:
        return warmup_steps
    return int(math.floor(warmup_ratio * total))


def should_evaluate(step: int, last: bool, epoch_end: bool, do_eval: bool, strategy: str, eval_steps: int) -> bool:
    """do_eval false: never. Else at the last step, and every eval_steps (steps) or at each epoch's end
    (epoch); strategy 'no' evaluates only at the last step."""
    if not do_eval:
        return False
    return last or _by_strategy(step, epoch_end, strategy, eval_steps)


def should_save(step: int, last: bool, epoch_end: bool, strategy: str, save_steps: int) -> bool:
    """The last step always saves; before it, every save_steps (steps), each epoch's end (epoch) or never (no)."""
    return last or _by_strategy(step, epoch_end, strategy, save_steps)


def _by_strategy(step: int, epoch_end: bool, strategy: str, every: int) -> bool:
    if strategy == "steps":
        return step % every == 0
    if strategy == "epoch":
        return epoch_end
    return False
