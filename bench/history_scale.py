"""A history that stays fast after years: `runs --json` and the history screen on 1,000 and 10,000 runs.

The databases are built through the store's own API (``Store.create_run`` and ``Store.ingest`` of the
events a trainer writes: a start, step events, an eval, a checkpoint, an end), with the metric rows of
issue 14's table: 1,000 runs x 1,000 steps (1 M rows) and 10,000 runs x 300 steps (3 M rows).

Then, side by side in one run, each in a fresh process (interpreter start included, as a user feels it):
- `runs --json`: before = every run's summary from three queries over its metric rows (COUNT/MAX/AVG,
  the last loss, the best accuracy); after = the real ``gpt2-tui runs --json``;
- ``Store.data_version()``, the "has anything changed" check;
- the history screen, old code (``--before REV``: that commit's tree, from ``git archive``) against this
  checkout, arms interleaved:
  * f2 -> table painted: the real dashboard (``tui.entry.main --db``) in a pseudo-terminal; F2 is sent
    once the first frame is out, and the time runs until the newest run's name is in the output;
    then the dashboard's CPU while the history sits idle (``--idle`` seconds) and its peak RSS (VmHWM);
  * a sort, a reversed sort, a mark, a filter keystroke and clearing the filter: in-process with
    Textual's Pilot at 160 x 48 (key press until the screen is updated), wall and CPU time;
  * a refresh while one run is running: the old full read (``runs_table``) against
    ``RunsReader.changes`` (a copy of the database with the newest run set running).
Targets (issue 14) at 10,000 runs: `runs --json` <= 1 s, painted <= 1 s after f2, idle <= 1 % of a core,
sort / filter / mark <= 100 ms.

The screen side lives in bench/history_screen.py.

Run:  python bench/history_scale.py [--quick] [--rounds 3] [--keep DIR] [--before REV] [--no-screen]
      [--idle 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, bench_env, fmt_summary, machine, summary, write_json  # noqa: E402
from bench.history_screen import LAUNCH, measure_screen, screen_table  # noqa: E402

# The old path, verbatim in effect: reconcile, list, then three aggregate queries per run.
BEFORE = r"""
import sys
from core.export import public_rows, table_row, to_json
from core.reconcile import reconcile_all
from core.store import Store
store = Store(sys.argv[1])
reconcile_all(store)

def legacy_summary(rid):
    c = store.conn
    m = c.execute("SELECT COUNT(*), MAX(step), AVG(samples_per_s) FROM metrics WHERE run_id = ?", (rid,)).fetchone()
    last = c.execute("SELECT loss FROM metrics WHERE run_id = ? ORDER BY step DESC LIMIT 1", (rid,)).fetchone()
    best = c.execute("SELECT MAX(accuracy) FROM evals WHERE run_id = ?", (rid,)).fetchone()
    return {"metric_rows": m[0], "last_step": m[1], "mean_samples_per_s": m[2],
            "final_loss": last[0] if last else None, "best_accuracy": best[0]}

rows = [table_row(store, r, None, legacy_summary(r["id"])) for r in store.list_runs()]
sys.stdout.write(to_json(public_rows(rows)))
"""

DATA_VERSION = r"""
import sys, time
from core.store import Store
store = Store(sys.argv[1])
n = 10_000
t0 = time.perf_counter()
for _ in range(n):
    store.data_version()
print((time.perf_counter() - t0) / n)
"""



def build(db: Path, runs: int, steps: int) -> float:
    """A runs.db of ``runs`` finished training runs, ``steps`` metric rows each, through the Store API."""
    from core.store import Store

    t0 = time.perf_counter()
    store = Store(db)
    root = db.parent / "runs"
    for i in range(runs):
        rid = f"2024{i // 100000:02d}{i % 100000:05d}-000000-{i:04x}"
        t = 1.7e9 + i * 3600.0
        store.create_run({"id": rid, "kind": "train", "name": f"run {i}", "status": "running", "created_at": t,
                          "config": {"learning_rate": 3e-4, "seed": i}, "command": ["gpt2-tui", "train"],
                          "run_dir": str(root / rid), "model": "gpt2-tiny", "devices": "cpu:0,1", "world_size": 2})
        evs: list[dict[str, Any]] = [{"v": 1, "seq": 0, "t": t, "type": "start", "world_size": 2,
                                      "total_steps": steps, "samples_per_epoch": 8000}]
        for s in range(1, steps + 1):
            evs.append({"v": 1, "seq": s, "t": t + s, "type": "step", "step": s, "epoch": s / steps,
                        "loss": 0.7 - 0.4 * s / steps, "lr": 3e-4, "samples_per_s": 500.0 + (s * 7919 + i) % 97,
                        "tokens_per_s": 32000.0, "step_time": 0.06})
        n = len(evs)
        evs += [{"v": 1, "seq": n, "t": t + steps, "type": "eval", "step": steps, "accuracy": 0.6 + (i % 30) / 100,
                 "loss": 0.5, "n": 872},
                {"v": 1, "seq": n + 1, "t": t + steps, "type": "checkpoint", "step": steps,
                 "path": str(root / rid / "checkpoints" / f"checkpoint-{steps}")},
                {"v": 1, "seq": n + 2, "t": t + steps + 1, "type": "end", "status": "finished", "reason": "done"}]
        store.ingest(rid, 0, 1, evs)
    store.close()
    return time.perf_counter() - t0


CPU_SPENT: list[float] = []  # CPU seconds (user + system) of each command ``timed`` ran, in order


def timed(argv: list[str]) -> tuple[float, str]:
    """Wall time of a command (and its CPU time, appended to CPU_SPENT: on a loaded box it is the cost)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=bench_env(), cwd=ROOT, timeout=600)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SPENT.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {out.stderr[-2000:]}")
    return dt, out.stdout


def gpt2_tui() -> list[str]:
    exe = Path(sys.executable).parent / "gpt2-tui"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "core.cli"]


def old_tree(rev: str, dest: Path) -> Path:
    """The code of commit ``rev`` in ``dest`` (git archive: no worktree, nothing of this checkout)."""
    if not (dest / "tui").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def measure(db: Path, rounds: int, old_root: Path | None = None) -> dict[str, Any]:
    """`runs --json`: the legacy summary loop, the old commit's command (``old_root``) and this checkout's."""
    before, old, after, old_cpu, after_cpu = [], [], [], [], []
    for _ in range(rounds):  # interleaved, so a busy moment of the shared box hits both
        dt, out_b = timed([sys.executable, "-c", BEFORE, str(db)])
        before.append(dt)
        if old_root is not None:
            dt, out_o = timed([sys.executable, "-c", LAUNCH, str(old_root), "--db", str(db), "runs", "--json"])
            old.append(dt)
            old_cpu.append(CPU_SPENT[-1])
        dt, out_a = timed([*gpt2_tui(), "--db", str(db), "runs", "--json"])
        after.append(dt)
        after_cpu.append(CPU_SPENT[-1])
    same = json.loads(out_b) == json.loads(out_a) and (old_root is None or json.loads(out_o) == json.loads(out_a))
    _, out = timed([sys.executable, "-c", DATA_VERSION, str(db)])
    per_call = float(out.strip())
    return {"before_s": summary(before), "old_commit_s": summary(old) if old else None, "after_s": summary(after),
            "old_commit_cpu_s": summary(old_cpu) if old_cpu else None, "after_cpu_s": summary(after_cpu),
            "same_output": same, "data_version_us": per_call * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 and 1,000 runs, 100 steps, 1 round")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--keep", help="build the databases in this folder and keep them (reused when there)")
    ap.add_argument("--before", default="28bcc86", help="the commit whose history screen is 'before'")
    ap.add_argument("--no-screen", action="store_true", help="only `runs --json`")
    ap.add_argument("--screen-rounds", type=int, default=None, help="rounds of the screen arms (default 2)")
    ap.add_argument("--only", type=int, help="only the database of this many runs (1000 or 10000)")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds the idle history's CPU is measured over")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sizes = [(200, 100), (1000, 100)] if args.quick else [(1000, 1000), (10_000, 300)]
    sizes = [s for s in sizes if args.only in (None, s[0])]
    rounds = args.rounds or (1 if args.quick else 3)
    print(f"history scale benchmark; machine {machine()}")
    results: dict[str, Any] = {"machine": machine(), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for runs, steps in sizes:
            db = base / f"runs-{runs}x{steps}" / "runs.db"
            print(f"[{runs:,} runs x {steps:,} steps = {runs * steps:,} metric rows]")
            if not db.exists():
                db.parent.mkdir(parents=True, exist_ok=True)
                built = build(db, runs, steps)
                print(f"  built through Store.ingest in {built:.1f} s ({runs * steps / built:,.0f} metric rows/s)")
            before = old_tree(args.before, base / f"tree-{args.before}")
            r = measure(db, rounds, before)
            results["sizes"][f"{runs}x{steps}"] = r
            b, a = r["before_s"]["median"], r["after_s"]["median"]
            print(f"  `runs --json` before (3 queries a run): {fmt_summary(r['before_s'], ' s', 2)}")
            print(f"  `runs --json` of {args.before}:            {fmt_summary(r['old_commit_s'], ' s', 2)}")
            print(f"  `runs --json` this checkout:           {fmt_summary(r['after_s'], ' s', 2)}")
            print(f"  CPU of it: {args.before} {fmt_summary(r['old_commit_cpu_s'], ' s', 2)};"
                  f" this checkout {fmt_summary(r['after_cpu_s'], ' s', 2)}")
            print(f"  ratio before/after: {b / a:.2f}x; same JSON: {r['same_output']}; "
                  f"data_version(): {r['data_version_us']:.1f} us a call")
            if runs >= 10_000:
                print(f"  target <= 1 s at 10,000 runs: {'met' if a <= 1.0 else 'NOT MET'} ({a:.2f} s)")
            if not args.no_screen:
                res = measure_screen(db, runs, before, args.screen_rounds or (1 if args.quick else 2),
                                     args.idle if not args.quick else 5.0, base)
                r["screen"] = res
                print(f"  history screen, {args.before} (before) against this checkout (after), medians:")
                for label, b, a, unit in screen_table(res):
                    print(f"    {label:<28} {b:9.2f} {unit:<3} {a:9.2f} {unit:<3} ratio {b / a if a else float('nan'):6.1f}x")
                print(f"    rows shown after clearing the filter: before {res['before']['actions'][0]['rows_after_clear']},"
                      f" after {res['after']['actions'][0]['rows_after_clear']}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
