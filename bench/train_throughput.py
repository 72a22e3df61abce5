"""Training throughput: our path (core/train.py) against the reference path (PaddleNLP's Trainer).

Both sides train the same model on the same SST-2-like data (bench/sst2_like.py) with the same batch
size, learning rate schedule (linear, 10 % warm-up), AdamW (weight decay 0.01, clip 1.0), fp32, seed and
number of steps, one process, world size 1, the same math thread count, and each logs every step:

- ours: ``core.train.Trainer`` run in-process exactly as ``python core/train.py ...`` would (rank 0,
  world 1): batches cut into length-close micro-batches (core.batching), token cache, step events batched
  at ~1 s flushes.
- reference: run_glue's setup: ``paddlenlp.trainer.Trainer`` + ``DataCollatorWithPadding`` (random
  batches, each padded to its longest row), ``logging_steps=1``, no length grouping.
  ``report_to=none``: VisualDL logging would slow the reference down, which would flatter us.

Throughput is measured in steady state: the wall time from the end of step W to the end of the last
step (so start-up, the first W steps, the final eval and the checkpoint are outside), samples in that
window divided by it. The sides alternate (ABBA...) over several rounds, each a fresh subprocess, and
the script prints medians, spread and the ratio ours / reference (median of the per-round ratios too).
Dev accuracy after the same number of steps comes from each side's own evaluation of dev.tsv.

Run:  python bench/train_throughput.py [--quick] [--models tiny,small4] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._arms import Settings, run_ours, run_ref, use_sampler  # noqa: E402
from bench._common import PY, ROOT, bench_env, fmt_summary, machine, summary, write_json  # noqa: E402
from bench.sst2_like import write_sst2_like  # noqa: E402

TINY = ROOT / "assets" / "gpt2-tiny"
# A ~4-layer GPT-2 for the comparison where compute, not Python overhead, dominates a step.
SMALL4 = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
              max_position_embeddings=256, type_vocab_size=1, hidden_dropout_prob=0.1,
              attention_probs_dropout_prob=0.1, initializer_range=0.02)
LR = {"tiny": 3e-3, "small4": 1e-3}
# Steps per run. The reference takes ~3 s a step on small4 on this 2-core box, so its runs stay short;
# 30 steps are enough for a steady-state rate, not for a meaningful accuracy (tiny's 120 are).
STEPS = {"tiny": 120, "small4": 30}


# --------------------------------------------------------------------------- workers (subprocesses)
def build_small4(out: Path, seed: int = 1234) -> None:
    import paddle
    from paddlenlp.transformers import GPTConfig, GPTForCausalLM, GPTTokenizer

    tok = GPTTokenizer.from_pretrained(str(TINY))
    eos = int(tok.eos_token_id)
    vocab = len(tok.get_vocab())
    paddle.seed(seed)
    cfg = GPTConfig(vocab_size=vocab, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos, **SMALL4)
    model = GPTForCausalLM(cfg)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    n = sum(int(p.numel()) for p in model.parameters())
    print(json.dumps({"parameters": n}))


def _window(times: list[float], cpus: list[float], samples: list[int], warmup: int) -> dict[str, Any]:
    """Steady state: from the end of step ``warmup`` to the end of the last step.

    Also per CPU-second of the process: with one math thread, CPU time is the work done, and it is not
    inflated by waiting for a core when other jobs share the machine.
    """
    w = min(max(1, warmup), len(times) - 1)
    dt = times[-1] - times[w - 1]
    dc = cpus[-1] - cpus[w - 1]
    n = sum(samples[w:])
    return {"window_steps": len(times) - w, "window_s": dt, "samples_per_s": n / dt if dt > 0 else None,
            "window_cpu_s": dc, "samples_per_cpu_s": n / dc if dc > 0 else None}


def _pad_stats(shapes: list[tuple[int, int, int]]) -> dict[str, float]:
    """shapes: (rows, padded tokens computed, real tokens) per step."""
    padded = [tokens - real for _, tokens, real in shapes]
    total = [tokens for _, tokens, _ in shapes]
    return {"mean_batch_tokens": statistics.fmean(total), "mean_pad_tokens": statistics.fmean(padded),
            "pad_fraction": sum(padded) / sum(total), "mean_real_tokens": statistics.fmean(r for _, _, r in shapes)}


def _settings(a: argparse.Namespace) -> Settings:
    return Settings(model=a.model, data=a.data, tmp=a.tmp, steps=a.steps, batch=a.batch, eval_batch=a.eval_batch,
                    lr=a.lr, seed=a.seed)


def _worker(a: argparse.Namespace, run: Any) -> dict[str, Any]:
    """One side, timed at every step (bench/_arms.py runs it); accuracy from its own evaluation at the end."""
    times: list[float] = []
    cpus: list[float] = []
    shapes: list[tuple[int, int, int]] = []

    def on_step(rows: int, padded: int, real: int) -> None:
        times.append(time.perf_counter())
        cpus.append(time.process_time())
        shapes.append((rows, padded, real))

    res = run(_settings(a), on_step=on_step)
    return {**res, "steps": len(times), **_window(times, cpus, [b for b, _, _ in shapes], a.warmup),
            **_pad_stats(shapes)}


def worker_ours(a: argparse.Namespace) -> dict[str, Any]:
    """Our trainer. ``--sampler`` changes its batching rule (bench/_arms.py use_sampler: random, chunkN, costN,
    nosplit), everything else unchanged: to tell what the batching does to speed and accuracy from the rest of
    our path."""
    use_sampler(a.sampler)
    return _worker(a, run_ours)


def worker_ref(a: argparse.Namespace) -> dict[str, Any]:
    return _worker(a, run_ref)


# --------------------------------------------------------------------------- driver
def run_worker(kind: str, model: Path, data: Path, tmp: Path, a: argparse.Namespace, lr: float,
               seed: int, steps: int, warmup: int) -> dict[str, Any]:
    out = tmp / f"{kind}-{time.time_ns()}.json"
    extra = ["--sampler", kind.removeprefix("ours-")] if kind.startswith("ours-") else []
    worker = "ref" if kind == "ref" else "ours"
    cmd = [PY, str(Path(__file__).resolve()), "--worker", worker, *extra, "--model", str(model), "--data", str(data),
           "--tmp", str(tmp), "--steps", str(steps), "--warmup", str(warmup), "--batch", str(a.batch),
           "--eval-batch", str(a.eval_batch), "--lr", str(lr), "--seed", str(seed), "--result", str(out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=bench_env(a.threads, GPT2_TUI_CACHE=str(tmp / "cache")), capture_output=True,
                       text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if p.returncode != 0 or not out.exists():
        tail = (p.stdout + p.stderr)[-3000:]
        raise RuntimeError(f"{kind} worker failed (exit {p.returncode}):\n{tail}")
    res = json.loads(out.read_text())
    res["process_wall_s"] = wall
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: gpt2-tiny only, 1 round, 40 steps")
    ap.add_argument("--models", default=None, help="comma list of tiny, small4 (default both; quick: tiny)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per run (default: tiny 120, small4 30; "
                    "quick 40)")
    ap.add_argument("--warmup", type=int, default=None, help="steps left out of the timed window (default 10 %%, >= 5)")
    ap.add_argument("--batch", type=int, default=32, help="per-device train batch size (run_glue: 32)")
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=8000, help="SST-2-like train rows (--full-data: 67,349)")
    ap.add_argument("--full-data", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="math threads per process (OMP_NUM_THREADS)")
    ap.add_argument("--seed", type=int, default=42, help="seed of round 1; round r uses seed + r - 1 on both sides")
    ap.add_argument("--json", help="write all results here")
    # worker mode (internal)
    ap.add_argument("--arms", default="ours,ref",
                    help="comma list of sides: ours, ref, ours-<sampler>: our trainer with another batching rule, "
                         "_-joined parts of random (run_glue's batches), chunkN (sort window of N batches), costN "
                         "(call cost N tokens), nosplit (one call a step); default ours,ref")
    ap.add_argument("--worker", choices=["ours", "ref", "build"], help=argparse.SUPPRESS)
    ap.add_argument("--sampler", default="grouped", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker:
        if a.worker == "build":
            build_small4(Path(a.model))
            return 0
        res = worker_ref(a) if a.worker == "ref" else worker_ours(a)
        Path(a.result).write_text(json.dumps(res))
        return 0

    if a.quick:
        a.models, a.rounds, a.steps = a.models or "tiny", 1, a.steps or 40
    a.models = a.models or "tiny,small4"
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    results: dict[str, Any] = {"machine": machine(), "args": {k: v for k, v in vars(a).items() if v is not None},
                               "models": {}}
    print(f"train throughput: ours vs PaddleNLP Trainer; batch {a.batch}, {a.rounds} round(s), {a.threads} "
          f"thread(s); machine {results['machine']}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as td:
        tmp = Path(td)
        data = write_sst2_like(tmp / "data", 67_349 if a.full_data else a.n_train)
        for name in models:
            if name == "tiny":
                model = TINY
            elif name == "small4":
                model = tmp / "small4"
                p = subprocess.run([PY, str(Path(__file__).resolve()), "--worker", "build", "--model", str(model)],
                                   env=bench_env(a.threads), capture_output=True, text=True, timeout=600)
                if p.returncode != 0:
                    raise RuntimeError(f"building small4 failed:\n{(p.stdout + p.stderr)[-3000:]}")
            else:
                raise SystemExit(f"unknown model {name!r}: use tiny or small4")
            arms = [x.strip() for x in a.arms.split(",") if x.strip()]
            bad = [x for x in arms if x not in ("ours", "ref") and not re.fullmatch(r"ours-[a-z0-9_]+", x)]
            if bad:
                raise SystemExit(f"unknown arm(s) {bad}: use ours, ref, ours-<sampler> (random, chunkN, costN, nosplit)")
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in arms}
            steps = a.steps or STEPS[name]
            warmup = a.warmup if a.warmup is not None else max(5, steps // 10)
            print(f"[{name}] {steps} steps a run, timed from the end of step {warmup}", flush=True)
            for r in range(a.rounds):
                order = arms if r % 2 == 0 else arms[::-1]
                for kind in order:
                    res = run_worker(kind, model, data, tmp, a, LR[name], a.seed + r, steps, warmup)
                    runs[kind].append(res)
                    print(f"  {name} round {r + 1} {kind:>4}: {res['samples_per_s']:.1f} samples/s, "
                          f"acc {res['accuracy']:.4f}, pad {res['pad_fraction']:.0%}, "
                          f"process {res['process_wall_s']:.1f} s", flush=True)
            results["models"][name] = {"steps": steps, "warmup": warmup, **report(name, runs)}
    write_json(a.json, results)
    return 0


LABELS = {"ours": "ours (length split)", "ref": "reference (random)", "ours-random": "ours, random batches",
          "ours-chunk50_nosplit": "ours, window 50, 1 call"}


def report(name: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-arm medians; every arm against the reference (wall, CPU, paired per round); accuracy; padding."""
    out: dict[str, Any] = {"runs": runs, "arms": {}}
    for k, rs in runs.items():
        out["arms"][k] = {"samples_per_s": summary([r["samples_per_s"] for r in rs]),
                          "samples_per_cpu_s": summary([r["samples_per_cpu_s"] for r in rs]),
                          "accuracy": summary([r["accuracy"] for r in rs]),
                          "eval_loss": summary([r["eval_loss"] for r in rs]),
                          "padding": {m: statistics.fmean(r[m] for r in rs) for m in
                                      ("mean_batch_tokens", "mean_pad_tokens", "pad_fraction", "mean_real_tokens")}}
    print(f"\n[{name}] steady state: samples/s (wall) | samples per CPU-second of the training process")
    for k, arm in out["arms"].items():
        print(f"  {LABELS.get(k, k):<24} {fmt_summary(arm['samples_per_s'])} | {fmt_summary(arm['samples_per_cpu_s'])}")
    ref = out["arms"].get("ref")
    for k, arm in out["arms"].items():
        if k == "ref" or ref is None:
            continue
        ratio = arm["samples_per_s"]["median"] / ref["samples_per_s"]["median"]
        ratio_c = arm["samples_per_cpu_s"]["median"] / ref["samples_per_cpu_s"]["median"]
        paired = summary([o["samples_per_s"] / f["samples_per_s"] for o, f in zip(runs[k], runs["ref"], strict=True)])
        arm.update(ratio=ratio, ratio_cpu=ratio_c, paired_ratio=paired)
        verdict = f"; target >= 1.5x: {'MET' if min(ratio, ratio_c) >= 1.5 else 'NOT MET'}" if k == "ours" else ""
        print(f"  {LABELS.get(k, k)} / reference: {ratio:.2f}x wall (per-round {paired['min']:.2f}x-{paired['max']:.2f}x), "
              f"{ratio_c:.2f}x CPU{verdict}")
    print("  dev accuracy after the same steps (per round) and eval loss:")
    for k, arm in out["arms"].items():
        accs = " / ".join(f"{r['accuracy']:.4f}" for r in runs[k])
        print(f"    {LABELS.get(k, k):<24} {accs}  (median {arm['accuracy']['median']:.4f}; eval loss median "
              f"{arm['eval_loss']['median']:.4f})")
    print("  padding: mean tokens a batch, of them padding:")
    for k, arm in out["arms"].items():
        p = arm["padding"]
        print(f"    {LABELS.get(k, k):<24} {p['mean_batch_tokens']:.0f} tokens, {p['mean_pad_tokens']:.0f} padding "
              f"({p['pad_fraction']:.0%}); real tokens {p['mean_real_tokens']:.0f}")
    return out


if __name__ == "__main__":
    sys.exit(main())
