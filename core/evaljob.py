"""Evaluation jobs: a checkpoint on an SST-2 split, run like training (own process group, events, store).

The same checkpoint evaluated on the same file content in the same mode is the same evaluation: its row
key is (checkpoint real path, sha256 of the file, mode), so a repeat is recognised, not duplicated.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.checkpoint_files import has_weights
from core.config import RunConfig
from core.launch import EVAL_SCRIPT, LaunchError, Prepared, launch_env, make_run_dir, new_run_id
from core.records import EvalRow
from core.store import Store

MODES = ("classify", "cloze")


def resolve_checkpoint(store: Store, run: Mapping[str, Any] | None, spec: str) -> tuple[Path, int | None]:
    """STEP, latest, best (highest accuracy of the run's evals at a checkpoint step) or a folder path."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.resolve(), None
    if run is None:
        raise LaunchError(f"checkpoint {spec!r}: no such folder")
    ckpts = store.checkpoints(run["id"])
    if not ckpts:
        raise LaunchError(f"run {run['id']} has no checkpoints yet")
    by_step = {c["step"]: c for c in ckpts}
    if spec == "latest":
        c = ckpts[-1]
    elif spec == "best":
        scored = [(e["accuracy"], e["step"]) for e in store.evals(run["id"])
                  if e["step"] in by_step and e["accuracy"] is not None]
        c = by_step[max(scored)[1]] if scored else ckpts[-1]
    elif spec.isdigit():
        if int(spec) not in by_step:
            raise LaunchError(f"run {run['id']} has no checkpoint at step {spec}; it has steps "
                              f"{', '.join(str(s) for s in by_step)}")
        c = by_step[int(spec)]
    else:
        raise LaunchError(f"--checkpoint {spec!r}: expected a step, latest, best or a folder")
    path = Path(c["path"])
    if not has_weights(path):
        raise LaunchError(f"checkpoint {path} has no config.json and weights any more (deleted?)")
    return path, c["step"]


def default_eval_path(run: Mapping[str, Any] | None) -> Path:
    """The dev split a run trained with, without downloading anything: the folder its command named, else
    its config's data_dir ('glue' is where the download lands; the bundled sample without a run)."""
    from core import data

    cmd = (run or {}).get("command") or []
    if isinstance(cmd, list) and "--data_dir" in cmd[:-1]:
        return Path(cmd[cmd.index("--data_dir") + 1]) / "dev.tsv"
    data_dir = str(((run or {}).get("config") or {}).get("data_dir") or "sample")
    if data_dir == "glue":
        return data.glue_sst2_dir() / "dev.tsv"
    return Path(data.resolve_data_dir(data_dir)).expanduser() / "dev.tsv"


def prepare_eval(store: Store, run: Mapping[str, Any] | None, runs_root: Path, checkpoint: str = "latest",
                 eval_path: str | None = None, mode: str = "classify", device: str = "auto",
                 batch_size: int = 64, force: bool = False) -> tuple[Prepared | None, EvalRow | None]:
    """The eval job to start, and the stored result if this exact evaluation was already done.

    Without ``force``, a repeat returns (None, stored result) and nothing is started.
    """
    from core import data, devices

    if mode not in MODES:
        raise LaunchError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    ckpt, _ = resolve_checkpoint(store, run, checkpoint)
    path = Path(eval_path).resolve() if eval_path else default_eval_path(run)
    rows = data.read_split(path, labelled=True)  # validates; a DataError names file and line
    sha = data.sha256_file(path)
    done = store.find_eval(str(ckpt), sha, mode)
    if done and not force:
        return None, done
    if device != "cpu":
        # The same rule as training: a GPU asked for is used or refused (DeviceError, exit 2), never swapped;
        # auto takes a GPU only where paddle can use it.
        report = devices.detect(cpu_interval=None)
        if device == "gpu":
            devices.parse_devices("gpu:0", report)
        else:
            device = "gpu" if report.gpus and devices.gpu_problem(report) is None else "cpu"
    cfg = RunConfig.from_dict(run["config"]) if run else RunConfig()
    tokenizer_dir = None
    if not (ckpt / "vocab.json").exists() and run is not None:
        # PaddleNLP's own checkpoints may lack tokenizer files: take them from the run's model.
        from core import models
        tokenizer_dir = str(models.resolve_model(cfg.model_name_or_path))
    run_id = new_run_id()
    run_dir = make_run_dir(runs_root, run_id)
    argv = [sys.executable, str(EVAL_SCRIPT), "--run_dir", str(run_dir), "--checkpoint", str(ckpt),
            "--eval_path", str(path), "--mode", mode, "--device", device, "--batch_size", str(batch_size),
            "--max_seq_length", str(cfg.max_seq_length)]
    if tokenizer_dir:
        argv += ["--tokenizer", tokenizer_dir]
    eval_cfg = cfg.replace(run_name=f"eval {mode} {ckpt.name}", devices="cpu:1" if device == "cpu" else "gpu:0")
    prep = Prepared(run_id=run_id, run_dir=run_dir, cfg=eval_cfg, argv=argv, env=launch_env(device),
                    model_dir=str(ckpt), data_dir=str(path.parent), output_dir=str(run_dir),
                    devices=f"{device}:0", nprocs=1, parent_run=run["id"] if run else None,
                    extra={"checkpoint": str(ckpt), "eval_path": str(path), "eval_sha": sha, "mode": mode,
                           "total_steps": None, "samples_per_epoch": len(rows)})
    return prep, done
