"""How much of a run's time goes to evaluation, estimated before launch (no paddle, from row counts).

The cost model counts forward passes of one sample on one rank. A training sample costs a forward and a
backward pass, about 3 forwards; an evaluation sample one forward. Both split over the ranks (the trainer
evaluates every world-th dev row on each rank), so the world size cancels except for rounding:

    train  = total_steps x per_device_train_batch_size x gradient_accumulation_steps x 3
    eval   = evaluations x ceil(dev_rows / world)
    share  = eval / (train + eval)

The reference command's ``--eval_steps 1`` on SST-2 (872 dev rows, batch 32, one GPU) evaluates 28 batches
after every training batch: ~90 % of the run. Padding, the first step's compile and checkpoint saves are
left out: this is a warning threshold, not a schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core.config import RunConfig
from core.epoch_steps import steps_per_epoch

FORWARDS_PER_TRAIN_SAMPLE = 3.0
WARN_SHARE = 0.10
# The eval_steps we suggest: the first of these that brings the share to SUGGEST_SHARE or below.
SUGGEST_SHARE = 0.05
_NICE = [m * 10 ** k for k in range(7) for m in (1, 2, 5)]
# SST-2 as GLUE ships it: used before the files are downloaded.
SST2_ROWS = (67_349, 872)


@dataclass(frozen=True)
class EvalCost:
    share: float  # of the run's time spent evaluating, 0..1
    evaluations: int
    total_steps: int
    eval_batches: int  # per rank, per evaluation
    every: str  # "every step", "every 25 steps", "every epoch", "at the end"
    suggestion: tuple[int, float] | None  # (eval_steps, share with it) when the share is too high

    @property
    def too_high(self) -> bool:
        return self.share > WARN_SHARE


def count_rows(path: str | Path) -> int:
    """Data rows of a TSV with a header line (a last line without a newline counts)."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        n += 1
    return max(0, n - 1)


def rows_of(data_dir: str | Path | None) -> tuple[int, int]:
    """(train rows, dev rows) of an SST-2 folder; GLUE's counts when there is no folder yet."""
    if data_dir is None:
        return SST2_ROWS
    d = Path(data_dir)
    return count_rows(d / "train.tsv"), count_rows(d / "dev.tsv")


def plan_steps(cfg: RunConfig, train_rows: int, world: int) -> tuple[int, int]:
    """(total steps, steps per epoch), as core.train computes them."""
    global_batch = cfg.per_device_train_batch_size * max(1, world) * cfg.gradient_accumulation_steps
    per_epoch = max(1, steps_per_epoch(train_rows, global_batch, max(1, world)))
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.num_train_epochs * per_epoch))
    return total, per_epoch


def _evaluations(cfg: RunConfig, total: int, per_epoch: int, eval_steps: int) -> tuple[int, str]:
    if not cfg.do_eval:
        return 0, "never"
    if cfg.evaluation_strategy == "no":
        return 1, "at the end"
    if cfg.evaluation_strategy == "epoch":
        return max(1, math.ceil(total / per_epoch)), "every epoch"
    # 'steps' (our default): every eval_steps, plus the final one when the last step is not a multiple.
    n = total // eval_steps + (1 if total % eval_steps else 0)
    return max(1, n), "every step" if eval_steps == 1 else f"every {eval_steps} steps"


def _share(cfg: RunConfig, total: int, evaluations: int, dev_rows: int, world: int) -> float:
    train = total * cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * FORWARDS_PER_TRAIN_SAMPLE
    ev = evaluations * math.ceil(dev_rows / max(1, world))
    return ev / (train + ev) if train + ev else 0.0


def estimate(cfg: RunConfig, train_rows: int, dev_rows: int, world: int = 1) -> EvalCost:
    total, per_epoch = plan_steps(cfg, train_rows, world)
    n, every = _evaluations(cfg, total, per_epoch, cfg.eval_steps)
    share = _share(cfg, total, n, dev_rows, world)
    batches = math.ceil(math.ceil(dev_rows / max(1, world)) / cfg.per_device_eval_batch_size) if dev_rows else 0
    suggestion = None
    if share > WARN_SHARE and cfg.evaluation_strategy == "steps":
        for steps in _NICE:
            s = _share(cfg, total, _evaluations(cfg, total, per_epoch, steps)[0], dev_rows, world)
            if s <= SUGGEST_SHARE or steps >= total:
                suggestion = (steps, s)
                break
    return EvalCost(share, n, total, batches, every, suggestion)


def warning(cost: EvalCost) -> str | None:
    """The sentence `train` and the preflight show when evaluation would dominate, else None."""
    if not cost.too_high:
        return None
    text = (f"evaluation would take {_pct(cost.share)} of the run's time: {cost.eval_batches} eval "
            f"batch{'es' if cost.eval_batches != 1 else ''} {cost.every} ({cost.evaluations} evaluations "
            f"in {cost.total_steps} steps)")
    if cost.suggestion:
        steps, share = cost.suggestion
        text += f"; --eval_steps {steps} would make it {_pct(share)}"
    return text


def summary(cost: EvalCost) -> str:
    """One line for a checklist when all is well."""
    if cost.evaluations == 0:
        return "no evaluation during training (do_eval false)"
    return (f"{_pct(cost.share)} of the run's time: {cost.evaluations} evaluation(s) of {cost.eval_batches} "
            f"batch(es), {cost.every}")


def _pct(share: float) -> str:
    return f"~{100 * share:.0f} %" if share >= 0.01 else "<1 %"
