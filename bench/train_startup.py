"""Start-up: launch to the first training step, an evaluation job to its first batch, tokenising 67,349 rows.

1. Launch to first step (gpt2-tiny): ``gpt2-tui train --detach`` (offline preset, 2 CPU ranks under
   paddle.distributed.launch) on the bundled sample with a warm token cache, then watch ``events.jsonl``:
   time from starting the CLI to the CLI returning, to the ``start`` event (model loaded, data tokenised)
   and to the first ``step`` event (what a user sees as the first point). Target: <= 4 s.
   Where it goes, per process: the CLI (wall and CPU), the supervisor starting paddle's launcher
   (``supervisor.json``), the launcher importing paddle before it starts the ranks, each rank's phases
   (its ``startup`` line in logs/workerlog.N: paddle, paddlenlp, gloo, model, data ..., wall/CPU).
2. An evaluation job to its first batch: ``gpt2-tui eval RUN --force --detach`` (what the results pane
   starts: core/evaluate.py under the supervisor) on that run's checkpoint (saved when the bench stopped it)
   and the sample's dev.tsv,
   to the job's first ``step`` event (one per batch). Target: <= 3 s.
3. (``--parts tokenise``; not in --quick) the 67,349-row train split (bench/sst2_like.py --full) tokenised
   through ``core.train.encode_split``, fresh process each time, cold (empty GPT2_TUI_CACHE) and warm;
   and the launch on that split, cold and warm.

Two arms alternate in every round (ab, ba, ...): ``lean`` (as shipped) and ``plain``
(GPT2_TUI_PLAIN_IMPORTS=1: the workers import paddlenlp the package's way and use paddle's own
init_parallel_env, i.e. the code before this change). The box is shared: each measurement records the
1-minute load average, and CPU times beside wall times (CPU does not grow while a process waits for a core).
The "serial chain's CPU" adds the CPU of each process on the path (CLI, supervisor, paddle's launcher, rank 0
or the eval worker up to its start event / first batch): the wall time the chain would take with a free core
for each process, i.e. on a quiet box (the two ranks start together and run on one core each).

Run:  python bench/train_startup.py [--quick] [--rounds 5] [--arms lean,plain] [--parts launch,eval]
      [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench._common import PY, ROOT, bench_env, fmt_summary, machine, summary, write_json  # noqa: E402
from bench._runs import cli, cli_env, launch, run_dir, stop, wait_exit, wait_for  # noqa: E402
from bench.sst2_like import SST2_TRAIN_ROWS, write_sst2_like  # noqa: E402
from core.trainer.phases import parse as parse_phases  # noqa: E402

SAMPLE = ROOT / "assets" / "sst2-sample"
PLAIN_ENV = "GPT2_TUI_PLAIN_IMPORTS"  # core.paddlenlp_lean.PLAIN_ENV (not imported: no paddle here)

TOKENISE = r"""
import json, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from core import paddlenlp_lean
paddlenlp_lean.load()  # as the workers import it
from paddlenlp.transformers import GPTTokenizer
from core import train
t1 = time.perf_counter()
tok = GPTTokenizer.from_pretrained(sys.argv[1])
t2 = time.perf_counter(); c2 = time.process_time()
enc, hit = train.encode_split(tok, sys.argv[2], 128, int(tok.eos_token_id))
t3 = time.perf_counter(); c3 = time.process_time()
print(json.dumps({"import_s": t1 - t0, "tokenizer_s": t2 - t1, "encode_s": t3 - t2, "encode_cpu_s": c3 - c2,
                  "from_cache": hit, "rows": len(enc), "mean_tokens": float(enc.lengths.mean())}))
"""


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _startup_lines(paths: list[Path]) -> list[dict[str, float]]:
    out = []
    for p in paths:
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        found = [parse_phases(line) for line in text.splitlines() if "] startup " in line]
        if found and found[-1]:
            out.append(found[-1])
    return out


def _cpu_of(pid: Any) -> float | None:
    try:
        ct = psutil.Process(int(pid)).cpu_times()
    except (psutil.Error, TypeError, ValueError):
        return None
    return ct.user + ct.system


def _supervisor(rdir: Path) -> tuple[dict[str, Any], float | None, float | None]:
    """(supervisor.json, the launcher's CPU s, the supervisor's CPU s), read while they live: both idle once
    the ranks run, so their CPU by now is their start-up."""
    try:
        sup = json.loads((rdir / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}, None, None
    return sup, _cpu_of(sup.get("launcher_pid")), _cpu_of(sup.get("pid"))


def critical_cpu(parts: list[float | None]) -> float | None:
    """The serial chain's CPU seconds: what the wall time would be with a core free for each process
    (the ranks run side by side, one core each). None when a part is missing."""
    return sum(parts) if all(p is not None for p in parts) else None  # type: ignore[misc]


def launch_to_first_step(tmp: Path, data: Path, cache: Path, tag: str, timeout: float,
                         env_extra: dict[str, str]) -> dict[str, Any]:
    db = tmp / f"{tag}.db"
    env = cli_env(tmp, GPT2_TUI_CACHE=str(cache), **env_extra)
    load = _load()
    t0_wall = time.time()
    c0 = _children_cpu()
    t0 = time.perf_counter()
    run_id, cli_s = launch(db, data, 100000, env, name=tag)
    cli_cpu = _children_cpu() - c0
    rdir = run_dir(db, run_id)
    start, t_start = wait_for(rdir / "events.jsonl", lambda e: e.get("type") in ("start", "end"), timeout)
    step, t_step = wait_for(rdir / "events.jsonl", lambda e: e.get("type") in ("step", "end"), timeout)
    sup, launcher_cpu, supervisor_cpu = _supervisor(rdir)
    stop(rdir)
    wait_exit(rdir, 120)
    if not start or start["type"] != "start" or not step or step["type"] != "step":
        raise RuntimeError(f"run {run_id} gave {start} / {step}; see {rdir}")
    ranks = _startup_lines(sorted((rdir / "logs").glob("workerlog.*")))
    out: dict[str, Any] = {"run_id": run_id, "db": str(db), "load1": load, "cli_s": cli_s, "cli_cpu_s": cli_cpu,
                           "start_event_s": t_start - t0, "first_step_s": t_step - t0,
                           "first_step_number": step["step"], "launcher_cpu_s": launcher_cpu,
                           "supervisor_cpu_s": supervisor_cpu}
    if sup.get("t"):
        out["supervisor_started_launcher_s"] = sup["t"] - t0_wall
    if ranks:
        r0 = ranks[0]
        out["rank_startup_s"] = r0["total"]
        out["rank_startup_cpu_s"] = r0["cpu"]
        # when rank 0's process began: its start event minus its own start-up time
        out["ranks_started_s"] = (start["t"] - t0_wall) - r0["total"]
        out["rank_phases"] = r0
        # CLI, supervisor, launcher, rank 0 up to its start event, then start -> first step (one step)
        out["critical_cpu_s"] = critical_cpu([cli_cpu, supervisor_cpu, launcher_cpu, r0["cpu"], t_step - t_start])
    return out


def eval_to_first_batch(db: Path, run_id: str, tmp: Path, timeout: float, env_extra: dict[str, str]) -> dict[str, Any]:
    env = cli_env(tmp, **env_extra)
    ckpts = sorted((run_dir(db, run_id) / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not ckpts:
        raise RuntimeError(f"run {run_id} saved no checkpoint")
    load = _load()
    c0 = _children_cpu()
    t0 = time.perf_counter()
    p = subprocess.run([*cli(), "--db", str(db), "eval", run_id, "--checkpoint", str(ckpts[-1]), "--eval_path",
                        str(SAMPLE / "dev.tsv"), "--force", "--detach"], cwd=str(db.parent), env=env,
                       capture_output=True, text=True, timeout=300)
    cli_s = time.perf_counter() - t0
    cli_cpu = _children_cpu() - c0
    if p.returncode != 0:
        raise RuntimeError(f"gpt2-tui eval failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    job = p.stdout.strip().splitlines()[-1].strip()
    jdir = run_dir(db, job)
    step, t_step = wait_for(jdir / "events.jsonl", lambda e: e.get("type") in ("step", "end"), timeout)
    _, _, supervisor_cpu = _supervisor(jdir)
    wait_exit(jdir, 120)
    if not step or step["type"] != "step":
        raise RuntimeError(f"eval job {job} gave {step}; see {jdir}")
    phases = _startup_lines([f for f in jdir.rglob("*") if f.is_file() and f.suffix in (".log", "")])
    out: dict[str, Any] = {"job": job, "load1": load, "cli_s": cli_s, "cli_cpu_s": cli_cpu,
                           "first_batch_s": t_step - t0, "supervisor_cpu_s": supervisor_cpu}
    if phases:
        out["worker_startup_s"] = phases[0]["total"]
        out["worker_startup_cpu_s"] = phases[0]["cpu"]
        out["worker_phases"] = phases[0]
        # the worker's line is written at its first batch: CLI, supervisor, worker
        out["critical_cpu_s"] = critical_cpu([cli_cpu, supervisor_cpu, phases[0]["cpu"]])
    return out


def tokenise(data: Path, cache: Path) -> dict[str, Any]:
    p = subprocess.run([PY, "-c", TOKENISE, str(ROOT / "assets" / "gpt2-tiny"), str(data / "train.tsv")],
                       env=bench_env(1, GPT2_TUI_CACHE=str(cache)), capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


ARM_ENV = {"lean": {}, "plain": {PLAIN_ENV: "1"}}
LAUNCH_KEYS = ("cli_s", "cli_cpu_s", "supervisor_started_launcher_s", "ranks_started_s", "rank_startup_s",
               "rank_startup_cpu_s", "launcher_cpu_s", "supervisor_cpu_s", "start_event_s", "first_step_s",
               "critical_cpu_s", "load1")
EVAL_KEYS = ("cli_s", "cli_cpu_s", "supervisor_cpu_s", "worker_startup_s", "worker_startup_cpu_s", "first_batch_s",
             "critical_cpu_s", "load1")


def _phase_medians(outs: list[dict[str, Any]], key: str) -> str:
    names = [k for k in outs[0].get(key, {}) if k not in ("total", "cpu") and not k.endswith("_cpu")]
    parts = []
    for n in names:
        w = summary([o[key][n] for o in outs if key in o])["median"]
        c = summary([o[key][f"{n}_cpu"] for o in outs if key in o])["median"]
        parts.append(f"{n} {w:.2f}/{c:.2f}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, launch and eval on the sample")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 1)")
    ap.add_argument("--arms", default="lean,plain", help="comma list of lean, plain (default both)")
    ap.add_argument("--parts", default=None, help="comma list of launch, eval, tokenise (default launch,eval; "
                                                  "tokenise adds the 67,349-row runs)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rounds = a.rounds or (1 if a.quick else 5)
    arms = [x for x in a.arms.split(",") if x]
    parts = set((a.parts or "launch,eval").split(","))
    if a.quick:
        parts.discard("tokenise")
    res: dict[str, Any] = {"machine": machine(), "rounds": rounds, "arms": arms, "parts": sorted(parts)}
    print(f"start-up, {rounds} round(s), arms {arms}; machine {res['machine']}")
    with tempfile.TemporaryDirectory(prefix="bench-trainstart-") as td:
        tmp = Path(td)
        # --- launch to first step and eval to first batch, arms alternating (ab, ba, ...), warm token cache
        cache = tmp / "launchcache"
        warm = launch_to_first_step(tmp, SAMPLE, cache, "warmup", a.timeout, {})  # fills the cache
        print(f"  (warm-up launch: first step {warm['first_step_s']:.2f} s)", flush=True)
        launches: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
        evals: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
        for r in range(rounds):
            order = arms if r % 2 == 0 else arms[::-1]
            for arm in order:
                env = ARM_ENV[arm]
                if "launch" in parts or "eval" in parts:
                    out = launch_to_first_step(tmp, SAMPLE, cache, f"{arm}-{r}", a.timeout, env)
                    launches[arm].append(out)
                    print(f"  {arm:<5} round {r + 1}: load {out['load1']:.2f}; CLI {out['cli_s']:.2f} s "
                          f"(CPU {out['cli_cpu_s']:.2f}); start {out['start_event_s']:.2f} s; first step "
                          f"{out['first_step_s']:.2f} s; rank 0 start-up {out.get('rank_startup_s', 0):.2f} s "
                          f"(CPU {out.get('rank_startup_cpu_s', 0):.2f})", flush=True)
                if "eval" in parts:
                    last = launches[arm][-1]
                    ev = eval_to_first_batch(Path(last["db"]), last["run_id"], tmp, a.timeout, env)
                    evals[arm].append(ev)
                    print(f"  {arm:<5} round {r + 1}: eval: load {ev['load1']:.2f}; CLI {ev['cli_s']:.2f} s; "
                          f"first batch {ev['first_batch_s']:.2f} s; worker start-up "
                          f"{ev.get('worker_startup_s', 0):.2f} s (CPU {ev.get('worker_startup_cpu_s', 0):.2f})",
                          flush=True)
        res["launch"], res["eval"] = {}, {}
        print("launch (gpt2-tui train --detach, offline preset, 2 CPU ranks, warm token cache) -> first step "
              "event; target <= 4 s:")
        for arm in arms:
            outs = launches[arm]
            if not outs or "launch" not in parts:
                continue
            s = res["launch"][arm] = {k: summary([o.get(k) for o in outs]) for k in LAUNCH_KEYS}
            res["launch"][arm]["runs"] = outs
            print(f"  {arm:<5} first step {fmt_summary(s['first_step_s'], ' s', 2)}; load {fmt_summary(s['load1'], '', 2)}")
            print(f"        serial chain's CPU (CLI + supervisor + launcher + rank 0 + first step): "
                  f"{fmt_summary(s['critical_cpu_s'], ' s', 2)}")
            print(f"        CLI {fmt_summary(s['cli_s'], ' s', 2)} (CPU {s['cli_cpu_s']['median']:.2f}); launcher "
                  f"started {s['supervisor_started_launcher_s']['median']:.2f} s, its CPU "
                  f"{(s['launcher_cpu_s']['median'] or 0):.2f} s; ranks started {s['ranks_started_s']['median']:.2f} s; "
                  f"rank 0 start-up {s['rank_startup_s']['median']:.2f} s (CPU {s['rank_startup_cpu_s']['median']:.2f})")
            print(f"        rank 0 phases, wall/CPU s (medians): {_phase_medians(outs, 'rank_phases')}")
        if len(arms) == 2 and all(res["launch"].get(x) for x in arms):
            ratio = summary([b["first_step_s"] / p["first_step_s"] for b, p in zip(launches[arms[0]], launches[arms[1]], strict=False)])
            res["launch"]["ratio"] = ratio
            print(f"  {arms[0]} / {arms[1]} first step, paired by round: {fmt_summary(ratio, '', 2)}")
        if "eval" in parts:
            print("eval job (gpt2-tui eval --detach, classify, sample dev.tsv) -> first batch event; target <= 3 s:")
            for arm in arms:
                outs = evals[arm]
                if not outs:
                    continue
                s = res["eval"][arm] = {k: summary([o.get(k) for o in outs]) for k in EVAL_KEYS}
                res["eval"][arm]["runs"] = outs
                print(f"  {arm:<5} first batch {fmt_summary(s['first_batch_s'], ' s', 2)}; CLI "
                      f"{s['cli_s']['median']:.2f} s (CPU {s['cli_cpu_s']['median']:.2f}); worker start-up "
                      f"{fmt_summary(s['worker_startup_s'], ' s', 2)} (CPU {s['worker_startup_cpu_s']['median']:.2f})")
                print(f"        serial chain's CPU (CLI + supervisor + worker to its first batch): "
                      f"{fmt_summary(s['critical_cpu_s'], ' s', 2)}")
                print(f"        worker phases, wall/CPU s (medians): {_phase_medians(outs, 'worker_phases')}")

        if "tokenise" in parts:
            tokenise_part(tmp, rounds, a.timeout, res)
    write_json(a.json, res)
    return 0


def tokenise_part(tmp: Path, rounds: int, timeout: float, res: dict[str, Any]) -> None:
    full = write_sst2_like(tmp / "full", SST2_TRAIN_ROWS)
    # cold then warm (warm needs cold): each round uses a fresh cache folder for its cold run and reuses it
    tok: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for r in range(rounds):
        cache = tmp / f"tokcache-{r}"
        tok["cold"].append(tokenise(full, cache))
        tok["warm"].append(tokenise(full, cache))
        assert not tok["cold"][-1]["from_cache"] and tok["warm"][-1]["from_cache"]
    for k in ("cold", "warm"):
        res[f"tokenise_{k}_s"] = summary([x["encode_s"] for x in tok[k]])
        res[f"tokenise_{k}_cpu_s"] = summary([x["encode_cpu_s"] for x in tok[k]])
    res["tokenise_import_s"] = summary([x["import_s"] for x in tok["cold"] + tok["warm"]])
    res["tokens_per_row"] = tok["cold"][0]["mean_tokens"]
    print(f"tokenising {SST2_TRAIN_ROWS:,} rows (mean {res['tokens_per_row']:.1f} tokens), core.train.encode_split:")
    print(f"  cold cache: {fmt_summary(res['tokenise_cold_s'], ' s', 2)}; CPU {fmt_summary(res['tokenise_cold_cpu_s'], ' s', 2)}")
    print(f"  warm cache: {fmt_summary(res['tokenise_warm_s'], ' s', 3)}; CPU {fmt_summary(res['tokenise_warm_cpu_s'], ' s', 3)}")
    print(f"  (importing paddle, paddlenlp (as the workers do) + core.train before that: "
          f"{fmt_summary(res['tokenise_import_s'], ' s', 2)})")
    # the launch on the full-size split, cold cache then warm
    cache = tmp / "launchcache-67k"
    shutil.rmtree(cache, ignore_errors=True)
    res["launch_67k"] = {}
    for r, kind in enumerate(["cold"] + ["warm"] * max(1, rounds - 1)):
        out = launch_to_first_step(tmp, full, cache, f"67k-{r}", timeout, {})
        res["launch_67k"].setdefault(kind, []).append(out)
        print(f"  launch 67k {kind} round {r + 1}: CLI {out['cli_s']:.2f} s, start event {out['start_event_s']:.2f} s, "
              f"first step {out['first_step_s']:.2f} s (load {out['load1']:.2f})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
