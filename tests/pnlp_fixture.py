"""One real PaddleNLP Trainer run per test session, shared by the import and log-parser tests.

Each test module that needs it defines a fixture calling ``trainer_run(tmp_path_factory)``; the run is
made once (memoised here) in a subprocess (tests/paddlenlp_run.py) so paddle stays out of the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class TrainerRun:
    output_dir: Path  # trainer_state.json, checkpoint-2/, checkpoint-4/, all_results.json, ...
    vdl_dir: Path  # VisualDL logs written by PaddleNLP's VisualDLCallback
    log: str  # the Trainer's real stdout + stderr


_made: dict[str, TrainerRun] = {}


def trainer_run(tmp_path_factory) -> TrainerRun:  # type: ignore[no-untyped-def]
    if "run" not in _made:
        out = tmp_path_factory.mktemp("pnlp") / "out"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        p = subprocess.run([sys.executable, str(HERE / "paddlenlp_run.py"), str(out)], capture_output=True,
                           text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        _made["run"] = TrainerRun(output_dir=out, vdl_dir=out / "vdl", log=p.stdout + p.stderr)
    return _made["run"]
