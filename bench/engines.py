"""Our engine against ``--engine paddlenlp``, through the product: what the compare screen shows.

Each round runs ``gpt2-tui train`` twice on the same config, once per engine (ABBA order across rounds),
exactly as a user would: the offline preset (gpt2-tiny), the same SST-2-like data (bench/sst2_like.py),
batch 16 a rank on 2 CPU ranks under paddle.distributed.launch, the same number of steps, one evaluation
at the end. The numbers are the compare screen's (``tui.compare_logic.speed_rows``) read from each run's
events.jsonl: median samples/s over the logged steps, wall time from the first step event to the last
step both reached, final dev accuracy, and each against our run.

Run:  python bench/engines.py [--steps 150] [--rounds 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_env, machine, write_json  # noqa: E402
from bench._runs import cli, read_events  # noqa: E402
from bench.sst2_like import write_sst2_like  # noqa: E402
from tui.compare_logic import SpeedFacts, common_step, speed_rows  # noqa: E402

ENGINES = ("gpt2-tui", "paddlenlp")


def train(db: Path, data: Path, engine: str, steps: int, env: dict[str, str]) -> Path:
    """One foreground run; returns its run folder."""
    cmd = [*cli(), "--db", str(db), "train", "--preset", "offline", "--engine", engine, "--data_dir", str(data),
           "--max_steps", str(steps), "--eval_steps", str(steps), "--save_steps", str(steps), "--logging_steps",
           "1", "--devices", "cpu:2", "--run_name", engine]
    p = subprocess.run(cmd, cwd=str(db.parent), env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"{engine} run failed ({p.returncode}):\n{p.stderr[-3000:]}")
    newest = max((db.parent / "runs").iterdir(), key=lambda d: d.stat().st_mtime)
    return newest


def facts(run_dir: Path, engine: str) -> tuple[SpeedFacts, dict[int, float]]:
    evs = read_events(run_dir / "events.jsonl")
    steps = {e["step"]: e for e in evs if e.get("type") == "step"}
    times = {s: float(e["t"]) for s, e in steps.items()}
    first = min(steps) if steps else None
    f = SpeedFacts(label=engine, engine=engine, samples_per_s=[steps[s].get("samples_per_s") or float("nan")
                                                                for s in sorted(steps)],
                   first_t=times.get(first) if first is not None else None, t_at_step=None,
                   evals=[(e.get("step"), e.get("accuracy")) for e in evs if e.get("type") == "eval"])
    return f, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--train_rows", type=int, default=4000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    env = bench_env(threads=1)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        data = write_sst2_like(Path(tmp) / "data", n_train=a.train_rows)
        db = Path(tmp) / "runs.db"
        for r in range(a.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            got = {}
            for engine in order:
                got[engine] = facts(train(db, data, engine, a.steps, env), engine)
            step = common_step([max(t) if t else None for _, t in got.values()])
            rows = speed_rows([SpeedFacts(**{**f.__dict__, "t_at_step": t.get(step) if step else None})
                               for f, t in (got[e] for e in ENGINES)])
            for row in rows:
                results.append({"round": r, "step": step, **row.__dict__})
                print(f"round {r}  {row.engine:9s}  samples/s {row.samples_per_s:8.1f}  "
                      f"time to step {step}: {row.time_to_step:6.1f} s  final dev acc {row.final_accuracy}  "
                      f"speed ×{row.speed_ratio:.2f}  time ×{row.time_ratio:.2f}")
    ref = [x for x in results if x["engine"] == "paddlenlp"]
    if ref:
        print(f"ours / paddlenlp: samples/s ×{statistics.median(1 / x['speed_ratio'] for x in ref):.2f}, "
              f"time to the same step ×{statistics.median(x['time_ratio'] for x in ref):.2f} (median over rounds)")
    write_json(a.json, {"machine": machine(), "args": vars(a), "rows": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
