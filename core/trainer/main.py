"""The trainer's command line: ``--run_dir RUN --model_dir DIR [--resume_from CKPT]`` plus one
``--<RunConfig field> VALUE`` per field (as core.launch writes them)."""

from __future__ import annotations

import argparse

from core.config import RunConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="core/train.py", description="Fine-tune GPT-2 on SST-2 (gpt2-tui worker).")
    p.add_argument("--run_dir", required=True, help="Run folder: events.jsonl, stop, checkpoints/.")
    p.add_argument("--model_dir", required=True, help="Local PaddleNLP model folder (already resolved).")
    p.add_argument("--resume_from", default=None, help="A checkpoint-N folder to continue from.")
    # The other half of the codec: core.launch writes these flags with RunConfig.to_argv.
    RunConfig.add_arguments(p)
    return p


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, RunConfig]:
    """The one place the trainer decodes its argv."""
    ns = build_parser().parse_args(argv)
    return ns, RunConfig.from_namespace(ns)


def main(argv: list[str] | None = None) -> int:
    from core.trainer.phases import Phases

    phases = Phases()
    phases.mark("python")
    ns, cfg = parse_args(argv)
    # paddle loads here, after the arguments are known to be good
    import paddle  # noqa: F401

    phases.mark("paddle")
    # PaddleNLP without its package's eager imports (taskflow, datasets, metrics: ~2 s a rank, unused)
    from core import paddlenlp_lean

    paddlenlp_lean.load()
    phases.mark("paddlenlp")
    from core.trainer.loop import Trainer

    return Trainer(ns, cfg, phases).run()
