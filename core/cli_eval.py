"""``gpt2-tui eval``: score a checkpoint on an SST-2 split, as a job like training; the result goes to runs.db."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli_common import add_db_flag, fmt_time, need_run, open_store


def add_eval_parser(sub: Any) -> argparse.ArgumentParser:
    ev = sub.add_parser(
        "eval", help="evaluate a checkpoint on an SST-2 split and store the accuracy",
        description="Evaluate a run's checkpoint (or any checkpoint folder, PaddleNLP run_glue's included). "
                    "classify: the fine-tuned classification head; cloze: the language-model head scores "
                    "the label words ' terrible' (0) / ' great' (1) after the prompt '<sentence> It was', so "
                    "a base model can be scored too.")
    add_db_flag(ev)
    ev.add_argument("run", help="run id, id prefix, name or 'last'; or a checkpoint folder")
    ev.add_argument("--checkpoint", default="latest", help="STEP, latest, best or a folder (default: latest)")
    ev.add_argument("--eval_path", help="labelled TSV to evaluate on (default: the run's dev.tsv)")
    ev.add_argument("--mode", choices=["classify", "cloze"], default="classify")
    ev.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ev.add_argument("--batch_size", type=int, default=64)
    ev.add_argument("--force", action="store_true", help="evaluate again even if this exact eval is stored")
    ev.add_argument("--detach", action="store_true", help="start it and return; prints the eval job id")
    ev.add_argument("--json", action="store_true")
    return ev


def cmd_eval(args: argparse.Namespace) -> int:
    from core import launch
    from core.cli_train import follow_run
    from core.evaljob import prepare_eval
    from core.reconcile import reconcile

    store = open_store(args)
    run = None
    checkpoint = args.checkpoint
    if Path(args.run).is_dir() and (Path(args.run) / "model_state.pdparams").exists():
        checkpoint = args.run
    else:
        run = need_run(store, args.run)
    prep, done = prepare_eval(store, run, launch.runs_root_for(store.path), checkpoint=checkpoint,
                              eval_path=args.eval_path, mode=args.mode, device=args.device,
                              batch_size=args.batch_size, force=args.force)
    if prep is None:
        assert done is not None
        print(f"already evaluated {fmt_time(done['t'])}: accuracy {done['accuracy']:.4f} (n={done['n']}, "
              f"{done['mode']}) on {done['eval_path']}; --force evaluates again", file=sys.stderr)
        if args.json:
            print(json.dumps({**done, "repeat": True}, default=str))
        return 0
    job = launch.spawn(store, prep, kind="eval")
    print(f"eval {job['id']}: {prep.extra['mode']} on {prep.extra['eval_path']} ({prep.extra['samples_per_epoch']}"
          f" rows), checkpoint {prep.extra['checkpoint']}", file=sys.stderr)
    if args.detach:
        print(job["id"])
        return 0
    status = follow_run(store, job["id"])
    job = reconcile(store, job["id"])
    if job["status"] != "finished":
        return 1 if status != "detached" else 0
    res = store.find_eval(prep.extra["checkpoint"], prep.extra["eval_sha"], prep.extra["mode"])
    if res is None:
        print("the evaluation ended without a result", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**res, "repeat": False}, default=str))
    else:
        print(f"accuracy {res['accuracy']:.4f}  n={res['n']}  mode={res['mode']}  checkpoint={res['checkpoint']}")
        conf = res["details"].get("confusion")
        if conf:
            print(f"confusion (rows = true 0/1): {conf}")
        for k in ("precision", "recall", "f1"):
            if k in res["details"]:
                print(f"{k:<9} {res['details'][k]}")
    return 0
