"""Time to accuracy: wall time from launch to a target dev accuracy, our path against the reference path.

Samples/s can be bought with a sampler that learns worse; this measures what a user waits for. Both sides
are bench/_arms.py's (the same as bench/train_throughput.py's): ours (core.train.Trainer, length-grouped
batches) and the reference (PaddleNLP's Trainer with run_glue's setup, random batches), gpt2-tiny on the
SST-2-like data (bench/sst2_like.py, 8,000 train rows, 872 dev rows), batch 32, lr 3e-3, 10 % warm-up then
linear decay over the same number of steps, one process, one math thread each.

Both evaluate dev.tsv every N steps (the same N). The clock:
- starts when the driver launches the side's process (imports, tokenising and model loading count: a user
  waits for them too; our token cache is cold in every run, as on a user's first run on a dataset);
- stops at the start of the first evaluation whose accuracy reaches the target (the step before it is
  done: that is when the model had reached it);
- excludes the time spent in evaluations before that one (each side's own evaluation code differs, and it
  is not what either trains with). Evaluation time is reported separately.
Both the wall clock and the process's CPU time are kept (same rule): the box is shared, and with one math
thread, CPU time is the work done, not inflated by waiting for a core.

Target accuracy: by default the median over seeds of the reference's final accuracy (``--target ref``); a
fixed value with ``--target 0.8``. Times to a ladder of lower accuracies are printed too. A run that never
reaches a target counts as infinitely slow (so a median can be "not reached").

Seeds: every seed runs every arm, one after the other, the order reversed each seed (ABBA...); seed s is
the same on all arms. Besides ``ours`` and ``ref``, arms ``ours-<sampler>`` run our trainer with another
batching rule (bench/_arms.py use_sampler: random, chunkN, ...) for the trade-off curve.

Run:  python bench/time_to_accuracy.py [--quick] [--seeds 5] [--arms ours,ref] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._arms import Settings, Span, run_ours, run_ref, use_sampler  # noqa: E402
from bench._common import PY, ROOT, bench_env, machine, write_json  # noqa: E402
from bench.sst2_like import write_sst2_like  # noqa: E402

TINY = ROOT / "assets" / "gpt2-tiny"
LADDER = (0.70, 0.75, 0.80, 0.82, 0.84)


# --------------------------------------------------------------------------- worker (a subprocess)
def worker(a: argparse.Namespace) -> dict[str, Any]:
    steps: list[tuple[float, float, int, int, int]] = []  # (wall, cpu, rows, padded tokens, real tokens)
    evals: list[dict[str, Any]] = []

    def on_step(rows: int, padded: int, real: int) -> None:
        steps.append((time.time(), time.process_time(), rows, padded, real))

    def on_eval(step: int, acc: float, loss: float, span: Span) -> None:
        evals.append({"step": step, "accuracy": acc, "loss": loss, "t0": span.t0, "t1": span.t1,
                      "c0": span.c0, "c1": span.c1})

    s = Settings(model=a.model, data=a.data, tmp=a.tmp, steps=a.steps, batch=a.batch, eval_batch=a.eval_batch,
                 lr=a.lr, seed=a.seed, eval_steps=a.eval_every)
    if a.worker == "ref":
        res = run_ref(s, on_step=on_step, on_eval=on_eval)
    else:
        use_sampler(a.sampler)
        res = run_ours(s, on_step=on_step, on_eval=on_eval)
    return {**res, "steps": [list(x) for x in steps], "evals": evals}


# --------------------------------------------------------------------------- one run, seen from the driver
def derive(res: dict[str, Any], t_launch: float) -> dict[str, Any]:
    """The clocks at each evaluation (launch → its start, earlier evaluations excluded), start-up, speed."""
    evals = sorted(res.pop("evals"), key=lambda e: e["step"])
    steps = res.pop("steps")
    wall_off = cpu_off = 0.0
    for e in evals:
        e["clock"] = e["t0"] - t_launch - wall_off
        e["cpu_clock"] = e["c0"] - cpu_off
        wall_off += e["t1"] - e["t0"]
        cpu_off += e["c1"] - e["c0"]
    n = len(steps)
    w = max(1, n // 10)  # steady state from the end of step w (as bench/train_throughput.py)
    t_a, t_b = steps[w - 1][0], steps[-1][0]
    in_window = sum(e["t1"] - e["t0"] for e in evals if t_a <= e["t0"] <= t_b)
    rows = sum(x[2] for x in steps[w:])
    padded = sum(x[3] for x in steps)
    real = sum(x[4] for x in steps)
    return {**res, "evals": [{k: e[k] for k in ("step", "accuracy", "loss", "clock", "cpu_clock")} for e in evals],
            "n_steps": n, "startup_s": steps[0][0] - t_launch if steps else None,
            "samples_per_s": rows / (t_b - t_a - in_window) if t_b - t_a - in_window > 0 else None,
            "pad_fraction": 1 - real / padded if padded else None, "eval_s": wall_off,
            "eval_s_each": wall_off / len(evals) if evals else None, "final_accuracy": evals[-1]["accuracy"]}


def time_to(run: dict[str, Any], target: float) -> tuple[float, float, int | None]:
    """(wall, CPU, step) of the first evaluation at or above target; (inf, inf, None) if none is."""
    for e in run["evals"]:
        if e["accuracy"] >= target - 1e-9:
            return e["clock"], e["cpu_clock"], e["step"]
    return math.inf, math.inf, None


def run_arm(kind: str, seed: int, a: argparse.Namespace, data: Path, tmp: Path) -> dict[str, Any]:
    ns = time.time_ns()
    out = tmp / f"{kind}-{seed}-{ns}.json"
    sampler = kind.removeprefix("ours-") if kind.startswith("ours-") else "grouped"
    cmd = [PY, str(Path(__file__).resolve()), "--worker", "ref" if kind == "ref" else "ours", "--sampler", sampler,
           "--model", str(TINY), "--data", str(data), "--tmp", str(tmp), "--steps", str(a.steps),
           "--eval-every", str(a.eval_every), "--batch", str(a.batch), "--eval-batch", str(a.eval_batch),
           "--lr", str(a.lr), "--seed", str(seed), "--result", str(out)]
    load = os.getloadavg()[0]
    env = bench_env(a.threads, GPT2_TUI_CACHE=str(tmp / f"cache-{ns}"))  # cold: a user's first run on this data
    t_launch = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - t_launch
    if p.returncode != 0 or not out.exists():
        raise RuntimeError(f"{kind} seed {seed} failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    res = derive(json.loads(out.read_text()), t_launch)
    res.update(seed=seed, process_wall_s=wall, load_before=load, load_after=os.getloadavg()[0])
    return res


# --------------------------------------------------------------------------- statistics and report
def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def spread(xs: list[float]) -> str:
    """min–max and the half-range in % of the median (inf: a seed that never reached the target)."""
    m = med(xs)
    if not xs or math.isinf(m):
        return "n/a"
    lo, hi = min(xs), max(xs)
    return f"{_f(lo)}–{_f(hi)}, ±{(hi - lo) / 2 / m * 100:.0f} %" if math.isfinite(hi) else f"{_f(lo)}–never"


def _f(x: float | None, unit: str = "", digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "never" if math.isinf(x) else f"{x:.{digits}f}{unit}"


def report(runs: dict[str, list[dict[str, Any]]], target: float, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {"target": target, "target_rule": label, "arms": {}}
    print(f"\ntarget dev accuracy {target:.4f} ({label}); clock: launch -> start of the first evaluation at or "
          f"above it, earlier evaluations excluded")
    print(f"  {'arm':<22} {'seed':>5} {'wall s':>7} {'CPU s':>7} {'step':>5} {'start-up s':>10} {'samples/s':>9} "
          f"{'pad':>4} {'final acc':>9} {'eval s':>6} {'load':>9}")
    for k, rs in runs.items():
        arm: dict[str, Any] = {"wall": [], "cpu": [], "step": [], "final": [], "startup": [], "samples_per_s": [],
                               "pad_fraction": [], "eval_s": []}
        for r in rs:
            wall, cpu, step = time_to(r, target)
            arm["wall"].append(wall)
            arm["cpu"].append(cpu)
            arm["step"].append(step)
            arm["final"].append(r["final_accuracy"])
            for m in ("startup", "samples_per_s", "pad_fraction", "eval_s"):
                arm[m].append(r[m + ("_s" if m == "startup" else "")])
            print(f"  {k:<22} {r['seed']:>5} {_f(wall):>7} {_f(cpu):>7} {step if step else '-':>5} "
                  f"{_f(r['startup_s']):>10} {_f(r['samples_per_s'], digits=0):>9} {r['pad_fraction']:>4.0%} "
                  f"{r['final_accuracy']:>9.4f} {_f(r['eval_s']):>6} {r['load_before']:>4.1f}/{r['load_after']:<4.1f}")
        out["arms"][k] = arm
    print(f"\n  {'arm':<22} {'time to target, wall s: median (range)':<40} {'CPU s median':>12} {'reached':>7} "
          f"{'final acc median (range)':>26} {'samples/s':>9}")
    for k, arm in out["arms"].items():
        fin = arm["final"]
        reached = sum(1 for x in arm["wall"] if math.isfinite(x))
        print(f"  {k:<22} {_f(med(arm['wall'])) + ' (' + spread(arm['wall']) + ')':<40} {_f(med(arm['cpu'])):>12} "
              f"{reached}/{len(fin):<5} {f'{med(fin):.4f} ({min(fin):.4f}–{max(fin):.4f})':>26} "
              f"{_f(med([x for x in arm['samples_per_s'] if x]), digits=0):>9}")
    ref = out["arms"].get("ref")
    if ref:
        for k, arm in out["arms"].items():
            if k == "ref":
                continue
            ratio = med(arm["wall"]) / med(ref["wall"])
            ratio_c = med(arm["cpu"]) / med(ref["cpu"])
            ref_at = {r["seed"]: j for j, r in enumerate(runs["ref"])}  # paired by seed
            pairs = [(i, ref_at[r["seed"]]) for i, r in enumerate(runs[k]) if r["seed"] in ref_at]
            paired = [arm["wall"][i] / ref["wall"][j] for i, j in pairs if math.isfinite(ref["wall"][j])]
            diffs = [arm["final"][i] - ref["final"][j] for i, j in pairs]
            sd = statistics.stdev(diffs) if len(diffs) > 1 else math.nan
            if not diffs:
                continue
            arm.update(ratio_wall=ratio, ratio_cpu=ratio_c, paired_ratio=paired, final_diff=diffs)
            met = ratio <= 0.5 and med(arm["final"]) >= med(ref["final"])
            print(f"  {k} / ref: time to target {_f(ratio, 'x', 2)} wall, {_f(ratio_c, 'x', 2)} CPU (per seed "
                  f"{', '.join(_f(x, '', 2) for x in paired)}); final accuracy {statistics.fmean(diffs) * 100:+.2f} "
                  f"points (paired mean, sd {sd * 100:.2f})" + (f"; target <= 0.5x and final no worse: "
                                                                 f"{'MET' if met else 'NOT MET'}" if k == "ours" else ""))
    return out


def ladder(runs: dict[str, list[dict[str, Any]]], levels: tuple[float, ...]) -> dict[str, Any]:
    """Median time and median step to each accuracy level: how fast each side learns, per second and per step."""
    out: dict[str, Any] = {}
    for what, idx, unit in (("wall s", 0, ""), ("CPU s", 1, ""), ("step", 2, "")):
        print(f"\n  {what} to each accuracy (median over seeds; seeds that reached it):")
        print("  " + f"{'arm':<22}" + "".join(f"{lv:>14.4g}" for lv in levels))
        for k, rs in runs.items():
            cells = []
            for lv in levels:
                xs = [time_to(r, lv)[idx] for r in rs]
                vals = [math.inf if x is None else float(x) for x in xs]
                out.setdefault(k, {}).setdefault(what, {})[str(lv)] = vals
                m = med(vals)
                cells.append(f"{_f(m, unit, 0 if idx == 2 else 1)} ({sum(map(math.isfinite, vals))}/{len(vals)})")
            print("  " + f"{k:<22}" + "".join(f"{c:>14}" for c in cells))
    return out


def merged(paths: list[str]) -> tuple[dict[str, list[dict[str, Any]]], list[Any]]:
    """Runs of several --json files, arm by arm (e.g. seeds 42-46 of one run and 47-51 of another)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    machines = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        machines.append(data.get("machine"))
        for k, rs in data["runs"].items():
            runs.setdefault(k, []).extend(rs)
    for k, rs in runs.items():
        seeds = [r["seed"] for r in rs]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"arm {k} has a seed twice across {paths}: {sorted(seeds)}")
        rs.sort(key=lambda r: r["seed"])
    return runs, machines


# --------------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 150 steps, eval every 25, 4,000 rows")
    ap.add_argument("--seeds", type=int, default=5, help="seeds (each runs every arm); seed s = --seed + i")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--steps", type=int, default=500, help="the schedule's length, the same on every arm (500: "
                    "2 epochs of 8,000 rows)")
    ap.add_argument("--eval-every", type=int, default=25, help="evaluate dev every N steps on every arm")
    ap.add_argument("--arms", default="ours,ref", help="comma list: ours, ref, ours-random, ours-chunkN, ...")
    ap.add_argument("--target", default="ref", help="'ref' (median of the reference's final accuracy) or a number")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=1, help="math threads per process (OMP_NUM_THREADS)")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--report", help="no runs: print the report of earlier --json files (comma list, merged by arm; "
                    "arms missing a seed are compared on the seeds they share)")
    ap.add_argument("--worker", choices=["ours", "ref"], help=argparse.SUPPRESS)
    ap.add_argument("--sampler", default="grouped", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker:
        Path(a.result).write_text(json.dumps(worker(a)))
        return 0
    if a.report:
        runs, machines = merged(a.report.split(","))
        results = {"machine": machines, "args": {k: v for k, v in vars(a).items() if v is not None}}
        return finish(a, runs, results)
    if a.quick:
        a.seeds, a.steps, a.eval_every, a.n_train = min(a.seeds, 2), 150, 25, 4000
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    if a.target == "ref" and "ref" not in arms:
        raise SystemExit("--target ref needs the ref arm: add it to --arms or give a number")
    results: dict[str, Any] = {"machine": machine(), "args": {k: v for k, v in vars(a).items() if v is not None}}
    print(f"time to accuracy: {', '.join(arms)}; gpt2-tiny, {a.n_train} train rows, {a.steps} steps, batch {a.batch}, "
          f"eval every {a.eval_every}, {a.seeds} seed(s); machine {results['machine']}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in arms}
    with tempfile.TemporaryDirectory(prefix="bench-tta-") as td:
        tmp = Path(td)
        data = write_sst2_like(tmp / "data", a.n_train)
        for i in range(a.seeds):
            seed = a.seed + i
            for kind in arms if i % 2 == 0 else arms[::-1]:
                r = run_arm(kind, seed, a, data, tmp)
                runs[kind].append(r)
                curve = " ".join(f"{e['accuracy']:.2f}" for e in r["evals"])
                print(f"  seed {seed} {kind:<14} final {r['final_accuracy']:.4f}, {r['samples_per_s'] or 0:.0f} "
                      f"samples/s, start-up {r['startup_s']:.1f} s, process {r['process_wall_s']:.1f} s, load "
                      f"{r['load_before']:.1f}; accuracy per eval: {curve}", flush=True)
    for rs in runs.values():
        rs.sort(key=lambda r: r["seed"])
    return finish(a, runs, results)


def finish(a: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], results: dict[str, Any]) -> int:
    if a.target == "ref" and "ref" not in runs:
        raise SystemExit("--target ref needs the ref arm: give a number as --target")
    if a.target == "ref":
        target, label = med([r["final_accuracy"] for r in runs["ref"]]), "median of the reference's final accuracy"
    else:
        target, label = float(a.target), "fixed"
    results["runs"] = runs
    results["report"] = report(runs, target, label)
    results["ladder"] = ladder(runs, tuple(sorted({*LADDER, target})))
    write_json(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
