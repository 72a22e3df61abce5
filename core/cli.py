"""``gpt2-tui``: the dashboard with no arguments, headless subcommands otherwise.

Importing this module must stay cheap (``gpt2-tui --help`` ≤ 0.3 s): no paddle, no Textual at import;
subcommands import what they need when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.config import PRESETS, ConfigError, RunConfig, load_toml
from core.export import ExportError, run_record, run_text, runs_table, to_json, write_text
from core.records import RunRow
from core.store import DB_ENV, Store, StoreError, default_db_path

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake of the user's: printed as one paragraph, exit code 2, no traceback."""


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpt2-tui",
        description="Fine-tune GPT-2 on GLUE SST-2 with PaddleNLP and watch it happen. "
                    "With no command, opens the dashboard.",
    )
    p.add_argument("--db", default=None, help=f"runs database (default ./runs.db, or ${DB_ENV})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="fine-tune (flags named as in PaddleNLP's run_glue.py)",
                       description="Fine-tune GPT-2 for SST-2. Flags are run_glue.py's; unset ones come from "
                                   "--config, then from the preset (auto: reference recipe on a GPU, "
                                   "the offline gpt2-tiny run on CPU).")
    t.add_argument("--config", metavar="FILE.toml", help="read run settings from a TOML file")
    t.add_argument("--preset", choices=["auto", *PRESETS], default="auto",
                   help="base settings: reference (GPT-2 Medium recipe), offline (gpt2-tiny, bundled sample)")
    t.add_argument("--detach", action="store_true", help="start the run and return; prints the run id last")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint as a new run")
    groups: dict[str, argparse._ArgumentGroup] = {}
    titles = {"model": "model & data", "optim": "optimisation", "schedule": "schedule & checkpoints",
              "devices": "devices"}
    import dataclasses
    for f in dataclasses.fields(RunConfig):
        g = f.metadata.get("group", "model")
        if g not in groups:
            groups[g] = t.add_argument_group(titles.get(g, g))
        default = f.default
        groups[g].add_argument(f"--{f.name}", default=None, metavar=f.name.upper() if f.type != "bool" else "BOOL",
                               help=f"{f.metadata.get('help', '')} (default: {default!r})")
    t.add_argument("--join", metavar="HOST:PORT", help="join a multi-node job as a worker (sets --master)")
    t.add_argument("--json", action="store_true", help="print the final run record as JSON")

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--json", action="store_true")
    r.add_argument("--status", choices=["running", "finished", "failed", "stopped", "lost"])

    s = sub.add_parser("show", help="one run: status, config, steps, evals, checkpoints")
    s.add_argument("run", help="run id, id prefix, name, or 'last'")
    s.add_argument("--json", action="store_true")

    st = sub.add_parser("stop", help="stop a run: graceful (save a checkpoint), then signals")
    st.add_argument("run")
    st.add_argument("--grace", type=float, default=60.0, help="seconds to wait for the graceful stop")
    st.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="a run's metrics, evals and checkpoints as CSV or JSON")
    e.add_argument("run")
    e.add_argument("--format", choices=["csv", "json"], default="json")
    e.add_argument("-o", "--output", help="file to write (default: standard output)")

    at = sub.add_parser("attach", help="open the dashboard on a run's live screen")
    at.add_argument("run", help="run id, id prefix, name or 'last'")

    ev = sub.add_parser(
        "eval", help="evaluate a checkpoint on an SST-2 split and store the accuracy",
        description="Evaluate a run's checkpoint (or any checkpoint folder, PaddleNLP run_glue's included). "
                    "classify: the fine-tuned classification head; cloze: the language-model head scores "
                    "the label words ' terrible' (0) / ' great' (1) after the prompt '<sentence> It was', so "
                    "a base model can be scored too.")
    ev.add_argument("run", help="run id, id prefix, name or 'last'; or a checkpoint folder")
    ev.add_argument("--checkpoint", default="latest", help="STEP, latest, best or a folder (default: latest)")
    ev.add_argument("--eval_path", help="labelled TSV to evaluate on (default: the run's dev.tsv)")
    ev.add_argument("--mode", choices=["classify", "cloze"], default="classify")
    ev.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ev.add_argument("--batch_size", type=int, default=64)
    ev.add_argument("--force", action="store_true", help="evaluate again even if this exact eval is stored")
    ev.add_argument("--detach", action="store_true", help="start it and return; prints the eval job id")
    ev.add_argument("--json", action="store_true")

    d = sub.add_parser("devices", help="list accelerators and CPU (without importing paddle)")
    d.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------- helpers
def open_store(args: argparse.Namespace) -> Store:
    path = Path(args.db) if args.db else default_db_path()
    return Store(path)


def need_run(store: Store, ref: str) -> RunRow:
    run = store.find_run(ref)
    if run is None:
        raise UserError(f"no run matches {ref!r}; `gpt2-tui runs` lists them")
    return run


def config_from_args(args: argparse.Namespace, report: Any = None) -> RunConfig:
    """Preset, then the TOML file, then flags: each later source overrides."""
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
    for name in RunConfig.field_names():
        v = getattr(args, name, None)
        if v is not None:
            merged[name] = v
    if getattr(args, "join", None):
        merged["master"] = args.join
        if int(merged.get("nnodes", 1) or 1) < 2:
            merged["nnodes"] = 2
    cfg = RunConfig.from_dict(merged, source=args.config or "flags")
    return cfg.check()


def fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


# ---------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from core import launch
    from core.reconcile import reconcile

    store = open_store(args)
    parent = None
    resume_from = None
    if args.resume:
        parent, cfg, resume_from = launch.resume_point(store, need_run(store, args.resume))
        overrides = {n: getattr(args, n) for n in RunConfig.field_names() if getattr(args, n, None) is not None}
        cfg = RunConfig.from_dict({**cfg.to_dict(), **overrides}).check()
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
    run = launch.spawn(store, prep)
    print(f"run {run['id']}: {cfg.model_name_or_path} on {prep.devices}, data {prep.data_dir}", file=sys.stderr)
    print(f"  folder {prep.run_dir}", file=sys.stderr)
    if cfg.nnodes > 1:
        print(f"  node address {prep.env.get('POD_IP')} (gloo on {prep.env.get('GLOO_SOCKET_IFNAME') or 'its default'});"
              " set POD_IP / GLOO_SOCKET_IFNAME to choose another", file=sys.stderr)
    if cfg.nnodes > 1 and cfg.node_rank == 0:
        import shlex
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
                    return run["status"]
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


def cmd_runs(args: argparse.Namespace) -> int:
    from core.reconcile import reconcile_all

    store = open_store(args)
    reconcile_all(store)
    rows = runs_table(store, status=args.status)
    if args.json:
        print(to_json(rows))
        return 0
    if not rows:
        print("no runs yet; start one with `gpt2-tui train`")
        return 0
    hdr = f"{'ID':<21} {'STATUS':<9} {'NAME':<22} {'MODEL':<15} {'STEPS':>11} {'LOSS':>7} {'ACC':>7} {'SAMPLES/S':>9}  STARTED"
    print(hdr)
    for r in rows:
        steps = f"{r['steps'] or 0}/{r['total_steps'] or '?'}"
        loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "-"
        acc = f"{r['best_accuracy']:.4f}" if r["best_accuracy"] is not None else "-"
        sps = f"{r['mean_samples_per_s']:.1f}" if r["mean_samples_per_s"] is not None else "-"
        print(f"{r['id']:<21} {r['status']:<9} {str(r['name'])[:22]:<22} {str(r['model'])[:15]:<15} "
              f"{steps:>11} {loss:>7} {acc:>7} {sps:>9}  {fmt_time(r['created_at'])}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.reconcile import reconcile

    store = open_store(args)
    run = reconcile(store, need_run(store, args.run)["id"])
    rec = run_record(store, run)
    if args.json:
        print(to_json(rec))
        return 0
    s = rec["summary"]
    print(f"run {rec['id']}  ({rec['name']})\nstatus     {rec['status']}"
          + (f"  exit code {rec['exit_code']}" if rec["exit_code"] is not None else ""))
    print(f"model      {rec['model']}\ndevices    {rec['devices']} (world size {rec['world_size']})")
    print(f"steps      {s['last_step'] or 0}/{rec['total_steps'] or '?'}  final loss "
          f"{s['final_loss'] if s['final_loss'] is not None else '-'}  mean samples/s "
          f"{s['mean_samples_per_s'] or 0:.1f}")
    print(f"started    {fmt_time(rec['started_at'] or rec['created_at'])}  ended {fmt_time(rec['ended_at'])}")
    print(f"folder     {rec['run_dir']}")
    for e in rec["evals"]:
        print(f"eval       step {e['step']}: accuracy {e['accuracy']:.4f} (n={e['n']}, {e['mode']}, {e['source']})")
    for c in rec["checkpoints"]:
        print(f"checkpoint step {c['step']}: {c['path']}")
    for h in rec["ranks"]:
        print(f"rank {h['rank']:<6} {h['host'] or '?'} {h['device'] or ''} step {h['step']}  step time "
              f"{(h['step_time'] or 0) * 1000:.0f} ms  mem {(h['mem_bytes'] or 0) / 2**20:.0f} MiB")
    sc = rec["scaling"]
    if sc and sc["efficiency"] is not None and (rec["world_size"] or 1) > 1:
        print(f"scaling    {sc['samples_per_s_per_rank']:.1f} samples/s per rank = {sc['efficiency']:.0%} of the "
              f"best 1-rank run ({sc['baseline_run']})")
    if rec["bad_lines"]:
        print(f"warning    {rec['bad_lines']} malformed event line(s) skipped")
    if rec["error"]:
        # A stopped run's "error" is the reason it stopped (a stop request, a signal): not a failure.
        print(f"{'error' if rec['status'] in ('failed', 'lost') else 'reason':<10} {rec['error']}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from core.launch import stop_run
    from core.reconcile import reconcile

    store = open_store(args)
    run = reconcile(store, need_run(store, args.run)["id"])
    if run["status"] != "running":
        print(f"run {run['id']} is not running (status {run['status']})", file=sys.stderr)
        return 0
    print(f"stopping {run['id']}: waiting up to {args.grace:.0f} s for a checkpoint...", file=sys.stderr)
    status = stop_run(store, run, grace=args.grace)
    run = store.get_run(run["id"]) or run
    if args.json:
        print(json.dumps({"id": run["id"], "status": status}))
    else:
        print(f"run {run['id']} {status}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = need_run(store, args.run)
    text = run_text(run_record(store, run), args.format)
    if args.output:
        path = write_text(args.output, text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from core import launch
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


def cmd_devices(args: argparse.Namespace) -> int:
    from core import devices

    report = devices.detect()
    if args.json:
        print(json.dumps(devices.to_json(report)))
    else:
        print(devices.render_text(report))
    return 0


COMMANDS = {"train": cmd_train, "runs": cmd_runs, "show": cmd_show, "stop": cmd_stop, "export": cmd_export,
            "eval": cmd_eval, "devices": cmd_devices}


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type that means 'the user asked for something wrong' (exit 2, no traceback)."""
    errs: list[type[BaseException]] = [UserError, ConfigError, StoreError, ExportError]
    for mod, name in (("core.data", "DataError"), ("core.models", "ModelError"), ("core.devices", "DeviceError"),
                      ("core.launch", "LaunchError")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "attach"):
        if args.db:
            os.environ[DB_ENV] = args.db
        from importlib import import_module

        dashboard = import_module("tui.app")  # the only place core reaches for the UI, and only by name
        return int(dashboard.main(attach=getattr(args, "run", None)) or 0)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_USER_ERROR
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except sqlite3.DatabaseError as e:
        # A file that opened as SQLite but is damaged further in (or stayed locked past the 30 s timeout).
        db = args.db or default_db_path()
        if "locked" in str(e):
            print(f"error: {db} stayed locked by another gpt2-tui process for 30 s ({e}); try again",
                  file=sys.stderr)
        elif "full" in str(e):
            print(f"error: {db}: the disk is full ({e}). Free some space and run the command again: the runs' "
                  f"event files are the record, and what is missing from the store is read in again.",
                  file=sys.stderr)
        else:
            print(f"error: {db} cannot be read as a gpt2-tui database ({e}). It was left untouched; move it "
                  f"aside or pass --db PATH (or set {DB_ENV}) to use another file.", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
