"""``gpt2-tui eval``: score a checkpoint on an SST-2 split, as a job like training; the result goes to runs.db."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli_common import UserError, add_db_flag, fmt_time, need_run, open_store
from core.models import WEIGHT_FILES
from core.records import RunRow


def add_eval_parser(sub: Any) -> argparse.ArgumentParser:
    ev = sub.add_parser(
        "eval", help="evaluate a checkpoint on an SST-2 split and store the accuracy",
        description="Evaluate a run's checkpoint, or one gpt2-tui did not make (--init_checkpoint_path: a "
                    "PaddleNLP checkpoint-N folder, or a bare model_state.pdparams with --model_name for its "
                    "config and tokenizer; it is recorded as an imported run). classify: the fine-tuned "
                    "classification head; cloze (--cloze_eval): the language-model head scores the label words "
                    "' terrible' (0) / ' great' (1) after the prompt '<sentence> It was', so a base model can be "
                    "scored too. The reference's run_eval_sst2.py flags are taken as written.")
    add_db_flag(ev)
    ev.add_argument("run", nargs="?", default=None,
                    help="run id, id prefix, name or 'last'; or a checkpoint folder / .pdparams file")
    ev.add_argument("--checkpoint", default="latest", help="STEP, latest, best or a folder (default: latest)")
    ev.add_argument("--init_checkpoint_path", metavar="FILE.pdparams|DIR",
                    help="a checkpoint gpt2-tui did not make (run_eval.py's flag); instead of RUN")
    ev.add_argument("--model_name", metavar="NAME|DIR",
                    help="the model the checkpoint was fine-tuned from: its config and tokenizer are used where the "
                         "checkpoint has none (run_eval.py's flag)")
    ev.add_argument("--eval_path", help="labelled TSV to evaluate on (default: the run's dev.tsv)")
    ev.add_argument("--mode", choices=["classify", "cloze"], default="classify")
    ev.add_argument("--cloze_eval", action="store_true", help="= --mode cloze (run_eval.py's flag)")
    ev.add_argument("--max_seq_length", "--seq_len", type=int, default=None, metavar="N",
                    help="longest input in tokens for an imported checkpoint (default 128; a run's checkpoints use "
                         "the run's own); --seq_len is run_eval.py's spelling")
    ev.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ev.add_argument("--batch_size", type=int, default=64)
    ev.add_argument("--force", action="store_true", help="evaluate again even if this exact eval is stored")
    ev.add_argument("--detach", action="store_true", help="start it and return; prints the eval job id")
    ev.add_argument("--json", action="store_true")
    return ev


def _is_checkpoint(ref: str) -> bool:
    p = Path(ref).expanduser()
    # A folder with weights (its config may come from --model_name), or a bare .pdparams file.
    return (p.is_dir() and any((p / f).is_file() for f in WEIGHT_FILES)) or (p.is_file() and p.suffix == ".pdparams")


def target(store: Any, args: argparse.Namespace) -> tuple[RunRow, str]:
    """(the run, the checkpoint spec): a stored run's, or an imported checkpoint's (recorded as a run)."""
    from core import launch
    from core.checkpoint_import import import_checkpoint

    source = args.init_checkpoint_path
    if args.run and source:
        raise UserError("give a run or --init_checkpoint_path, not both")
    if args.run and _is_checkpoint(args.run):
        source = args.run
    if not source:
        if not args.run:
            raise UserError("what to evaluate: a run (`gpt2-tui runs` lists them) or --init_checkpoint_path "
                            "FILE.pdparams|DIR")
        for flag, value in (("--model_name", args.model_name), ("--max_seq_length", args.max_seq_length)):
            if value is not None:
                raise UserError(f"{flag} goes with --init_checkpoint_path; a run's checkpoints use the run's own")
        return need_run(store, args.run), args.checkpoint
    if args.eval_path:
        from core import data

        data.read_split(args.eval_path, labelled=True)  # a bad file is named before anything is recorded
    run, folder = import_checkpoint(store, launch.runs_root_for(store.path), source, args.model_name,
                                    max_seq_length=args.max_seq_length or 128)
    print(f"checkpoint {source}: imported as run {run['id']} ({folder})", file=sys.stderr)
    return run, str(folder)


def cmd_eval(args: argparse.Namespace) -> int:
    from core import launch
    from core.cli_train import follow_run
    from core.evaljob import prepare_eval
    from core.reconcile import reconcile

    store = open_store(args)
    mode = "cloze" if args.cloze_eval else args.mode
    run, checkpoint = target(store, args)
    prep, done = prepare_eval(store, run, launch.runs_root_for(store.path), checkpoint=checkpoint,
                              eval_path=args.eval_path, mode=mode, device=args.device,
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
