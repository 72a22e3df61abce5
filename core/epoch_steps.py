"""How many steps an epoch has, without numpy: the CLI plans disk and evaluation time before every
launch, and importing numpy through core.batching cost it ~0.07 s of the launch's serial start-up
(bench/train_startup.py). core.batching builds the batches this counts, and re-exports it.
"""

from __future__ import annotations


def steps_per_epoch(n: int, global_batch: int, world: int) -> int:
    """len(length_grouped_batches(...)) without building them."""
    global_batch = max(global_batch, world)
    full, rest = divmod(n, global_batch)
    if rest == 0:
        return full
    if full >= 1 and rest < world:
        return full  # the short tail joined the batch before it
    return full + 1
