"""The training worker the launcher runs: fine-tunes a GPT-2 for SST-2 and reports through RUN/events.jsonl.

Launched by core.launch as ``python -m paddle.distributed.launch ... core/train.py --run_dir RUN
--model_dir DIR --<RunConfig field> VALUE ... [--resume_from CHECKPOINT]``; also runs as a single
process (``python core/train.py ...`` or ``python -m core.train ...``). The code is the package
``core.trainer``; ``Trainer``, ``parse_args`` and ``encode_split`` stay importable from here for the
bench scripts. ``Trainer`` is imported on first use: as the launcher's script, main() imports paddle and
PaddleNLP itself, timing each (core.trainer.phases) and without paddlenlp's eager imports
(core.paddlenlp_lean).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (the launcher does): make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any  # noqa: E402

from core.trainer.encoding import encode_split  # noqa: E402
from core.trainer.main import main, parse_args  # noqa: E402

__all__ = ["Trainer", "encode_split", "main", "parse_args"]  # noqa: F822 (Trainer: __getattr__)


def __getattr__(name: str) -> Any:
    if name == "Trainer":
        from core.trainer.loop import Trainer

        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

if __name__ == "__main__":
    sys.exit(main())
