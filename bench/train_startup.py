"""Training start-up: launch to first step event, and tokenising SST-2's 67,349 train rows cold and warm.

1. Launch to first step (gpt2-tiny): ``gpt2-tui train --detach`` (offline preset, 2 CPU ranks under
   paddle.distributed.launch) on the bundled sample, then watch ``events.jsonl``: time from starting the
   CLI to the CLI returning, to the ``start`` event (model loaded, data tokenised) and to the first
   ``step`` event (what a user sees as the first point). Step events are written at flushes (~1 s or
   10 steps), so the first step event comes after up to 10 steps. Cold token cache on the first
   round of each kind, warm after; the run is then stopped through its stop file.
   The same on a 67,349-row SST-2-like train.tsv, cold and warm: the cold case pays for tokenising.
2. Tokenising the 67,349-row train split (bench/sst2_like.py --full) with the gpt2-tiny tokenizer
   through ``core.train.encode_split`` (what the trainer does), in a fresh process each time:
   cold (empty GPT2_TUI_CACHE) and warm (the cache filled by the cold run).

Run:  python bench/train_startup.py [--quick] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import PY, ROOT, bench_env, fmt_summary, machine, summary, write_json  # noqa: E402
from bench._runs import cli_env, launch, run_dir, stop, wait_exit, wait_for  # noqa: E402
from bench.sst2_like import SST2_TRAIN_ROWS, write_sst2_like  # noqa: E402

SAMPLE = ROOT / "assets" / "sst2-sample"

TOKENISE = r"""
import json, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
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


def launch_to_first_step(tmp: Path, data: Path, cache: Path, tag: str, timeout: float) -> dict[str, Any]:
    db = tmp / f"{tag}.db"
    env = cli_env(tmp, GPT2_TUI_CACHE=str(cache))
    t0 = time.perf_counter()
    run_id, cli_s = launch(db, data, 100000, env, name=tag)
    rdir = run_dir(db, run_id)
    start, t_start = wait_for(rdir / "events.jsonl", lambda e: e.get("type") in ("start", "end"), timeout)
    step, t_step = wait_for(rdir / "events.jsonl", lambda e: e.get("type") in ("step", "end"), timeout)
    stop(rdir)
    wait_exit(rdir, 120)
    if not start or start["type"] != "start" or not step or step["type"] != "step":
        raise RuntimeError(f"run {run_id} gave {start} / {step}; see {rdir}")
    return {"cli_s": cli_s, "start_event_s": t_start - t0, "first_step_s": t_step - t0,
            "first_step_number": step["step"]}


def tokenise(data: Path, cache: Path) -> dict[str, Any]:
    p = subprocess.run([PY, "-c", TOKENISE, str(ROOT / "assets" / "gpt2-tiny"), str(data / "train.tsv")],
                       env=bench_env(1, GPT2_TUI_CACHE=str(cache)), capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, sample data only for the launch")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rounds = a.rounds or (1 if a.quick else 3)
    res: dict[str, Any] = {"machine": machine(), "rounds": rounds}
    print(f"training start-up, {rounds} round(s); machine {res['machine']}")
    with tempfile.TemporaryDirectory(prefix="bench-trainstart-") as td:
        tmp = Path(td)
        full = write_sst2_like(tmp / "full", SST2_TRAIN_ROWS)
        # --- tokenising, cold then warm, alternating which comes first is impossible (warm needs cold): each
        # round uses a fresh cache folder for its cold run and reuses it for its warm run.
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
        print(f"  (importing paddlenlp + core.train before that: {fmt_summary(res['tokenise_import_s'], ' s', 2)})")

        # --- launch to first step: the bundled sample and the full-size split, cold cache then warm.
        kinds = [("sample", SAMPLE)] if a.quick else [("sample", SAMPLE), ("sst2-67k", full)]
        launches: dict[str, list[dict[str, Any]]] = {}
        for r in range(rounds):
            for name, data in kinds:
                cache = tmp / f"launchcache-{name}"
                if r == 0:
                    shutil.rmtree(cache, ignore_errors=True)
                key = f"{name}/{'cold' if r == 0 else 'warm'}"
                out = launch_to_first_step(tmp, data, cache, f"{name}-{r}", a.timeout)
                launches.setdefault(key, []).append(out)
                print(f"  launch {key:<14} round {r + 1}: CLI returned {out['cli_s']:.2f} s, start event "
                      f"{out['start_event_s']:.2f} s, first step event {out['first_step_s']:.2f} s "
                      f"(step {out['first_step_number']})", flush=True)
        res["launch"] = {}
        print("launch (gpt2-tui train --detach, offline preset, 2 CPU ranks) to the first step event:")
        for key, outs in launches.items():
            res["launch"][key] = {k: summary([o[k] for o in outs]) for k in ("cli_s", "start_event_s", "first_step_s")}
            s = res["launch"][key]
            print(f"  {key:<14} CLI {fmt_summary(s['cli_s'], ' s', 2)}; start {fmt_summary(s['start_event_s'], ' s', 2)}; "
                  f"first step {fmt_summary(s['first_step_s'], ' s', 2)}")
    write_json(a.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
