"""The trainer's command line: ``--run_dir RUN --model_dir DIR [--resume_from CKPT]`` plus one
``--<RunConfig field> VALUE`` per field (as core.launch writes them)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from core.config import RunConfig, parse_bool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="core/train.py", description="Fine-tune GPT-2 on SST-2 (gpt2-tui worker).")
    p.add_argument("--run_dir", required=True, help="Run folder: events.jsonl, stop, checkpoints/.")
    p.add_argument("--model_dir", required=True, help="Local PaddleNLP model folder (already resolved).")
    p.add_argument("--resume_from", default=None, help="A checkpoint-N folder to continue from.")
    for f in dataclasses.fields(RunConfig):
        typ = f.type if isinstance(f.type, str) else f.type.__name__
        convs: dict[str, Callable[[str], Any]] = {"bool": parse_bool, "int": int, "float": float}
        conv = convs.get(typ, str)
        p.add_argument(f"--{f.name}", type=conv, default=f.default, help=f.metadata.get("help", ""))
    return p


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, RunConfig]:
    """The one place the trainer decodes its argv (the RunConfig <-> argv codec can replace it)."""
    ns = build_parser().parse_args(argv)
    cfg = RunConfig(**{name: getattr(ns, name) for name in RunConfig.field_names()})
    return ns, cfg


def main(argv: list[str] | None = None) -> int:
    from core.trainer.loop import Trainer  # paddle loads here, after the arguments are known to be good

    ns, cfg = parse_args(argv)
    return Trainer(ns, cfg).run()
