"""A run as VisualDL logs: ``gpt2-tui export RUN --format visualdl -o DIR``.

Scalars on the step axis with each event's own wall time, under the tag names PaddleNLP's
VisualDLCallback uses (``train/loss``, ``train/learning_rate``, ``train/interval_samples_per_second``,
``eval/accuracy``, ...), so a gpt2-tui run and a PaddleNLP Trainer run overlay in one VisualDL board, and
``gpt2-tui import`` reads the export back. visualdl imports without paddle (checked: ~0.6 s of CPU, no
paddle module loaded); it is imported only here, when an export runs.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from core.export import ExportError
from core.store import Store

# store column -> VisualDL tag (PaddleNLP's rewrite_logs names: train/<log key>, eval/<metric>)
STEP_TAGS = {"loss": "train/loss", "lr": "train/learning_rate", "samples_per_s": "train/interval_samples_per_second",
             "tokens_per_s": "train/tokens_per_s", "epoch": "train/progress_or_epoch"}
EVAL_TAGS = {"accuracy": "eval/accuracy", "loss": "eval/loss"}


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def write_visualdl(store: Store, run: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write the run's scalars as one ``vdlrecords.*.log`` in ``out_dir`` (created); returns the file.

    The file is written in a temporary folder beside it and moved in whole: VisualDL watching ``out_dir``
    never reads a half-written log, and a failed export leaves nothing behind.
    """
    from visualdl import LogWriter

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; --format visualdl writes into a folder (-o DIR)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"{out}: cannot create it ({err.strerror or err})") from None
    tmp = Path(tempfile.mkdtemp(prefix=".vdl-export.", dir=out))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            writer = LogWriter(logdir=str(tmp), display_name=str(run.get("name") or run["id"]))
            try:
                for m in store.metrics(run["id"]):
                    wall = round((m["t"] or 0) * 1000) or None
                    for col, tag in STEP_TAGS.items():
                        if _ok(v := m.get(col)):
                            writer.add_scalar(tag=tag, value=float(cast(float, v)), step=int(m["step"]), walltime=wall)
                for e in store.evals(run["id"]):
                    if e["step"] is None:
                        continue
                    wall = round((e["t"] or 0) * 1000) or None
                    for col, tag in EVAL_TAGS.items():
                        if _ok(v := e.get(col)):
                            writer.add_scalar(tag=tag, value=float(cast(float, v)), step=int(e["step"]), walltime=wall)
            finally:
                writer.close()
        files = list(tmp.glob("vdlrecords.*.log"))
        if len(files) != 1:
            raise ExportError(f"VisualDL wrote {len(files)} files in {tmp}, expected one")
        dest = out / files[0].name
        os.replace(files[0], dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest.resolve()
