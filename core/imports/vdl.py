"""VisualDL logs (``vdlrecords.*.log``): scalars on the step axis, read with VisualDL's own ``LogReader``.

Tags are matched by PaddleNLP's names first (its VisualDLCallback writes ``train/loss``,
``train/learning_rate``, ``train/interval_samples_per_second``, ``eval/accuracy``, ...), which are also
the names ``gpt2-tui export --format visualdl`` writes, then by common bare names (``loss``, ``lr``,
``train_loss``, ``eval_acc``) that hand-written scripts use. Several files in one folder (a resumed job
writes a new one) are read in name order, a later value for the same step winning.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from core.imports.source import Imported, SourceError, assemble, sha256_files

PATTERN = re.compile(r"^vdlrecords\..*\.log$")
STEP_TAGS = {
    "loss": ("train/loss", "loss", "train_loss", "train/lm_loss"),
    "lr": ("train/learning_rate", "learning_rate", "lr", "train/lr"),
    "samples_per_s": ("train/interval_samples_per_second", "train/samples_per_s", "samples_per_s", "train/ips"),
    "tokens_per_s": ("train/tokens_per_s", "tokens_per_s"),
    "epoch": ("train/progress_or_epoch", "train/epoch", "epoch"),
    "steps_per_s": ("train/interval_steps_per_second",),
}
EVAL_TAGS = {
    "accuracy": ("eval/accuracy", "eval/acc", "eval_accuracy", "eval_acc", "acc", "accuracy"),
    "loss": ("eval/loss", "eval_loss"),
}


def is_vdl_file(p: Path) -> bool:
    return p.is_file() and PATTERN.match(p.name) is not None


def vdl_files(p: Path) -> list[Path]:
    return sorted(f for f in p.rglob("vdlrecords.*.log") if is_vdl_file(f))


def _scalars(f: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, unix time, value)] of one file."""
    from visualdl import LogReader

    try:
        # LogReader prints while it parses; a bad file raises anything from MemoryError to a protobuf error.
        with contextlib.redirect_stdout(io.StringIO()):
            reader = LogReader(file_path=str(f))
            tags = reader.get_tags().get("scalar", [])
            return {tag: [(int(r.id), r.timestamp / 1000.0, float(r.value)) for r in reader.get_data("scalar", tag)]
                    for tag in tags}
    except Exception as e:
        raise SourceError(f"{f}: not a readable VisualDL log ({type(e).__name__}: {e})") from None


def _pick(tags: dict[str, dict[int, tuple[float, float]]], names: tuple[str, ...]) -> dict[int, tuple[float, float]]:
    return next((tags[n] for n in names if n in tags), {})


def read_vdl(p: Path) -> Imported:
    files = [p] if p.is_file() else vdl_files(p)
    tags: dict[str, dict[int, tuple[float, float]]] = {}
    for f in files:
        for tag, records in _scalars(f).items():
            for step, t, value in records:
                tags.setdefault(tag, {})[step] = (t, value)
    step_cols = {k: _pick(tags, names) for k, names in STEP_TAGS.items()}
    eval_cols = {k: _pick(tags, names) for k, names in EVAL_TAGS.items()}
    if not step_cols["loss"] and not eval_cols["accuracy"]:
        raise SourceError(f"{p}: no loss or accuracy scalars among its tags ({', '.join(sorted(tags)) or 'none'}); "
                          f"expected PaddleNLP's train/loss, eval/accuracy or plain loss / acc")
    body: list[dict[str, Any]] = []
    # A step whose loss was not finite has no loss scalar but still its learning rate and throughput.
    logged = set(step_cols["loss"]) | set(step_cols["lr"]) | set(step_cols["samples_per_s"])
    for step in sorted(logged | set(eval_cols["accuracy"]) | set(eval_cols["loss"])):
        if step in logged:
            t = max(col[step][0] for col in step_cols.values() if step in col)
            sps = step_cols["steps_per_s"].get(step, (0, None))[1]
            body.append({"type": "step", "step": step, "t": t, "step_time": 1.0 / sps if sps else None,
                         **{k: (col[step][1] if step in col else None) for k, col in step_cols.items()
                            if k != "steps_per_s"}})
        if step in eval_cols["accuracy"] or step in eval_cols["loss"]:
            t = max(col[step][0] for col in eval_cols.values() if step in col)
            body.append({"type": "eval", "step": step, "t": t, "n": None,
                         **{k: (col[step][1] if step in col else None) for k, col in eval_cols.items()}})
    # The events sort by step: VisualDL's times are per scalar, and a step's eval may be written after it.
    start = {"t": body[0]["t"], "world_size": None, "nnodes": 1, "devices": [], "versions": {},
             "total_steps": None, "samples_per_epoch": None, "num_epochs": None, "resumed_from_step": None}
    end = {"t": body[-1]["t"], "status": "finished", "reason": "imported from VisualDL logs"}
    name = (p.parent.name if p.is_file() else p.name) or str(p)
    return Imported(kind="visualdl", path=p, fingerprint=sha256_files(files), events=assemble(start, body, end),
                    config={}, name=f"{name} (VisualDL)", output_dir=str(p))
