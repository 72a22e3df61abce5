"""The subcommands that bring other tools' runs in and ours out: ``import`` and ``export --format visualdl``.

Kept out of core/cli.py, which only registers them (``add_parsers``) and dispatches. Nothing heavy is
imported until a command runs: ``gpt2-tui --help`` stays cheap and never loads visualdl or paddle.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parsers(sub: Any) -> None:
    im = sub.add_parser(
        "import", help="a PaddleNLP output folder, VisualDL logs or a saved training log, as a finished run",
        description="Import another tool's run as a finished run with its steps, evals and checkpoints: a "
                    "PaddleNLP Trainer output folder (trainer_state.json, checkpoint-N/, *_results.json), a "
                    "VisualDL log folder (vdlrecords.*.log) or a saved log of a PaddleNLP Trainer or run_glue "
                    "run. Importing the same source again finds the run already imported.")
    im.add_argument("path", help="folder or file to import")
    im.add_argument("--run_name", help="name for the run (default: the source's folder or file name)")
    im.add_argument("--model_name_or_path", help="the model the run fine-tuned, when the source does not say")
    im.add_argument("--data_dir", help="the SST-2 folder it trained on (what `eval` evaluates on by default)")
    im.add_argument("--json", action="store_true", help="print the run record as JSON")


def cmd_import(args: argparse.Namespace) -> int:
    from core.cli import UserError, open_store
    from core.export import run_record, to_json
    from core.imports import SourceError, import_run
    from core.launch import runs_root_for

    store = open_store(args)
    overrides = {k: getattr(args, k) for k in ("model_name_or_path", "data_dir") if getattr(args, k, None)}
    try:
        run, created = import_run(store, args.path, runs_root_for(store.path), name=args.run_name,
                                  overrides=overrides)
    except SourceError as e:
        raise UserError(str(e)) from None
    if not created:
        print(f"already imported as {run['id']} ({run['name']}); `gpt2-tui show {run['id']}`", file=sys.stderr)
    else:
        s = store.summary(run["id"])
        print(f"imported {args.path} as {run['id']} ({run['name']}): {run['status']}, {s['metric_rows']} steps, "
              f"{len(store.evals(run['id']))} evals, {len(store.checkpoints(run['id']))} checkpoints",
              file=sys.stderr)
    if args.json:
        print(to_json({**run_record(store, run), "created": created}))
    else:
        print(run["id"])
    return 0


def cmd_export_visualdl(args: argparse.Namespace) -> int:
    from core.cli import UserError, need_run, open_store
    from core.export_visualdl import write_visualdl

    if not args.output:
        raise UserError("--format visualdl writes a folder of VisualDL logs: give it with -o DIR")
    store = open_store(args)
    run = need_run(store, args.run)
    path = write_visualdl(store, run, args.output)
    print(f"wrote {path}; view with `visualdl --logdir {path.parent}`", file=sys.stderr)
    print(json.dumps({"run": run["id"], "file": str(path)}) if getattr(args, "json", False) else str(path))
    return 0
