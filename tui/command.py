"""The exact launch command for a config, before the run exists (the configure screen's preview).

Pure, no Textual. The real command is built by core.launch.prepare_run once the model and data are
resolved; this one uses the same core.launch.launch_argv with where they will be, and RUN_ID for the
run folder's name that launch picks.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from core import data, models
from core.config import RunConfig
from core.devices import DeviceReport
from core.launch import launch_argv, worker_commands
from tui.preflight import select_devices

RUN_ID_PLACEHOLDER = "RUN_ID"
PYTHON = sys.executable  # what core.launch runs the launcher with (a module attribute: tests pin it)


def model_dir_for(name: str) -> str:
    name = name.strip()
    if name == models.TINY:
        return str(models.ASSETS / models.TINY)
    if name in models.known_models():
        return str(models.cache_dir(name))
    return str(Path(name).expanduser().resolve())


def data_dir_for(value: str) -> str:
    if value == "glue":
        return str(data.glue_cache_dir() / "SST-2")
    return str(data.resolve_data_dir(value).resolve())


def preview_argv(cfg: RunConfig, runs_root: Path, report: DeviceReport) -> list[str]:
    """The launcher's argv; raises DeviceError when the devices cannot be satisfied."""
    sel = select_devices(cfg, report)
    run_dir = runs_root.resolve() / RUN_ID_PLACEHOLDER
    output_dir = cfg.output_dir or str(run_dir / "checkpoints")
    return launch_argv(cfg, run_dir, model_dir_for(cfg.model_name_or_path), data_dir_for(cfg.data_dir),
                       output_dir, sel.kind, sel.ids, sel.nprocs, python=PYTHON)


def preview_text(cfg: RunConfig, runs_root: Path, report: DeviceReport) -> str:
    """The command; for the master of a multi-node job, also what to start on every other node."""
    text = shlex.join(preview_argv(cfg, runs_root, report))
    if cfg.nnodes > 1 and cfg.node_rank == 0:
        text += "\n\n# then on each other node:"
        for argv in worker_commands(cfg):
            text += "\n" + shlex.join(argv)
    return text
