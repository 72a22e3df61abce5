"""``gpt2-tui train``: run_glue.py's flags (and TrainingArguments', and the old spellings), then follow the run."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Mapping
from typing import Any

from core.cli_common import UserError, add_db_flag, need_run, open_store
from core.command_line import FLAG_ALIASES
from core.config import RunConfig
from core.config_toml import load_toml
from core.export import run_record, to_json
from core.presets import PRESETS
from core.store import Store


def add_train_parser(sub: Any) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="fine-tune (flags named as in PaddleNLP's run_glue.py)",
                       description="Fine-tune GPT-2 for SST-2. Flags are run_glue.py's and PaddleNLP "
                                   "TrainingArguments' (docs/FLAGS.md lists each and what it does); unset ones "
                                   "come from --from_command, then --config, then the preset (auto: reference "
                                   "recipe on a GPU, the offline gpt2-tiny run on CPU). Booleans take "
                                   "true/false/1/0 (a bare --do_train means true).")
    add_db_flag(t)
    t.add_argument("--config", metavar="FILE.toml", help="read run settings from a TOML file")
    t.add_argument("--from_command", metavar="'COMMAND'",
                   help="a whole run_glue.py command line (with or without `python -m paddle.distributed.launch "
                        "--gpus ...` and VAR=value in front): its flags fill the run; flags given here win")
    t.add_argument("--preset", choices=["auto", *PRESETS], default="auto",
                   help="base settings: reference (GPT-2 Medium recipe), offline (gpt2-tiny, bundled sample)")
    t.add_argument("--detach", action="store_true", help="start the run and return; prints the run id last")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint as a new run")
    # Untyped: config_from_args coerces with RunConfig.from_dict, which names every bad value at once.
    RunConfig.add_arguments(t, grouped=True, typed=False)
    old = t.add_argument_group("older run_glue.py spellings")
    for alias, target in FLAG_ALIASES.items():
        old.add_argument(f"--{alias}", dest=f"alias_{alias}", default=None, metavar=target.upper(),
                         help=f"= --{target}")
    t.add_argument("--join", metavar="HOST:PORT", help="join a multi-node job as a worker (sets --master)")
    t.add_argument("--json", action="store_true", help="print the final run record as JSON")
    return t


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig values given as flags on our own command line (an old spelling counts as its field)."""
    out: dict[str, Any] = {}
    for alias, target in FLAG_ALIASES.items():
        v = getattr(args, f"alias_{alias}", None)
        if v is not None:
            out[target] = v
    for name in RunConfig.field_names():
        v = getattr(args, name, None)
        if v is not None:
            out[name] = v
    return out


def pasted_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values of --from_command; what could not be mapped is printed (and the run goes on)."""
    text = getattr(args, "from_command", None)
    if not text:
        return {}
    from core.command_line import describe_unmapped, parse_command

    try:
        parsed = parse_command(text)
    except ValueError as e:
        raise UserError(f"--from_command: {e}") from None
    if note := describe_unmapped(parsed):
        print(f"--from_command: {note}", file=sys.stderr)
    return parsed.values


def config_from_args(args: argparse.Namespace, report: Any = None) -> RunConfig:
    """Preset, then the TOML file, then the pasted command, then flags: each later source overrides."""
    preset = args.preset
    if preset == "auto":
        from core import devices
        report = report if report is not None else devices.detect(cpu_interval=None)
        preset = "reference" if report.gpus else "offline"
    merged: dict[str, Any] = PRESETS[preset]().to_dict()
    if args.config:
        values = load_toml(args.config)
        RunConfig.from_dict(values, source=args.config)  # names the unknown keys and bad types
        merged.update(values)
    pasted = pasted_values(args)
    if pasted:
        RunConfig.from_dict(pasted, source="--from_command")
        merged.update(pasted)
    merged.update(flag_values(args))
    if getattr(args, "join", None):
        merged["master"] = args.join
        if int(merged.get("nnodes", 1) or 1) < 2:
            merged["nnodes"] = 2
    cfg = RunConfig.from_dict(merged, source=args.config or "flags")
    return cfg.check()


def warn_eval_cost(cfg: RunConfig, data_dir: str, world: int) -> None:
    from core import eval_cost

    try:
        train_rows, dev_rows = eval_cost.rows_of(data_dir)
    except OSError:
        return  # validated already; a file that vanished since fails in the trainer with its own message
    if text := eval_cost.warning(eval_cost.estimate(cfg, train_rows, dev_rows, world)):
        print(f"warning: {text}", file=sys.stderr)


# ---------------------------------------------------------------------------- the command
def cmd_train(args: argparse.Namespace) -> int:
    from core import launch
    from core.reconcile import reconcile

    store = open_store(args)
    parent = None
    resume_from = None
    if args.resume:
        if args.from_command or args.config:
            raise UserError("--resume continues a run with its own settings; --from_command and --config do not "
                            "apply (flags given with --resume do)")
        parent, cfg, resume_from = launch.resume_point(store, need_run(store, args.resume))
        cfg = RunConfig.from_dict({**cfg.to_dict(), **flag_values(args)}).check()
    else:
        cfg = config_from_args(args)
    printer_stream = sys.stderr

    def on_progress(done: int, total: int | None) -> None:
        if printer_stream.isatty():
            pct = f"{100 * done / total:.0f}%" if total else f"{done / 1e6:.1f} MB"
            printer_stream.write(f"\rdownloading {pct}")
            printer_stream.flush()

    root = launch.runs_root_for(store.path)
    prep = launch.prepare_run(cfg, root, resume_from=resume_from, parent_run=parent["id"] if parent else None,
                              progress=on_progress)
    warn_eval_cost(cfg, prep.data_dir, prep.nprocs * cfg.nnodes)
    run = launch.spawn(store, prep)
    print(f"run {run['id']}: {cfg.model_name_or_path} on {prep.devices}, data {prep.data_dir}", file=sys.stderr)
    print(f"  folder {prep.run_dir}", file=sys.stderr)
    if cfg.nnodes > 1:
        print(f"  node address {prep.env.get('POD_IP')} (gloo on {prep.env.get('GLOO_SOCKET_IFNAME') or 'its default'});"
              " set POD_IP / GLOO_SOCKET_IFNAME to choose another", file=sys.stderr)
    if cfg.nnodes > 1 and cfg.node_rank == 0:
        print(f"multi-node job: start this on each other node (node_rank 1..{cfg.nnodes - 1}):", file=sys.stderr)
        for argv in launch.worker_commands(cfg):
            print("  " + shlex.join(argv), file=sys.stderr)
    if args.detach:
        print(f"detached; follow with `gpt2-tui show {run['id']}` or stop with `gpt2-tui stop {run['id']}`",
              file=sys.stderr)
        print(run["id"])
        return 0
    status = follow_run(store, run["id"])
    run = reconcile(store, run["id"])
    if args.json:
        print(to_json(run_record(store, run)))
    return 0 if status in ("finished", "stopped", "detached") else 1


def _ask_stop_or_detach() -> str:
    if not sys.stdin.isatty():
        return "stop"
    while True:
        try:
            ans = input("\n[s]top the run (saves a checkpoint), [d]etach (it keeps running), [c]ontinue? ")
        except (EOFError, KeyboardInterrupt):
            return "stop"
        a = ans.strip().lower()[:1]
        if a in ("s", "d", "c"):
            return {"s": "stop", "d": "detach", "c": "continue"}[a]


def follow_run(store: Store, run_id: str, poll_s: float = 0.5) -> str:
    """Follow a run to its end: ingest into the store, show progress. Returns the final status."""
    from core.events import as_float
    from core.launch import stop_run
    from core.progress import ProgressPrinter, RunProgress
    from core.reconcile import reconcile
    from core.watch import Watcher

    watcher = Watcher(store, run_id)
    run = watcher.run()
    prog = RunProgress()
    out = ProgressPrinter()
    ended_at: float | None = None
    while True:
        try:
            batch = watcher.poll()
            for ev in batch.events:
                prog.update(ev)
                if ev["type"] == "eval":
                    acc = as_float(ev.get("accuracy"))
                    out.message(f"eval at step {ev.get('step')}: accuracy "
                                f"{acc if acc is None else format(acc, '.4f')} (n={ev.get('n')})")
                elif ev["type"] == "checkpoint":
                    out.message(f"checkpoint at step {ev['step']}: {ev['path']}")
                elif ev["type"] == "log" and ev.get("level") in ("warning", "error"):
                    out.message(f"{ev.get('level')}: {ev.get('text')}")
            out.show(prog.line())
            if batch.behind:
                continue
            if prog.end is not None and ended_at is None:
                ended_at = time.monotonic()
            # After the end event, give the launcher a moment to exit so its status is recorded too.
            if watcher.exited(batch.run) or (ended_at is not None and time.monotonic() - ended_at > 15):
                run = reconcile(store, run_id)
                if run["status"] != "running":
                    out.show(prog.line(), force=True)
                    out.done()
                    _report_end(run)
                    return str(run["status"])
            time.sleep(poll_s)
        except KeyboardInterrupt:
            out.done()
            choice = _ask_stop_or_detach()
            if choice == "detach":
                print(f"detached; the run goes on. `gpt2-tui show {run_id}` or `gpt2-tui stop {run_id}`",
                      file=sys.stderr)
                return "detached"
            if choice == "stop":
                print("stopping: the trainer saves a checkpoint at its next step...", file=sys.stderr)
                status = stop_run(store, store.get_run(run_id) or run)
                run = store.get_run(run_id) or run
                _report_end(run)
                return status


def _report_end(run: Mapping[str, Any]) -> None:
    msg = f"run {run['id']} {run['status']}"
    if run.get("exit_code") not in (None, 0):
        msg += f" (exit code {run['exit_code']})"
    print(msg, file=sys.stderr)
    if run["status"] in ("failed", "lost") and run.get("error"):
        print(run["error"], file=sys.stderr)
