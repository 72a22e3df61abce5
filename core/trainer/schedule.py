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
