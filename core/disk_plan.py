"""How much disk a run's checkpoints take, estimated before launch (no paddle).

A checkpoint holds the weights (fp32: 4 bytes a parameter) and AdamW's two moments (twice the weights):
GPT-2 Medium's is 4.26 GB, 2.84 GB of it optimizer state (bench/medium_cpu.py). The reference recipe
saves 13 of them (6,315 steps, every 500 and the last): 55 GB kept unless ``save_total_limit`` prunes them.
With a limit, the newest N stay plus the best, and only the newest keeps its optimizer state
(core.checkpoint_files.retain); while a new one is written the old ones are still there, so the peak is
one checkpoint more than what is kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core import models
from core.config import RunConfig
from core.eval_cost import plan_steps

OPTIMIZER_PER_WEIGHTS = 2  # AdamW: first and second moments, each the size of the weights
BYTES_PER_PARAM = 4  # checkpoints are saved in float32 (save_dtype float32 under AMP too)


@dataclass
class DiskPlan:
    saves: int  # checkpoints written during the run
    kept: int  # still on disk at the end
    weights_bytes: int  # one checkpoint's weights
    optimizer_bytes: int  # one checkpoint's optimizer state
    need_bytes: int  # the most on disk at once

    def describe(self) -> str:
        each = self.weights_bytes + self.optimizer_bytes
        return (f"{self.saves} checkpoint(s) of ~{gb(each)} (weights {gb(self.weights_bytes)} + optimizer "
                f"{gb(self.optimizer_bytes)}), {self.kept} kept: ~{gb(self.need_bytes)} at the peak")


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def parameter_count(name: str) -> int | None:
    """Parameters of a known architecture (with the 2-class head), or None."""
    arch = models.CONFIGS.get(name)
    if arch is None:
        return None

    def size(key: str) -> int:
        return int(str(arch[key]))

    h, layers = size("hidden_size"), size("num_hidden_layers")
    ffn, vocab, pos = size("intermediate_size"), size("vocab_size"), size("max_position_embeddings")
    per_layer = 4 * h * h + 4 * h + 2 * h * ffn + ffn + h + 4 * h  # attention, MLP, two layer norms
    return layers * per_layer + (vocab + pos) * h + 2 * h + 2 * h


def weights_bytes(cfg: RunConfig) -> int:
    """One checkpoint's weights: from the architecture of a known model, else the model folder's files."""
    name = cfg.model_name_or_path.strip()
    params = parameter_count(name)
    if params is not None:
        return params * BYTES_PER_PARAM
    folder = models.ASSETS / models.TINY if name == models.TINY else Path(name).expanduser()
    if not folder.is_dir():
        return 0
    return max((f.stat().st_size for f in folder.iterdir() if f.name in models.WEIGHT_FILES and f.is_file()),
               default=0)


def saves(cfg: RunConfig, total: int, per_epoch: int) -> int:
    """Checkpoints written: by the save strategy, and always the last step's."""
    if cfg.save_strategy == "no":
        return 1
    every = per_epoch if cfg.save_strategy == "epoch" else cfg.save_steps
    return total // every + (1 if total % every else 0)


def plan(cfg: RunConfig, train_rows: int, world: int = 1) -> DiskPlan:
    total, per_epoch = plan_steps(cfg, train_rows, world)
    n = max(1, saves(cfg, total, per_epoch))
    w = weights_bytes(cfg)
    opt = OPTIMIZER_PER_WEIGHTS * w
    if cfg.save_total_limit > 0:
        kept = min(n, cfg.save_total_limit + 1)  # the newest N, and the best when it is older
        # at the peak: the kept ones (optimizer state in the newest only) and the one being written
        need = kept * w + opt + (w + opt if n > kept else 0)
    else:
        kept = n
        need = n * (w + opt)
    return DiskPlan(n, kept, w, opt, need)


def free_bytes(folder: Path) -> tuple[Path, int]:
    """The nearest existing folder at or above ``folder`` and the free bytes on its file system."""
    p = folder.expanduser().resolve()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p, shutil.disk_usage(p).free


def shortfall(p: DiskPlan, free: int) -> str | None:
    """The sentence that refuses a run whose checkpoints cannot fit, or None when they can."""
    if p.need_bytes <= free:
        return None
    text = f"its checkpoints need {p.describe()}, but only {gb(free)} is free: {gb(p.need_bytes - free)} short"
    each = p.weights_bytes + p.optimizer_bytes
    for limit in (3, 2, 1):
        if limit + 1 < p.kept and limit * p.weights_bytes + 2 * each <= free:
            return f"{text}; --save_total_limit {limit} would fit"
    return f"{text}; free some space or set --output_dir on a larger disk"


def check(cfg: RunConfig, out_dir: Path, train_rows: int, world: int = 1) -> tuple[DiskPlan, str | None]:
    """The plan and, when it cannot fit in ``out_dir``'s file system, why (naming the folder)."""
    p = plan(cfg, train_rows, world)
    where, free = free_bytes(out_dir)
    reason = shortfall(p, free)
    return p, (f"{where}: {reason}" if reason else None)
