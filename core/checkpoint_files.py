"""Checkpoint folders on disk, without paddle: the one rule for "is this checkpoint complete", listing,
the latest, retention (which to delete), durable commits, and the trainer's state files.

A checkpoint is written into a hidden ``.checkpoint-N.tmp-PID`` folder, every file and the folder are
fsynced, and only then is it renamed to ``checkpoint-N`` (and the parent fsynced): a crash leaves either
no ``checkpoint-N`` or a complete one, plus a stale hidden folder that the next start removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from core.events import finite_or_text
from core.models import WEIGHT_FILES

CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)")
TMP_RE = re.compile(r"\.checkpoint-(\d+)\.tmp-(\d+)(-old)?")
OPTIMIZER_FILE = "optimizer.pdopt"
PADDLENLP_STATE = "trainer_state.json"  # PaddleNLP's TrainerState (what its Trainer writes)
OUR_STATE = "gpt2tui_state.json"  # what gpt2-tui needs besides: lr_step, world_size, model_dir, ...


def checkpoint_step(path: Path) -> int | None:
    m = CHECKPOINT_RE.fullmatch(path.name)
    return int(m.group(1)) if m else None


def has_weights(path: Path) -> bool:
    """Any folder a model loads from: a config and a weights file (PaddleNLP's, an import's, ours)."""
    return (path / "config.json").is_file() and any((path / f).is_file() for f in WEIGHT_FILES)


def is_complete(path: Path) -> bool:
    """A ``checkpoint-N`` folder with a config and weights (ours are renamed into place only when whole)."""
    return checkpoint_step(path) is not None and has_weights(path)


def list_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints in ``out_dir``, (step, folder) by step."""
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for d in out_dir.iterdir():
            step = checkpoint_step(d)
            if step is not None and is_complete(d):
                found.append((step, d))
    return sorted(found)


def latest(out_dir: Path) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def to_delete(steps: list[int], best_step: int | None, limit: int) -> list[int]:
    """Steps to delete so that the newest ``limit`` remain plus the best one; limit <= 0 keeps all."""
    if limit <= 0:
        return []
    keep = set(sorted(steps)[-limit:])
    if best_step is not None:
        keep.add(best_step)
    return sorted(s for s in steps if s not in keep)


def tmp_folder(out_dir: Path, step: int) -> Path:
    return out_dir / f".checkpoint-{step}.tmp-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(out_dir: Path) -> list[Path]:
    """Remove hidden half-written (or half-deleted) checkpoint folders whose process is gone."""
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for d in out_dir.iterdir():
            m = TMP_RE.fullmatch(d.name)
            if m and d.is_dir() and (int(m.group(2)) == os.getpid() or not _pid_alive(int(m.group(2)))):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return sorted(removed)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path``, then every folder (deepest first)."""
    dirs = []
    for root, _, files in os.walk(path):
        dirs.append(Path(root))
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in reversed(dirs):
        fsync_dir(d)


def commit_folder(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable and rename it to ``final`` (an older ``final`` is moved aside first, then removed)."""
    fsync_tree(tmp)
    aside = None
    if final.exists() or final.is_symlink():
        aside = final.parent / f".{final.name}.tmp-{os.getpid()}-old"
        if not final.is_dir():
            raise NotADirectoryError(f"{final} exists and is not a folder")
        os.replace(final, aside)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def delete_checkpoint(path: Path) -> None:
    """Rename out of sight first, so a crash mid-delete never leaves a partial ``checkpoint-N``."""
    step = checkpoint_step(path)
    aside = path.parent / f".checkpoint-{step}.tmp-{os.getpid()}"
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(path, aside)
    fsync_dir(path.parent)
    shutil.rmtree(aside, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """Strict JSON, as the event file: a NaN loss is written "nan" (PaddleNLP would write a bare NaN)."""
    path.write_text(json.dumps(finite_or_text(obj), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_state(ckpt: Path) -> dict[str, Any]:
    """gpt2-tui's state of a checkpoint: gpt2tui_state.json, else (a checkpoint saved before that file
    existed, or one PaddleNLP made) trainer_state.json; {} when neither can be read."""
    for name in (OUR_STATE, PADDLENLP_STATE):
        try:
            state = json.loads((ckpt / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            return state
    return {}


def retain(out_dir: Path, best: Path | None, limit: int) -> list[tuple[int, Path]]:
    """Apply save_total_limit after a new checkpoint is in place: delete all but the newest ``limit`` and
    the best, and keep the optimizer state only in the newest (resume continues from the latest).
    Returns the deleted (step, folder); nothing happens when limit <= 0."""
    if limit <= 0:
        return []
    found = list_checkpoints(out_dir)
    # the best of a run resumed from another folder is not one of these
    best_step = checkpoint_step(best) if best is not None and best.parent == out_dir else None
    doomed = set(to_delete([s for s, _ in found], best_step, limit))
    deleted = []
    for step, path in found:
        if step in doomed:
            delete_checkpoint(path)
            deleted.append((step, path))
        elif step != found[-1][0]:
            with contextlib.suppress(FileNotFoundError):
                (path / OPTIMIZER_FILE).unlink()
    return deleted
