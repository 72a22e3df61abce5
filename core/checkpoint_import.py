"""Checkpoints gpt2-tui did not make: a PaddleNLP ``checkpoint-N/`` folder, or a bare ``model_state.pdparams``
with a model name for its config and tokenizer, recorded as a run so the history and results show them.

An import is a run row (kind 'train', status 'finished', name ``<folder> (imported)``, e.g.
``checkpoint-500 (imported)``, the weights' real path in its ``checkpoint`` column) with its own folder
``runs/<id>/``: ``checkpoints/checkpoint-<N>/`` links to the weights and, where the source lacks them, to
the named model's config and tokenizer files; ``events.jsonl`` holds a start, a checkpoint and an end event,
ingested like any run's. An evaluation of it is an eval job with the import as its parent, so its result
is one of the import's evals. The same source file (and model name) imported again is the same import: its
evaluations are recognised as repeats.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from core.config import RunConfig
from core.records import RunRow
from core.store import Store

WEIGHTS = "model_state.pdparams"
# Taken from beside the weights (never the folder's other files: a bare .pdparams may sit anywhere).
SIDE_FILES = ("config.json", "generation_config.json", "vocab.json", "merges.txt", "tokenizer_config.json",
              "special_tokens_map.json", "added_tokens.json", "trainer_state.json")
IMPORT_SUFFIX = " (imported)"


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported; the message says what to pass instead."""


def source_weights(spec: str) -> Path:
    """The weights file that FILE.pdparams or DIR names (absolute, links resolved)."""
    p = Path(spec).expanduser()
    if p.is_dir():
        p = p / WEIGHTS
    if not p.is_file():
        raise CheckpointImportError(f"--init_checkpoint_path {spec}: no {WEIGHTS} there; pass a checkpoint-N folder or "
                           f"its {WEIGHTS} file")
    return p.resolve()


def step_of(weights: Path) -> int:
    """The global step: from trainer_state.json beside the weights, else the folder's name (checkpoint-N)."""
    try:
        state = json.loads((weights.parent / "trainer_state.json").read_text())
        if isinstance(state.get("global_step"), int):
            return int(state["global_step"])
    except (OSError, ValueError, AttributeError):
        pass
    m = re.fullmatch(r"checkpoint-(\d+)", weights.parent.name)
    return int(m.group(1)) if m else 0


def find_import(store: Store, weights: Path, model_name: str) -> RunRow | None:
    for run in store.list_runs(kind="train"):
        # A training run's row has no checkpoint column (only eval jobs and imports set it).
        if run.get("checkpoint") == str(weights) and run.get("model") == model_name:
            return run
    return None


def import_checkpoint(store: Store, runs_root: Path, spec: str, model_name: str | None,
                      max_seq_length: int = 128) -> tuple[RunRow, Path]:
    """(the import's run row, its checkpoint folder); an earlier import of the same weights is reused."""
    from core import models
    from core.events import EventWriter
    from core.follow import sync_events
    from core.launch import make_run_dir, new_run_id

    weights = source_weights(spec)
    own = weights.parent
    has_config = (own / "config.json").is_file()
    # PaddleNLP's run_glue saves the tokenizer in output_dir, the checkpoint folder's parent.
    tok_dir = next((d for d in (own, own.parent) if all((d / f).is_file() for f in models.TOKENIZER_FILES)), None)
    has_tokenizer = tok_dir is not None
    if not (has_config and has_tokenizer) and not model_name:
        lacks = ", ".join(x for x, ok in (("config.json", has_config), ("vocab.json + merges.txt", has_tokenizer))
                          if not ok)
        raise CheckpointImportError(f"{own} has no {lacks}: pass --model_name (e.g. gpt2-medium-en, or the model folder "
                           f"it was fine-tuned from) for them")
    model = model_name or str(own)
    if (run := find_import(store, weights, model)) is not None:
        ckpts = store.checkpoints(run["id"])
        if ckpts and (Path(ckpts[-1]["path"]) / WEIGHTS).exists():
            return run, Path(ckpts[-1]["path"])
    model_dir = models.resolve_model(model_name) if model_name else None
    step = step_of(weights)
    run_id = new_run_id()
    run_dir = make_run_dir(runs_root, run_id)
    folder = run_dir / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    # Links, not copies (GPT-2 Medium's weights are 1.4 GB): the weights, the source's own config and
    # tokenizer files, then the named model's for what the source lacks (never the model's weights).
    os.symlink(weights, folder / WEIGHTS)
    for name in SIDE_FILES:
        if (own / name).is_file():
            os.symlink((own / name).resolve(), folder / name)
        elif tok_dir is not None and (tok_dir / name).is_file() and name not in ("config.json", "trainer_state.json"):
            os.symlink((tok_dir / name).resolve(), folder / name)
    if model_dir is not None:
        for src in sorted(Path(model_dir).iterdir()):
            if src.is_file() and src.name not in models.WEIGHT_FILES and not (folder / src.name).exists():
                os.symlink(src.resolve(), folder / src.name)
    cfg = RunConfig(model_name_or_path=model, max_seq_length=max_seq_length, data_dir="sample",
                    run_name=f"{own.name}{IMPORT_SUFFIX}")  # the history's name column shows ~20 characters
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("start", world_size=1, total_steps=step or None, imported=str(weights))
        w.emit("checkpoint", step=step, path=str(folder))
        w.emit("end", status="finished", reason=f"imported from {weights}")
    now = time.time()
    store.create_run({"id": run_id, "kind": "train", "name": cfg.run_name, "status": "running", "created_at": now,
                      "config": cfg.to_dict(), "command": [], "run_dir": str(run_dir), "output_dir": str(folder.parent),
                      "model": model, "devices": "-", "world_size": 1, "nnodes": 1, "host": os.uname().nodename,
                      "checkpoint": str(weights)})
    sync_events(store, run_id)  # the end event makes it 'finished'
    run = store.get_run(run_id)
    assert run is not None
    return run, folder
