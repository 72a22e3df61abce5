"""A history that stays fast after years: `gpt2-tui runs --json` on runs.db files of 1,000 and 10,000 runs.

The databases are built through the store's own API (``Store.create_run`` and ``Store.ingest`` of the
events a trainer writes: a start, step events, an eval, a checkpoint, an end), with the metric rows of
issue 14's table: 1,000 runs x 1,000 steps (1 M rows) and 10,000 runs x 300 steps (3 M rows).

Then, side by side in one run, each in a fresh process (interpreter start included, as a user feels it):
- before: what `runs --json` did until the runs table was one query: every run's summary from three
  queries over its metric rows (COUNT/MAX/AVG, the last loss, the best accuracy);
- after: the real ``gpt2-tui runs --json`` (``Store.summaries``: the numbers kept on the run rows by
  ingest, one query for the table);
- and ``Store.data_version()``, the "has anything changed" check a history screen can poll.
Target (issue 14): `runs --json` <= 1 s at 10,000 runs.

Run:  python bench/history_scale.py [--quick] [--rounds 3] [--keep DIR] [--json out.json]
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


def timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=bench_env(), cwd=ROOT, timeout=600)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {out.stderr[-2000:]}")
    return dt, out.stdout


def gpt2_tui() -> list[str]:
    exe = Path(sys.executable).parent / "gpt2-tui"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "core.cli"]


def measure(db: Path, rounds: int) -> dict[str, Any]:
    before, after = [], []
    for _ in range(rounds):  # interleaved, so a busy moment of the shared box hits both
        dt, out_b = timed([sys.executable, "-c", BEFORE, str(db)])
        before.append(dt)
        dt, out_a = timed([*gpt2_tui(), "--db", str(db), "runs", "--json"])
        after.append(dt)
    same = json.loads(out_b) == json.loads(out_a)
    _, out = timed([sys.executable, "-c", DATA_VERSION, str(db)])
    per_call = float(out.strip())
    return {"before_s": summary(before), "after_s": summary(after), "same_output": same,
            "data_version_us": per_call * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 and 1,000 runs, 100 steps, 1 round")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--keep", help="build the databases in this folder and keep them (reused when there)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sizes = [(200, 100), (1000, 100)] if args.quick else [(1000, 1000), (10_000, 300)]
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
            r = measure(db, rounds)
            results["sizes"][f"{runs}x{steps}"] = r
            b, a = r["before_s"]["median"], r["after_s"]["median"]
            print(f"  `runs --json` before (3 queries a run): {fmt_summary(r['before_s'], ' s', 2)}")
            print(f"  `runs --json` after (one query):        {fmt_summary(r['after_s'], ' s', 2)}")
            print(f"  ratio before/after: {b / a:.2f}x; same JSON: {r['same_output']}; "
                  f"data_version(): {r['data_version_us']:.1f} us a call")
            if runs >= 10_000:
                print(f"  target <= 1 s at 10,000 runs: {'met' if a <= 1.0 else 'NOT MET'} ({a:.2f} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
