"""Other tools' runs in, ours out: ``import``, ``watch`` and ``export --format visualdl``.

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

    w = sub.add_parser(
        "watch", help="run any training command as a recorded run: gpt2-tui watch -- python run_glue.py ...",
        description="Run a training command (a PaddleNLP script, a paddle.distributed.launch line) under "
                    "gpt2-tui's supervisor, in its own process group and run folder, recorded as a run. A "
                    "script that uses PaddleNLP's Trainer reports through an injected callback (and stops "
                    "with a checkpoint on `gpt2-tui stop`); any other is read from its log lines.")
    w.add_argument("--run_name", help="name for the run (default: the command)")
    w.add_argument("--detach", action="store_true", help="start it and return; prints the run id last")
    # dest "argv": "command" is the subcommand's own dest.
    w.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command and its arguments")


def cmd_import(args: argparse.Namespace) -> int:
    from core.cli_common import UserError, open_store
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


def cmd_watch(args: argparse.Namespace) -> int:
    import os
    import shlex

    from core import launch
    from core.cli_common import UserError, open_store
    from core.cli_train import follow_run
    from core.config import RunConfig

    cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not cmd:
        raise UserError("watch needs the command to run after --, e.g. gpt2-tui watch -- python run_glue.py ...")
    store = open_store(args)
    root = launch.runs_root_for(store.path)
    run_id = launch.new_run_id()
    run_dir = launch.make_run_dir(root, run_id)
    name = args.run_name or shlex.join(cmd)[:80]
    argv = [sys.executable, "-m", "core.watch_script", str(run_dir), "--cwd", os.getcwd(), "--", *cmd]
    # Not "cpu": the user's environment goes to the command as it is (CUDA_VISIBLE_DEVICES included).
    prep = launch.Prepared(run_id=run_id, run_dir=run_dir, cfg=RunConfig(run_name=name), argv=argv,
                           env=launch.launch_env("watch"), model_dir="", data_dir="", output_dir=os.getcwd(),
                           devices="", nprocs=1)
    # The row says what is known: the command, not a RunConfig's defaults for a model it may not use.
    run = launch.spawn(store, prep, extra={"config": {"run_name": name}, "model": None, "devices": None,
                                           "world_size": None, "command": cmd})
    print(f"run {run['id']}: {shlex.join(cmd)}\n  folder {run_dir} (output in launcher.log)", file=sys.stderr)
    if args.detach:
        print(run["id"])
        return 0
    status = follow_run(store, run["id"])
    return 0 if status in ("finished", "stopped", "detached") else 1


def cmd_export_visualdl(args: argparse.Namespace) -> int:
    from core.cli_common import UserError, need_run, open_store
    from core.export_visualdl import write_visualdl

    if not args.output:
        raise UserError("--format visualdl writes a folder of VisualDL logs: give it with -o DIR")
    store = open_store(args)
    run = need_run(store, args.run)
    path = write_visualdl(store, run, args.output)
    print(f"wrote {path}; view with `visualdl --logdir {path.parent}`", file=sys.stderr)
    print(json.dumps({"run": run["id"], "file": str(path)}) if getattr(args, "json", False) else str(path))
    return 0
