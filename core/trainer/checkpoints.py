"""Checkpoint folders: writing one (renamed into place when complete), reading one back, loading a model."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paddle

from core import checkpoint_files as files

# Tests: make the save at this step take 35 s, longer than gloo lets a collective wait (~30 s).
SLOW_SAVE_TEST_STEP = int(os.environ.get("GPT2_TUI_TEST_SLOW_SAVE_AT_STEP", "0") or 0)


class CheckpointError(OSError):
    """A checkpoint could not be written (disk full, read-only folder); the message names the path."""


@contextlib.contextmanager
def portable_config(model: Any) -> Iterator[None]:
    """Save a config that loads anywhere: flash attention off (it only runs on a GPU)."""
    cfg = model.config
    saved = getattr(cfg, "use_flash_attention", False)
    cfg.use_flash_attention = False
    try:
        yield
    finally:
        cfg.use_flash_attention = saved


def load_classifier(path: str, fast: dict[str, Any] | None = None) -> Any:
    """GPTForSequenceClassification (2 labels) from a model folder or a checkpoint, fast path applied."""
    from paddlenlp.transformers import GPTForSequenceClassification

    fast = fast or {}
    kw: dict[str, Any] = {"num_labels": 2, "use_flash_attention": bool(fast.get("flash_attention"))}
    if fast.get("fuse_attention_qkv"):
        kw["fuse_attention_qkv"] = True
    if fast.get("dropout_zeroed"):
        kw.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    # fp32 weights always (a checkpoint may say bfloat16): paddle.amp.decorate makes the O2 copies itself
    kw["dtype"] = "float32"
    return GPTForSequenceClassification.from_pretrained(path, **kw)


def save_checkpoint(out_dir: Path, step: int, model: Any, tokenizer: Any, optimizer: Any | None,
                    state_files: dict[str, Any]) -> Path:
    """Write ``out_dir/checkpoint-<step>`` durably: built in a hidden folder, fsynced, renamed into place.

    ``state_files``: file name -> JSON object. ``optimizer`` None saves no optimizer state."""
    final = out_dir / f"checkpoint-{step}"
    tmp = files.tmp_folder(out_dir, step)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with portable_config(model):
            model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if optimizer is not None:
            paddle.save(optimizer.state_dict(), str(tmp / files.OPTIMIZER_FILE))
        for name, obj in state_files.items():
            files.write_json(tmp / name, obj)
        if step == SLOW_SAVE_TEST_STEP:
            time.sleep(35.0)
        files.commit_folder(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"cannot save checkpoint-{step} to {final}: {e.strerror or e}") from None
    return final


def restore_optimizer(ckpt: Path, optimizer: Any) -> str | None:
    """Load the optimizer's state; a warning to log when the checkpoint has none."""
    opt_file = ckpt / files.OPTIMIZER_FILE
    if not opt_file.is_file():
        return f"{opt_file} is missing: the optimizer starts fresh (AdamW moments reset)"
    optimizer.set_state_dict(paddle.load(str(opt_file)))
    return None
