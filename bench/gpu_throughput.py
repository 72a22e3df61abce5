"""GPU throughput of GPT-2 Medium fine-tuning: fp32 reference settings against the fast path.

GPT-2 Medium's architecture with random weights (nothing is downloaded): 24 layers, hidden 1024,
16 heads, FFN 4096, vocab 50304, 1024 positions, a 2-class head (354.9 M parameters), trained as
core/train.py trains it, on SST-2-like lengths (bench/sst2_like.py's word counts x 1.2 GPT-2 tokens a
word, max_seq_length 128; random token ids, never EOS, right-padded with EOS).

Configurations (each at batch 32, 64, 128, 256):
- ``fp32``: the reference settings: fp32, dropout 0.1, unfused attention, random batches padded to
  their longest row (run_glue + DataCollatorWithPadding).
- ``fast-random``: the fast path except batching: bf16 AMP O2 with master grads (``paddle.amp.decorate``
  level O2, ``master_grad=True``, as core/train.py ``build_optimizer``), flash attention, fused QKV,
  dropout 0 (FA3 on Hopper refuses dropout > 0), random batches. Separates precision/kernels from padding.
- ``fast``: the whole fast path: the above plus length-grouped batches (core.batching.global_batches).
Where flash attention fails (no kernel for this GPU or build), the configuration is retried without it
and recorded as ``<name>-noflash``.

Per configuration: warm-up steps, then timed steps between device synchronisations. Reported:
samples/s, tokens/s (real tokens; padded tokens/s too), peak memory
(``paddle.device.cuda.max_memory_allocated``) and model FLOPs utilisation,
MFU = 6 x parameters x real tokens/s / peak dense bf16 FLOP/s (H100/H200: 989 TFLOP/s; other GPUs:
``--peak-tflops``). The same peak is used for fp32, so fp32's MFU says how far it is from the bf16 peak.

Robust: every configuration runs in its own try block; an OOM or a missing kernel is recorded in the
results and the rest go on; larger batches of a configuration that ran out of memory are skipped; a
time budget (``--budget-s``, default 270 s) stops starting new configurations so one run fits 5 minutes.
On a machine without a CUDA GPU it prints why and exits with status 2 (no traceback), writing a JSON
that says so; ``--dry-run`` instead runs the whole code path on the CPU with a tiny model.

Run:  python bench/gpu_throughput.py --out results.json
      python bench/gpu_throughput.py --dry-run --out /tmp/dry.json   (CPU, ~1 minute)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EXIT_NO_GPU = 2
MEDIUM = dict(vocab_size=50304, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
              intermediate_size=4096, max_position_embeddings=1024, type_vocab_size=1, initializer_range=0.02,
              eos_token_id=50256, pad_token_id=50256, bos_token_id=50256)
TINY = dict(MEDIUM, vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=256, max_position_embeddings=256, eos_token_id=1023, pad_token_id=1023,
            bos_token_id=1023)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0}
TOKENS_PER_WORD = 1.2  # GPT-2's BPE on SST-2's lower-cased, space-tokenised English
CONFIGS = {
    "fp32": {"amp": False, "flash": False, "fuse_qkv": False, "dropout": 0.1, "grouped": False},
    "fast-random": {"amp": True, "flash": True, "fuse_qkv": True, "dropout": 0.0, "grouped": False},
    "fast": {"amp": True, "flash": True, "fuse_qkv": True, "dropout": 0.0, "grouped": True},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_results.json", help="results JSON (default gpu_results.json)")
    ap.add_argument("--batches", default=None, help="comma list of batch sizes (default 32,64,128,256; dry run 4,8)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per configuration")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration (at least)")
    ap.add_argument("--min-time", type=float, default=2.0, help="time each configuration at least this long (s)")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--rows", type=int, default=67_349, help="SST-2-like rows to draw batches from")
    ap.add_argument("--budget-s", type=float, default=270.0, help="start no configuration after this many seconds")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s (default: by GPU name)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, batches 4 and 8, 2 steps: exercise the code")
    a = ap.parse_args(argv)
    a.batch_list = [int(b) for b in (a.batches or ("4,8" if a.dry_run else "32,64,128,256")).split(",") if b.strip()]
    a.config_list = [c.strip() for c in a.configs.split(",") if c.strip()]
    unknown = [c for c in a.config_list if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    if a.dry_run:
        a.warmup, a.steps, a.min_time, a.rows = 1, 2, 0.0, 2000
    return a


def sst2_lengths(n: int, max_len: int, seed: int) -> list[int]:
    from bench.sst2_like import TRAIN_MEDIAN, TRAIN_SIGMA, draw_length

    r = random.Random(seed)
    return [max(1, min(max_len, round(draw_length(r, TRAIN_MEDIAN, TRAIN_SIGMA) * TOKENS_PER_WORD))) for _ in range(n)]


class Batches:
    """Endless batches of row indices: random (run_glue) or length-grouped (core.batching)."""

    def __init__(self, lengths: list[int], batch: int, grouped: bool, seed: int):
        import numpy as np

        self.lengths = np.asarray(lengths)
        self.batch, self.grouped, self.seed = batch, grouped, seed
        self.epoch = 0
        self._queue: list[list[int]] = []
        self._rng = np.random.default_rng(seed)

    def next(self) -> list[int]:
        if not self._queue:
            if self.grouped:
                from core.batching import global_batches

                # one call a step, rows of close length: the trainer's rule before its length split (a sort
                # window of 50 batches). What a call costs on a GPU against padding, which sets the split
                # (core.batching.CALL_COST_TOKENS), was measured on the CPU only.
                self._queue = global_batches(self.lengths, self.batch, 1, self.seed, self.epoch, chunk_batches=50)
            else:
                order = self._rng.permutation(len(self.lengths))
                self._queue = [order[i : i + self.batch].tolist() for i in range(0, len(order), self.batch)]
            self._queue = [b for b in self._queue if len(b) == self.batch] or self._queue
            self.epoch += 1
        return self._queue.pop()


def make_batch(lengths: Any, rows: list[int], vocab: int, eos: int, rng: Any) -> tuple[Any, Any, int, int]:
    """(input ids [b, longest] right-padded with EOS, labels, real tokens, padded tokens)."""
    import numpy as np

    lens = lengths[rows]
    longest = int(lens.max())
    ids = rng.integers(0, min(vocab, eos), size=(len(rows), longest))  # ids below EOS: never EOS inside a row
    ids[np.arange(longest)[None, :] >= lens[:, None]] = eos
    labels = rng.integers(0, 2, size=len(rows)).astype(np.int64)
    return ids, labels, int(lens.sum()), ids.size


def build(spec: dict[str, Any], base: dict[str, Any], use_flash: bool, lr: float = 2e-5) -> tuple[Any, Any]:
    """Model + optimizer as core/train.py builds them (AdamW, clip 1.0; O2 decorate with master grads)."""
    import paddle
    from paddlenlp.transformers import GPTConfig, GPTForSequenceClassification

    cfg = GPTConfig(**base, num_labels=2, hidden_dropout_prob=spec["dropout"],
                    attention_probs_dropout_prob=spec["dropout"], use_flash_attention=use_flash,
                    fuse_attention_qkv=spec["fuse_qkv"])
    paddle.seed(1234)
    model = GPTForSequenceClassification(cfg)
    model.train()
    no_decay = ("bias", "norm")
    decay = {p.name for n, p in model.named_parameters() if not any(k in n for k in no_decay)}
    opt = paddle.optimizer.AdamW(learning_rate=lr, parameters=model.parameters(), weight_decay=0.01,
                                 apply_decay_param_fun=lambda name: name in decay,
                                 grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    if spec["amp"]:
        model, opt = paddle.amp.decorate(models=model, optimizers=opt, level="O2", dtype=spec["amp_dtype"],
                                         master_grad=True, save_dtype="float32")
    return model, opt


def train_step(model: Any, opt: Any, ids: Any, labels: Any, spec: dict[str, Any]) -> Any:
    import paddle
    import paddle.nn.functional as F

    x, y = paddle.to_tensor(ids), paddle.to_tensor(labels)
    if spec["amp"]:
        with paddle.amp.auto_cast(level="O2", dtype=spec["amp_dtype"]):
            logits = model(x)
    else:
        logits = model(x)
    loss = F.cross_entropy(logits.astype("float32"), y)
    loss.backward()
    opt.step()
    opt.clear_grad()
    return loss.detach()


def sync(on_gpu: bool) -> None:
    import paddle

    if on_gpu:
        paddle.device.synchronize()


def is_oom(e: BaseException) -> bool:
    s = f"{type(e).__name__} {e}".lower()
    return "out of memory" in s or "resourceexhausted" in s or "memoryerror" in s or "cuda error(2)" in s


def run_config(name: str, spec: dict[str, Any], batch: int, a: argparse.Namespace, base: dict[str, Any],
               lengths: Any, on_gpu: bool, peak: float | None, use_flash: bool, cache: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import paddle

    key = f"{name}/{use_flash}"
    if cache.get("key") != key:  # one model per configuration, reused across batch sizes
        cache.clear()
        gc.collect()
        if on_gpu:
            paddle.device.cuda.empty_cache()
        t0 = time.perf_counter()
        cache["model"], cache["opt"] = build(spec, base, use_flash)
        cache["key"], cache["build_s"] = key, time.perf_counter() - t0
        cache["params"] = sum(int(p.numel()) for p in cache["model"].parameters())
    model, opt = cache["model"], cache["opt"]
    if on_gpu:
        paddle.device.cuda.reset_max_memory_allocated()
    rng = np.random.default_rng(a.seed)
    batches = Batches(lengths, batch, spec["grouped"], a.seed)
    for _ in range(a.warmup):
        rows = batches.next()
        ids, labels, _, _ = make_batch(batches.lengths, rows, base["vocab_size"], base["eos_token_id"], rng)
        train_step(model, opt, ids, labels, spec)
    sync(on_gpu)
    real = padded = steps = 0
    losses = []
    t0 = time.perf_counter()
    while steps < a.steps or time.perf_counter() - t0 < a.min_time:
        rows = batches.next()
        ids, labels, n_real, n_pad = make_batch(batches.lengths, rows, base["vocab_size"], base["eos_token_id"], rng)
        losses.append(train_step(model, opt, ids, labels, spec))
        real, padded, steps = real + n_real, padded + n_pad, steps + 1
    sync(on_gpu)
    dt = time.perf_counter() - t0
    loss = float(paddle.stack(losses).astype("float32").mean())
    out: dict[str, Any] = {
        "config": name if use_flash or not spec["flash"] else f"{name}-noflash", "batch": batch, "status": "ok",
        "steps": steps, "seconds": dt, "samples_per_s": steps * batch / dt, "tokens_per_s": real / dt,
        "padded_tokens_per_s": padded / dt, "pad_fraction": 1 - real / padded, "mean_loss": loss,
        "params": cache["params"], "build_s": cache["build_s"], "flash_attention": use_flash,
        "amp_dtype": spec.get("amp_dtype"), "grouped": spec["grouped"], "dropout": spec["dropout"],
        "fused_qkv": spec["fuse_qkv"],
    }
    if on_gpu:
        out["peak_mem_gib"] = paddle.device.cuda.max_memory_allocated() / 2**30
    if peak:
        out["mfu"] = 6 * cache["params"] * out["tokens_per_s"] / (peak * 1e12)
        out["mfu_padded"] = 6 * cache["params"] * out["padded_tokens_per_s"] / (peak * 1e12)
    if not math.isfinite(loss):
        out["status"] = "ok, loss not finite"
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    t_start = time.perf_counter()
    results: dict[str, Any] = {"args": {k: v for k, v in vars(a).items()}, "status": "started", "runs": []}
    out_path = Path(a.out)

    def save() -> None:
        out_path.write_text(json.dumps(results, indent=2, default=str))

    try:
        import paddle
    except ImportError as e:
        results.update(status="no_paddle", message=f"paddle cannot be imported: {e}")
        save()
        print(results["message"], file=sys.stderr)
        return EXIT_NO_GPU
    on_gpu = False
    try:
        on_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    except Exception:
        on_gpu = False
    if not on_gpu and not a.dry_run:
        msg = ("no CUDA GPU here (paddle " + paddle.__version__ + (" is a CPU build" if not paddle.is_compiled_with_cuda()
               else " sees no device") + "): nothing to measure. Run this on a GPU machine, or pass --dry-run to "
               "exercise the code path on the CPU with a tiny model.")
        results.update(status="no_gpu", message=msg)
        save()
        print(msg, file=sys.stderr)
        return EXIT_NO_GPU
    base = TINY if a.dry_run else MEDIUM
    device: dict[str, Any] = {"kind": "gpu" if on_gpu else "cpu", "paddle": paddle.__version__}
    peak = a.peak_tflops
    amp_dtype = "bfloat16"
    if on_gpu:
        paddle.set_device("gpu:0")
        name = paddle.device.cuda.get_device_name(0)
        major, minor = paddle.device.cuda.get_device_capability(0)
        device.update(name=name, capability=f"{major}.{minor}")
        if peak is None:
            peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if major < 8:
            amp_dtype = "float16"  # no bf16 before Ampere (a V100 runs fp16; O2 master grads still apply)
    else:
        paddle.set_device("cpu")
    device["peak_bf16_tflops"] = peak
    try:  # fp32 matmuls may run as TF32 on Ampere+; record how this paddle is set
        device["flags"] = paddle.get_flags(["FLAGS_allow_tf32_cublas"])
    except Exception:  # noqa: BLE001 - a flag this build does not know
        pass
    results["device"] = device
    lengths = sst2_lengths(a.rows, a.max_seq_length, a.seed)
    results["lengths"] = {"rows": len(lengths), "mean": sum(lengths) / len(lengths), "max": max(lengths)}
    print(f"device {device}; {len(lengths):,} SST-2-like rows, mean {results['lengths']['mean']:.1f} tokens", flush=True)
    cache: dict[str, Any] = {}
    for name in a.config_list:
        spec = {**CONFIGS[name], "amp_dtype": amp_dtype if CONFIGS[name]["amp"] else None}
        use_flash = spec["flash"]
        oom_at: int | None = None
        for batch in a.batch_list:
            if time.perf_counter() - t_start > a.budget_s:
                results["runs"].append({"config": name, "batch": batch, "status": "skipped: time budget"})
                continue
            if oom_at is not None:
                results["runs"].append({"config": name, "batch": batch, "status": f"skipped: OOM at batch {oom_at}"})
                continue
            for attempt in ("as configured", "without flash attention"):
                try:
                    res = run_config(name, spec, batch, a, base, lengths, on_gpu, peak, use_flash, cache)
                    results["runs"].append(res)
                    print(f"  {res['config']:<18} batch {batch:>4}: {res['samples_per_s']:9.1f} samples/s "
                          f"{res['tokens_per_s']:11.0f} tokens/s  pad {res['pad_fraction']:.0%}"
                          + (f"  peak {res['peak_mem_gib']:.1f} GiB" if "peak_mem_gib" in res else "")
                          + (f"  MFU {res['mfu']:.1%}" if "mfu" in res else ""), flush=True)
                    break
                except Exception as e:  # noqa: BLE001 - one failing configuration must not end the run
                    cache.clear()
                    gc.collect()
                    err = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:500]
                    rec = {"config": name if use_flash or not spec["flash"] else f"{name}-noflash", "batch": batch,
                           "status": "oom" if is_oom(e) else "error", "error": err,
                           "traceback": traceback.format_exc(limit=3)[-2000:]}
                    results["runs"].append(rec)
                    print(f"  {rec['config']:<18} batch {batch:>4}: {rec['status']}: {err}", flush=True)
                    if on_gpu:
                        try:
                            paddle.device.cuda.empty_cache()
                        except Exception:  # noqa: BLE001
                            pass
                    if rec["status"] == "oom":
                        oom_at = batch
                        break
                    if use_flash and attempt == "as configured":
                        use_flash = False  # FA unavailable here: the rest of this configuration runs without it
                        continue
                    break
            save()
    results["status"] = "done"
    results["wall_s"] = time.perf_counter() - t_start
    ok = [r for r in results["runs"] if r.get("status", "").startswith("ok")]
    if ok:
        best = {}
        for r in ok:
            best[r["config"]] = max(best.get(r["config"], 0.0), r["samples_per_s"])
        results["best_samples_per_s"] = best
        if "fp32" in best:
            results["speedup_vs_fp32"] = {k: v / best["fp32"] for k, v in best.items()}
        print(f"best samples/s per configuration: {best}")
        if "speedup_vs_fp32" in results:
            print("speed-up against fp32 (best batch each): "
                  + ", ".join(f"{k} {v:.2f}x" for k, v in results["speedup_vs_fp32"].items()))
    save()
    print(f"wrote {out_path} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
