"""``gpt2-tui runs | show | stop | export | tag | devices``: the store's runs, read and controlled from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli_common import UserError, add_db_flag, fmt_time, need_run, open_store
from core.export import public_rows, run_record, run_text, runs_table, to_json, write_text

# `stop` exit codes: 0 = the run is no longer running (stopped now, or it had already ended: stopping is
# idempotent, a script may stop whatever it started); 1 = it is still running after the stop request,
# SIGTERM and SIGKILL (processes we may not signal, a hung D-state rank).
EXIT_NOT_STOPPED = 1


def add_parsers(sub: Any) -> None:
    r = sub.add_parser("runs", help="list runs", epilog=FILTER_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--json", action="store_true")
    r.add_argument("--status", choices=["running", "finished", "failed", "stopped", "lost"])
    r.add_argument("--filter", metavar="EXPR", help="only the runs this filter matches (the history's filter; "
                                                    "see below)")

    s = sub.add_parser("show", help="one run: status, config, steps, evals, checkpoints")
    s.add_argument("run", help="run id, id prefix, name, or 'last'")
    s.add_argument("--json", action="store_true")

    st = sub.add_parser("stop", help="stop a run: graceful (save a checkpoint), then signals",
                        description="Stop a run: a stop request (the trainer saves a checkpoint), then SIGTERM, "
                                    "then SIGKILL to its process group. Exit 0 when the run is no longer "
                                    "running (also when it had already ended), 1 when it could not be stopped.")
    st.add_argument("run")
    st.add_argument("--grace", type=float, default=60.0, help="seconds to wait for the graceful stop")
    st.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="a run's metrics, evals and checkpoints as CSV, JSON or VisualDL logs")
    e.add_argument("run")
    e.add_argument("--format", choices=["csv", "json", "visualdl"], default="json")
    e.add_argument("-o", "--output", help="file to write (default: standard output); a folder for visualdl")

    at = sub.add_parser("attach", help="open the dashboard on a run's live screen")
    at.add_argument("run", help="run id, id prefix, name or 'last'")

    t = sub.add_parser("tag", help="add or remove a run's tags, set its note; with no tag, show them",
                       description="Tags are words (commas or spaces separate them); the history's filter and "
                                   "`runs --filter` find them with tag:NAME, and free words search tags and notes.")
    t.add_argument("run", help="run id, id prefix, name, or 'last'")
    t.add_argument("tags", nargs="*", metavar="TAG", help="tags to add (or to remove, with --remove)")
    t.add_argument("--remove", action="store_true", help="remove the TAGs instead of adding them")
    notes = t.add_mutually_exclusive_group()
    notes.add_argument("--note", metavar="TEXT", help="set the run's note (free text)")
    notes.add_argument("--clear-note", action="store_true", help="remove the run's note")
    t.add_argument("--json", action="store_true", help="print the run's id, name, tags and note as JSON")

    d = sub.add_parser("devices", help="list accelerators and CPU (without importing paddle)")
    d.add_argument("--json", action="store_true")
    for p in (r, s, st, e, at, t, d):
        add_db_flag(p)


FILTER_HELP = """filter (EXPR): every term must match
  words          in the id, name, model, devices, status, tags or note (any case); "a phrase" in quotes
  key:value      tag:best  status:failed  model:medium  name:sweep  engine:paddlenlp  note:oom
  numbers        lr>1e-4  acc>=0.9  steps<100  bs=32  loss<0.5  sps>100  (= and : mean equal)
  any setting    model_name_or_path:gpt2-medium-en  use_amp:true  (a RunConfig field by its name;
                 lr, bs, seq, epochs, model are short for learning_rate, per_device_train_batch_size,
                 max_seq_length, num_train_epochs, model_name_or_path)
  -term          leaves out the runs the term matches: -tag:broken  -cpu
"""


def cmd_runs(args: argparse.Namespace) -> int:
    from core.reconcile import reconcile_all
    from core.run_filter import FilterError, parse

    try:  # before the store is opened: a typo in the filter changes nothing anywhere
        wanted = parse(args.filter or "")
    except FilterError as e:
        raise UserError(f"--filter: {e}") from None
    store = open_store(args)
    reconcile_all(store)
    rows = wanted.select(runs_table(store, status=args.status))
    if args.json:
        print(to_json(public_rows(rows)))
        return 0
    if not rows:
        print("no run matches the filter" if args.filter else "no runs yet; start one with `gpt2-tui train`")
        return 0
    hdr = f"{'ID':<21} {'STATUS':<9} {'NAME':<22} {'MODEL':<15} {'STEPS':>11} {'LOSS':>7} {'ACC':>7} {'SAMPLES/S':>9}  STARTED"
    print(hdr)
    for r in rows:
        steps = f"{r['steps'] or 0}/{r['total_steps'] or '?'}"
        loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "-"
        acc = f"{r['best_accuracy']:.4f}" if r["best_accuracy"] is not None else "-"
        sps = f"{r['mean_samples_per_s']:.1f}" if r["mean_samples_per_s"] is not None else "-"
        tags = f"  [{', '.join(r['tags'])}]" if r.get("tags") else ""
        print(f"{r['id']:<21} {r['status']:<9} {str(r['name'])[:22]:<22} {str(r['model'])[:15]:<15} "
              f"{steps:>11} {loss:>7} {acc:>7} {sps:>9}  {fmt_time(r['created_at'])}{tags}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from core.store.runs import KEEP
    from core.tags import TagError, split_tags

    if args.remove and not args.tags:
        raise UserError("tag --remove: name the tags to remove, e.g. gpt2-tui tag RUN old --remove")
    try:
        given = split_tags(args.tags)
    except TagError as e:
        raise UserError(str(e)) from None
    store = open_store(args)
    run = need_run(store, args.run)
    note = args.note if args.note is not None else None if args.clear_note else KEEP
    if given or note is not KEEP:
        missing = [t for t in given if t.lower() not in {x.lower() for x in run.get("tags") or []}]
        try:
            after = store.tag_run(run["id"], add=[] if args.remove else given, remove=given if args.remove else [],
                                  note=note)
        except TagError as e:
            raise UserError(f"run {run['id']}: {e}") from None
        if after is None:
            raise UserError(f"run {run['id']} was deleted meanwhile")
        run = after
        if args.remove and missing:
            print(f"run {run['id']} had no tag {', '.join(missing)}", file=sys.stderr)
    tags, note_now = list(run.get("tags") or []), run.get("note")
    if args.json:
        print(json.dumps({"id": run["id"], "name": run["name"], "tags": tags, "note": note_now}))
        return 0
    print(f"run {run['id']} ({run['name']})\ntags  {', '.join(tags) if tags else '-'}\nnote  {note_now or '-'}")
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
    if rec["tags"] or rec["note"]:
        print(f"tags       {', '.join(rec['tags'] or []) or '-'}" + (f"\nnote       {rec['note']}" if rec["note"] else ""))
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
    fp = rec.get("fast_path") or {}
    if fp.get("fallbacks"):
        print(f"fast path  stepped down: {'; '.join(map(str, fp['fallbacks']))}")
    if rec["error"]:
        # A stopped run's "error" is the reason it stopped (a stop request, a signal): not a failure.
        print(f"{'error' if rec['status'] in ('failed', 'lost') else 'reason':<10} {rec['error']}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from core.launch import processes_of, stop_run
    from core.reconcile import reconcile

    store = open_store(args)
    run = reconcile(store, need_run(store, args.run)["id"])
    if run["status"] != "running":
        print(f"run {run['id']} is not running (status {run['status']}); nothing to stop", file=sys.stderr)
        if args.json:
            print(json.dumps({"id": run["id"], "status": run["status"], "stopped": False}))
        return 0
    print(f"stopping {run['id']}: waiting up to {args.grace:.0f} s for a checkpoint...", file=sys.stderr)
    status = stop_run(store, run, grace=args.grace)
    run = store.get_run(run["id"]) or run
    left = processes_of(run)
    stopped = status != "running" and not left
    if args.json:
        print(json.dumps({"id": run["id"], "status": status, "stopped": stopped}))
    else:
        print(f"run {run['id']} {status}")
    if not stopped:
        pids = ", ".join(str(p.pid) for p in left) or "none found"
        print(f"error: run {run['id']} could not be stopped: status {status}, processes left: {pids}",
              file=sys.stderr)
        return EXIT_NOT_STOPPED
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "visualdl":
        from core.cli_interop import cmd_export_visualdl

        return cmd_export_visualdl(args)
    store = open_store(args)
    run = need_run(store, args.run)
    text = run_text(run_record(store, run), args.format)
    if args.output:
        path = write_text(args.output, text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from core import devices

    report = devices.detect()
    if args.json:
        print(json.dumps(devices.to_json(report)))
    else:
        print(devices.render_text(report))
    return 0
