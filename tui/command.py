"""The exact launch command for a config, before the run exists (the configure screen's preview).

Pure, no Textual. core.launch.preview_argv builds it with the same core.launch.run_command that
prepare_run starts, so the preview is the command that runs, with RUN_ID for the run folder's name.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from core.config import RunConfig
from core.devices import DeviceReport
from core.launch import RUN_ID_PLACEHOLDER, worker_commands
from core.launch import preview_argv as _preview_argv
from tui.preflight import select_devices

__all__ = ["RUN_ID_PLACEHOLDER", "preview_argv", "preview_text"]

PYTHON = sys.executable  # what core.launch runs the launcher with (a module attribute: tests pin it)


def preview_argv(cfg: RunConfig, runs_root: Path, report: DeviceReport) -> list[str]:
    """The launcher's argv; raises DeviceError when the devices cannot be satisfied."""
    return _preview_argv(cfg, runs_root, select_devices(cfg, report), python=PYTHON)


def preview_text(cfg: RunConfig, runs_root: Path, report: DeviceReport) -> str:
    """The command; for the master of a multi-node job, also what to start on every other node."""
    text = shlex.join(preview_argv(cfg, runs_root, report))
    if cfg.nnodes > 1 and cfg.node_rank == 0:
        text += "\n\n# then on each other node:"
        for argv in worker_commands(cfg):
            text += "\n" + shlex.join(argv)
    return text
