"""GPT-2 Medium's size through the real path on the CPU: train, checkpoint, eval, resume.

The reference model (354.9 M parameters with the 2-class head) cannot be downloaded here, so this script
builds a local PaddleNLP folder with GPT-2 Medium's architecture (24 layers, width 1024, 16 heads, FFN
4096, vocab 50304, 1024 positions) and random weights (seeded; never committed), with the bundled
gpt2-tiny tokenizer (its ids fit in the larger vocabulary). Then, through the installed ``gpt2-tui``:

1. ``train`` for a few steps with 2 CPU ranks, a checkpoint at step 2 and at the end;
2. ``eval`` of the latest checkpoint (classify, on a short dev file);
3. ``train --resume`` from it for two more steps.

It records the peak RSS of every rank (sampled from the process tree every 0.2 s), the time to save a
checkpoint (from the step event written just before the save to the checkpoint event), each job's
start-up (process start to the ``start`` event: imports and loading the weights), and the checkpoint's
size with and without the optimizer state. Prints a table and, with ``--out``, JSON.

    python bench/medium_cpu.py [--steps 4] [--work DIR] [--out results.json]

About 10-15 minutes on 2 cores, ~16 GB of memory at its peak (two ranks each hold the weights, the
gradients and AdamW's two moments: 4 x 1.4 GB, plus activations).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import ROOT, bench_env  # noqa: E402

MEDIUM = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
              max_position_embeddings=1024, vocab_size=50304, type_vocab_size=1,
              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)
TINY = ROOT / "assets" / "gpt2-tiny"
SAMPLE = ROOT / "assets" / "sst2-sample"
BUILD = """
import json, sys
import paddle
from paddlenlp.transformers import GPTConfig, GPTForCausalLM, GPTTokenizer
out, tiny, arch = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tok = GPTTokenizer.from_pretrained(tiny)
eos = tok.convert_tokens_to_ids("<|endoftext|>")
paddle.seed(1234)
cfg = GPTConfig(**arch, eos_token_id=eos, bos_token_id=eos, pad_token_id=eos)
model = GPTForCausalLM(cfg)
n = sum(int(p.numel()) for p in model.parameters())
model.save_pretrained(out)
tok.save_pretrained(out)
print(json.dumps({"parameters": n}))
"""


def build_model(folder: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", BUILD, str(folder), str(TINY), json.dumps(MEDIUM)],
                         env=bench_env(threads=2), capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    info["build_s"] = round(time.perf_counter() - t0, 1)
    return info


def make_data(folder: Path, dev_rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / "train.tsv", folder / "train.tsv")
    lines = (SAMPLE / "dev.tsv").read_text().splitlines()
    (folder / "dev.tsv").write_text("\n".join(lines[: dev_rows + 1]) + "\n")


class RssSampler:
    """Peak RSS of every paddle rank under a process tree (sampled every 0.2 s)."""

    def __init__(self, root_pid: int):
        self.root = root_pid
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = psutil.Process(self.root).children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    cmd = " ".join(p.cmdline())
                    # the ranks and the evaluator, not paddle's launcher (its argv names the script too)
                    if ("core/train.py" in cmd or "core/evaluate.py" in cmd) and "distributed.launch" not in cmd:
                        self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.2)

    def stop(self) -> list[int]:
        self._stop.set()
        self._t.join()
        return sorted(self.peak.values(), reverse=True)


def gpt2_tui(db: Path, *args: str, cwd: Path) -> tuple[dict[str, Any], list[int], float]:
    exe = shutil.which("gpt2-tui") or str(Path(sys.executable).parent / "gpt2-tui")
    t0 = time.perf_counter()
    p = subprocess.Popen([exe, "--db", str(db), *args, "--json"], cwd=cwd, env=bench_env(threads=None),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = RssSampler(p.pid)
    out, err = p.communicate()
    peaks = sampler.stop()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"gpt2-tui {' '.join(args)} failed ({p.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), peaks, wall


def events(run_dir: str) -> list[dict[str, Any]]:
    out = []
    for line in (Path(run_dir) / "events.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def startup_s(run: dict[str, Any], evs: list[dict[str, Any]]) -> float | None:
    start = next((e for e in evs if e["type"] == "start"), None)
    t0 = run.get("created_at")  # the run's row is made just before its processes start
    return round(start["t"] - t0, 1) if start and t0 else None


def save_times(evs: list[dict[str, Any]]) -> list[float]:
    """Checkpoint event time minus the time of the last event before it (the step flushed just before)."""
    out = []
    for i, e in enumerate(evs):
        if e["type"] == "checkpoint" and i:
            prev = next((p for p in reversed(evs[:i]) if p["type"] in ("step", "eval")), None)
            if prev:
                out.append(round(e["t"] - prev["t"], 1))
    return out


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2, help="per-rank batch size")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--dev_rows", type=int, default=32)
    ap.add_argument("--work", help="working folder (default: a temporary one, removed at the end)")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="medium-cpu-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"steps": a.steps, "batch_per_rank": a.batch, "seq": a.seq, "ranks": 2}
    t_all = time.perf_counter()
    try:
        model = work / "gpt2-medium-arch"
        if not (model / "model_state.pdparams").exists():
            res["model"] = build_model(model)
        res["model_file_bytes"] = (model / "model_state.pdparams").stat().st_size
        data = work / "data"
        make_data(data, a.dev_rows)
        db = work / "runs.db"
        common = ["--per_device_train_batch_size", str(a.batch), "--per_device_eval_batch_size", "8",
                  "--max_seq_length", str(a.seq), "--logging_steps", "1", "--save_steps", "2",
                  "--eval_steps", str(10**6), "--devices", "cpu:2", "--learning_rate", "1e-5"]
        run, peaks, wall = gpt2_tui(db, "train", "--model_name_or_path", str(model), "--data_dir", str(data),
                                    "--max_steps", str(a.steps), "--run_name", "medium-cpu", *common, cwd=work)
        evs = events(run["run_dir"])
        ck = Path(run["checkpoints"][-1]["path"])
        res["train"] = {"status": run["status"], "wall_s": round(wall, 1), "peak_rss_per_rank_gb":
                        [round(p / 2**30, 2) for p in peaks], "startup_s": startup_s(run, evs),
                        "save_s": save_times(evs), "steps": run["summary"]["last_step"]}
        res["checkpoint"] = {"path": str(ck), "bytes": du(ck),
                             "optimizer_bytes": (ck / "optimizer.pdopt").stat().st_size
                             if (ck / "optimizer.pdopt").exists() else 0}
        ev, peaks, wall = gpt2_tui(db, "eval", run["id"], "--checkpoint", "latest", "--batch_size", "8", cwd=work)
        res["eval"] = {"accuracy": ev.get("accuracy"), "n": ev.get("n"), "wall_s": round(wall, 1),
                       "peak_rss_gb": [round(p / 2**30, 2) for p in peaks]}
        rr, peaks, wall = gpt2_tui(db, "train", "--resume", run["id"], "--max_steps", str(a.steps + 2), cwd=work)
        evs = events(rr["run_dir"])
        res["resume"] = {"status": rr["status"], "wall_s": round(wall, 1), "startup_s": startup_s(rr, evs),
                         "peak_rss_per_rank_gb": [round(p / 2**30, 2) for p in peaks],
                         "first_step": min((e["step"] for e in evs if e["type"] == "step"), default=None),
                         "last_step": rr["summary"]["last_step"]}
    finally:
        res["total_s"] = round(time.perf_counter() - t_all, 1)
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
