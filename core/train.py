"""The training worker: fine-tunes a GPT-2 for SST-2 and reports through RUN/events.jsonl.

Launched by core.launch as ``python -m paddle.distributed.launch ... core/train.py --run_dir RUN
--model_dir DIR --<RunConfig field> VALUE ... [--resume_from CHECKPOINT]``; also runs as a single
process (``python core/train.py ...`` or ``python -m core.train ...``).

Only rank 0 writes events (core.events); every rank writes paddle's own logs/workerlog.N. A file
RUN/stop, SIGTERM or SIGINT asks for a graceful stop: flush, checkpoint, ``end`` stopped, exit 0.

Speed: the loss of a step is a device tensor; reading it (``float(loss)``) waits for the device, so
losses of pending steps are fetched together at a *flush* (every ~1 s or 10 steps, and before every
eval, checkpoint and the end), and each step's event is written then with that step's own values.
With several ranks the flush is also where ranks talk: one all_gather of a few floats per rank
(health, stop request, NaN), so every rank decides to stop at the same step.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (the launcher does): make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.distributed as dist  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
import psutil  # noqa: E402

from core import batching  # noqa: E402
from core.config import RunConfig, parse_bool  # noqa: E402
from core.events import EventWriter  # noqa: E402

TRAIN_FILE, DEV_FILE = "train.tsv", "dev.tsv"
HEARTBEAT_S = 5.0
FLUSH_EVERY_S = 1.0  # write step events at least this often ...
FLUSH_MAX_STEPS = 10  # ... and never hold more than this many steps back
# Fault injection for tests: the loss of this step (1-based) becomes NaN.
NAN_TEST_STEP = int(os.environ.get("GPT2_TUI_TEST_NAN_AT_STEP", "0") or 0)


class CheckpointError(OSError):
    """A checkpoint could not be written (disk full, read-only folder); the message names the path."""


# --------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="core/train.py", description="Fine-tune GPT-2 on SST-2 (gpt2-tui worker).")
    p.add_argument("--run_dir", required=True, help="Run folder: events.jsonl, stop, checkpoints/.")
    p.add_argument("--model_dir", required=True, help="Local PaddleNLP model folder (already resolved).")
    p.add_argument("--resume_from", default=None, help="A checkpoint-N folder to continue from.")
    for f in dataclasses.fields(RunConfig):
        typ = f.type if isinstance(f.type, str) else f.type.__name__
        conv: Callable[[str], Any] = {"bool": parse_bool, "int": int, "float": float}.get(typ, str)
        p.add_argument(f"--{f.name}", type=conv, default=f.default, help=f.metadata.get("help", ""))
    return p


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, RunConfig]:
    ns = build_parser().parse_args(argv)
    cfg = RunConfig(**{name: getattr(ns, name) for name in RunConfig.field_names()})
    return ns, cfg


# --------------------------------------------------------------------------- shared with core.evaluate
def versions() -> dict[str, str]:
    import paddlenlp

    return {"python": platform.python_version(), "paddle": paddle.__version__, "paddlenlp": paddlenlp.__version__}


def pick_device(cfg_device: str = "auto", devices: str = "auto") -> str:
    """'gpu' (CUDA), a custom device type such as 'iluvatar_gpu' (PaddleCustomDevice), or 'cpu'.

    An accelerator is used when this paddle build has one and nothing asked for the CPU.
    """
    if cfg_device == "cpu" or devices.startswith("cpu"):
        return "cpu"
    with contextlib.suppress(Exception):  # a broken driver is a CPU run, not a crash
        if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return "gpu"
    with contextlib.suppress(Exception):
        custom = paddle.device.get_all_custom_device_type() or []
        if custom and paddle.device.get_available_custom_device():
            return str(custom[0])
    if cfg_device == "gpu":
        raise RuntimeError("--device gpu was asked for, but this paddle build sees no CUDA or custom GPU")
    return "cpu"


def set_device(kind: str) -> None:
    """This process's device: the one the launcher selected for this rank (FLAGS_selected_*)."""
    if kind == "cpu":
        paddle.set_device("cpu")
    else:
        paddle.set_device(f"{kind}:{dist.ParallelEnv().device_id}")


def device_label(kind: str, local_rank: int) -> str:
    if kind == "cpu":
        return f"cpu:{local_rank}"
    dev_id = dist.ParallelEnv().device_id
    if kind == "gpu":
        with contextlib.suppress(Exception):
            return f"gpu:{dev_id} {paddle.device.cuda.get_device_name(dev_id)}"
    return f"{kind}:{dev_id}"


def pad_id_for(model: Any) -> int:
    """The id GPTForSequenceClassification treats as padding (its own rule: ``eos_token_id or 0``)."""
    return int(getattr(model.config, "eos_token_id", None) or 0)


def tokenizer_files(tok: Any) -> list[str]:
    files = [getattr(tok, "_vocab_file", None), getattr(tok, "_merges_file", None)]
    return [str(f) for f in files if f and os.path.isfile(f)]


def encode_split(tok: Any, path: str | os.PathLike[str], max_len: int, pad_id: int,
                 write_cache: bool = True) -> tuple[batching.Encoded, bool]:
    """Token ids of a labelled TSV, from the cache when possible; (encoded, came_from_cache)."""
    eos_ids = {pad_id} | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set())
    files = tokenizer_files(tok)
    extra = f"pad={pad_id};eos={sorted(eos_ids)};cls={type(tok).__name__}"
    if not files:  # a tokenizer without vocab files on disk: key on its vocabulary instead
        extra += json.dumps(sorted(tok.get_vocab().items()))
    key = batching.cache_key(files, path, max_len, extra)
    enc = batching.cache_load(key)
    if enc is not None:
        return enc, True
    rows = batching.read_split(path)

    def encode(text: str) -> list[int]:
        return tok.convert_tokens_to_ids(tok.tokenize(text))

    enc = batching.encode_texts(encode, (s for s, _ in rows), (y for _, y in rows), max_len, eos_ids)
    if write_cache:
        batching.cache_store(key, enc)
    return enc, False


def amp_context(fast: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    if fast.get("amp_dtype"):
        return paddle.amp.auto_cast(level=fast.get("amp_level", "O2"), dtype=fast["amp_dtype"])
    return contextlib.nullcontext()


def predict(model: Any, enc: batching.Encoded, rows: list[int], batch_size: int, pad_id: int,
            fast: dict[str, Any] | None = None,
            on_batch: Callable[[int, int, int], None] | None = None) -> tuple[list[int], np.ndarray, float]:
    """Classify ``rows``: (rows in the order scored, predictions, summed cross-entropy).

    Batches are the rows sorted by length (core.batching.eval_batches), so the trainer's eval and
    core.evaluate see identical batches for the same rows and batch size.
    """
    fast = fast or {}
    was_training = model.training
    model.eval()
    order: list[int] = []
    preds: list[np.ndarray] = []
    loss_sum = 0.0
    batches = batching.eval_batches(enc, rows, batch_size)
    try:
        with paddle.no_grad():
            for bi, b in enumerate(batches):
                ids, labels, _ = batching.pad_batch(enc, b, pad_id)
                with amp_context(fast):
                    logits = model(paddle.to_tensor(ids))
                logits = logits.astype("float32")
                loss = F.cross_entropy(logits, paddle.to_tensor(labels), reduction="sum")
                preds.append(logits.argmax(axis=-1).numpy())
                loss_sum += float(loss)
                order.extend(b)
                if on_batch is not None:
                    on_batch(bi + 1, len(batches), len(b))
    finally:
        if was_training:
            model.train()
    return order, (np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)), loss_sum


# --------------------------------------------------------------------------- the worker
@dataclasses.dataclass
class Pending:
    step: int
    epoch: float
    loss: Any  # device tensor until flushed, then a float
    lr: float
    samples: int  # whole job
    tokens: int  # rank 0's non-pad tokens x world (an estimate of the whole job's)
    dt: float  # wall time of the step, seconds
    t0: float  # when it started (perf_counter)


class Trainer:
    def __init__(self, ns: argparse.Namespace, cfg: RunConfig):
        self.ns, self.cfg = ns, cfg
        self.run_dir = Path(ns.run_dir).resolve()
        self.stop_file = self.run_dir / "stop"
        self.out_dir = Path(cfg.output_dir).resolve() if cfg.output_dir else self.run_dir / "checkpoints"
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.local_rank = int(os.environ.get("PADDLE_LOCAL_RANK", os.environ.get("PADDLE_RANK_IN_NODE", self.rank)))
        self.writer: EventWriter | None = None
        self._lock = threading.Lock()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self.ended = False
        self.global_step = 0
        self.start_step = 0
        self.signal_num = 0  # SIGTERM/SIGINT received (the handler only records it)
        self.restart = 0  # under an elastic launcher: how many times the job was restarted before this one
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)  # start the CPU-time window for the first `util`
        self.pending: list[Pending] = []
        self.fetched: list[Pending] = []
        self.samples_done = 0  # this rank's rows since start
        self.best_accuracy: float | None = None
        self.last_eval_step = -1
        self.last_save_step = -1
        self.nan_seen = False
        self.fast: dict[str, Any] = {}
        self.device = "cpu"
        self._nvml: Any = None
        self._last_flush = time.perf_counter()
        self.epoch_f = 0.0
        self.notes: list[tuple[str, str]] = []  # log lines found during setup, written after `start`
        self._lr_used = 0.0
        self._flush_interval = 1  # steps between flushes when world > 1 (adapted at every flush)
        self._next_flush_step = 0

    # ------------------------------------------------------------------ events
    def emit(self, type: str, **fields: Any) -> None:
        if self.writer is None:
            return
        with self._lock:
            self.writer.emit(type, **fields)

    def log(self, text: str, level: str = "info") -> None:
        self.emit("log", level=level, text=text)
        if self.rank == 0:
            print(f"[gpt2-tui train] {level}: {text}", flush=True)

    def mem_bytes(self) -> int:
        if self.device == "gpu":
            with contextlib.suppress(Exception):
                return int(paddle.device.cuda.memory_reserved())
        elif self.device != "cpu":
            with contextlib.suppress(Exception):
                return int(paddle.device.memory_reserved())
        return int(self.proc.memory_info().rss)

    def util(self) -> float:
        """GPU utilisation % (NVML) on a GPU; on a CPU the process's CPU % (100 = one core busy)."""
        if self.device != "cpu" and self._nvml is not None:
            with contextlib.suppress(Exception):
                import pynvml

                return float(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)
        return float(self.proc.cpu_percent(None))

    def _heartbeat_loop(self) -> None:
        while not self._hb_stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a heartbeat must never take the run down
                self.emit("heartbeat", rank=self.rank, step=self.global_step, mem_bytes=self.mem_bytes(),
                          host=socket.gethostname(), local_rank=self.local_rank, device=self.device_str)

    # ------------------------------------------------------------------ main
    def run(self) -> int:
        self.device_str = f"cpu:{self.local_rank}"
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.writer = EventWriter(self.run_dir / "events.jsonl")
            self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
            self._hb_thread.start()
        self.install_signal_handlers()
        try:
            self.setup()
            self.install_signal_handlers()  # again: importing paddle/paddlenlp replaces SIGTERM's handler
            status, reason = self.train()
            self.end(status, reason)
            return 1 if status == "failed" else 0
        except BaseException as e:
            if not self.ended:
                msg = str(e) or repr(e)
                self.end("failed", f"{type(e).__name__}: {msg}")
            raise
        finally:
            self._hb_stop.set()
            if self.writer is not None:
                with self._lock:
                    self.writer.close()

    def end(self, status: str, reason: str) -> None:
        self.ended = True
        if self.restart_expected(status):
            # Not the end: paddle's elastic launcher restarts the pod, and the next incarnation continues
            # this run's event file from the latest checkpoint. Its `end` will be the run's.
            self.log(f"rank 0 {status} at step {self.global_step} ({reason}); the elastic launcher restarts the "
                     f"job (restart {self.restart + 1} of {self.cfg.max_restart})", "warning")
            return
        self.emit("end", status=status, reason=reason)

    def restart_expected(self, status: str) -> bool:
        """Under an elastic launcher with restarts left, a failure (an exception: a peer died, say) or a
        SIGTERM nobody asked for (the launcher stopping the pod to restart it) is not the run's end."""
        if self.cfg.max_restart <= self.restart or self.stop_file.exists():
            return False
        return status == "failed" or (status == "stopped" and bool(self.signal_num))

    def elastic_restart_point(self) -> None:
        """Under an elastic launcher (max_restart > 0) a restarted job finds its earlier incarnations'
        ``start`` events in the run's event file; it continues from the latest complete checkpoint."""
        if self.cfg.max_restart <= 0 or self.ns.resume_from:
            return
        try:
            text = (self.run_dir / "events.jsonl").read_text(errors="replace")
        except FileNotFoundError:
            return
        self.restart = text.count('"type":"start"')
        if not self.restart:
            return
        ck = latest_checkpoint(self.out_dir)
        if ck is not None:
            self.ns.resume_from = str(ck)
        self.notes.append((f"restart {self.restart} of {self.cfg.max_restart} by the elastic launcher: "
                           + (f"continuing from {ck.name}" if ck else "no checkpoint yet, starting again at step 1"),
                           "warning"))

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal_num = int(signum)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        problems = cfg.validate()
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        self.device = pick_device(cfg.device, cfg.devices)
        self.elastic_restart_point()
        set_device(self.device)
        if self.world > 1:
            dist.init_parallel_env()
        self.device_str = device_label(self.device, self.local_rank)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        paddle.seed(cfg.seed)
        if self.rank == 0:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CheckpointError(f"cannot create the output folder {self.out_dir}: {e.strerror or e}") from None
            if not os.access(self.out_dir, os.W_OK):
                raise CheckpointError(f"the output folder {self.out_dir} is not writable")

        from paddlenlp.transformers import GPTTokenizer

        self.fast = self.choose_fast_path()
        self.tokenizer = GPTTokenizer.from_pretrained(self.ns.model_dir)
        src = self.ns.resume_from or self.ns.model_dir
        self.model = load_classifier(src, self.fast)
        self.pad_id = pad_id_for(self.model)
        tok_eos = self.tokenizer.eos_token_id
        if tok_eos is not None and int(tok_eos) != self.pad_id:
            self.notes.append((f"the tokenizer's EOS id {tok_eos} differs from the model's eos_token_id "
                               f"{self.pad_id}; padding with {self.pad_id}, the id the classifier skips", "warning"))
        if self.fast.get("flash_attention") and self.fast.get("dropout_zeroed"):
            self.notes.append(("flash attention is on: attention and hidden dropout set to 0 "
                               "(flash attention on Hopper refuses dropout > 0)", "info"))

        self.load_data()
        self.host_info = self.gather_objects((socket.gethostname(), self.local_rank, self.device_str))
        self.build_optimizer()
        self.resume_state = self.load_resume_state()
        self.raw_model = self.model
        self.model.train()
        if self.world > 1:
            self.model = paddle.DataParallel(self.model)

        self._nvml = self._nvml_handle()
        nnodes = int(os.environ.get("PADDLE_NNODES", "0") or 0) or len({h for h, _, _ in self.host_info})
        self.emit(
            "start", world_size=self.world, nnodes=nnodes, devices=[d for _, _, d in self.host_info],
            versions=versions(), total_steps=self.total_steps, samples_per_epoch=len(self.train_enc),
            num_epochs=round(self.total_steps / self.steps_per_epoch, 4), resumed_from_step=self.start_step,
            pid=os.getpid(), fast_path=self.fast,
            steps_per_epoch=self.steps_per_epoch, global_batch=self.global_batch, dev_rows=len(self.dev_enc),
            output_dir=str(self.out_dir), hosts=[h for h, _, _ in self.host_info], restart=self.restart,
        )
        for text, level in self.notes:
            self.log(text, level)
        tr, dv = self.train_enc.truncated, self.dev_enc.truncated
        self.log(f"truncated {tr} of {len(self.train_enc)} train and {dv} of {len(self.dev_enc)} dev sentences "
                 f"to max_seq_length={cfg.max_seq_length} tokens", "warning" if tr or dv else "info")
        if self.resume_state:
            self.log(f"resumed from {self.ns.resume_from} at step {self.start_step}")

    def choose_fast_path(self) -> dict[str, Any]:
        """What makes a GPU run fast, decided once and reported in the start event."""
        fp: dict[str, Any] = {"device": self.device, "amp_dtype": None, "amp_level": None, "master_grad": False,
                              "grad_scaler": False, "flash_attention": False, "fuse_attention_qkv": False}
        if self.device == "cpu":
            fp["note"] = "cpu: fp32, no flash attention"
            return fp
        if not self.cfg.use_amp:
            fp["note"] = "use_amp is false: fp32"
            return fp
        if self.device != "gpu":
            # A PaddleCustomDevice accelerator (Iluvatar shows up as 'iluvatar_gpu'): fp16 O2 with loss
            # scaling works on every such card; flash attention is CUDA-only here. Untested on the hardware.
            fp.update(amp_dtype="float16", amp_level="O2", master_grad=True, grad_scaler=True,
                      fuse_attention_qkv=True, note=f"custom device {self.device}: fp16 O2, no flash attention")
            return fp
        major, minor = paddle.device.cuda.get_device_capability()
        fp["compute_capability"] = f"{major}.{minor}"
        fp["amp_dtype"] = "bfloat16" if major >= 8 else "float16"
        fp["amp_level"] = "O2"
        fp["master_grad"] = True
        fp["grad_scaler"] = fp["amp_dtype"] == "float16"
        fp["fuse_attention_qkv"] = True
        try:
            from paddle.nn.functional.flash_attention import flash_attention  # noqa: F401

            fp["flash_attention"] = major >= 8  # FA2/FA3 kernels need Ampere or newer
        except ImportError:
            fp["flash_attention"] = False
        fp["dropout_zeroed"] = fp["flash_attention"]
        return fp

    def load_data(self) -> None:
        cfg = self.cfg
        if cfg.data_dir == "glue":
            raise ValueError("--data_dir glue: the launcher resolves it to the downloaded folder; pass that folder")
        data_dir = Path(cfg.resolved_data_dir())  # 'sample' = the bundled sample
        write = self.local_rank == 0
        # Rank 0 of each node tokenises and fills the cache; the others wait, then read it (or, if the
        # cache could not be written, tokenise themselves).
        if write:
            self.train_enc, hit_tr = encode_split(self.tokenizer, data_dir / TRAIN_FILE, cfg.max_seq_length,
                                                  self.pad_id)
            self.dev_enc, hit_dv = encode_split(self.tokenizer, data_dir / DEV_FILE, cfg.max_seq_length,
                                                self.pad_id)
        self.barrier()
        if not write:
            self.train_enc, hit_tr = encode_split(self.tokenizer, data_dir / TRAIN_FILE, cfg.max_seq_length,
                                                  self.pad_id, write_cache=False)
            self.dev_enc, hit_dv = encode_split(self.tokenizer, data_dir / DEV_FILE, cfg.max_seq_length,
                                                self.pad_id, write_cache=False)
        self.notes.append((f"tokens: train {'from cache' if hit_tr else 'tokenised'}, dev "
                           f"{'from cache' if hit_dv else 'tokenised'} (cache: {batching.default_cache_dir()})", "info"))
        if len(self.train_enc) == 0 or len(self.dev_enc) == 0:
            raise ValueError(f"{data_dir}: train.tsv and dev.tsv must each have at least one row")
        self.global_batch = cfg.per_device_train_batch_size * self.world
        self.steps_per_epoch = batching.steps_per_epoch(len(self.train_enc), self.global_batch, self.world)
        if cfg.max_steps > 0:
            self.total_steps = cfg.max_steps
        else:
            self.total_steps = max(1, math.ceil(cfg.num_train_epochs * self.steps_per_epoch))

    def build_optimizer(self) -> None:
        from paddlenlp.transformers import LinearDecayWithWarmup

        cfg = self.cfg
        self.scheduler = LinearDecayWithWarmup(cfg.learning_rate, self.total_steps, float(cfg.warmup_ratio))
        no_decay = ("bias", "norm")
        decay = {p.name for n, p in self.model.named_parameters() if not any(k in n for k in no_decay)}
        self.optimizer = paddle.optimizer.AdamW(
            learning_rate=self.scheduler, parameters=self.model.parameters(), weight_decay=cfg.weight_decay,
            apply_decay_param_fun=lambda name: name in decay, grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0),
        )
        self.scaler = None
        if self.fast.get("amp_dtype"):
            self.model, self.optimizer = paddle.amp.decorate(
                models=self.model, optimizers=self.optimizer, level="O2", dtype=self.fast["amp_dtype"],
                master_grad=True, save_dtype="float32",
            )
            if self.fast.get("grad_scaler"):
                self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0**15)

    def load_resume_state(self) -> dict[str, Any] | None:
        ck = self.ns.resume_from
        if not ck:
            return None
        ck_path = Path(ck)
        state: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError):
            state = json.loads((ck_path / "trainer_state.json").read_text())
        opt_file = ck_path / "optimizer.pdopt"
        if opt_file.is_file():
            opt_state = paddle.load(str(opt_file))
            self.optimizer.set_state_dict(opt_state)
        else:
            self.notes.append((f"{opt_file} is missing: the optimizer starts fresh (AdamW moments reset)", "warning"))
        self.start_step = int(state.get("global_step", 0))
        lr_step = int(state.get("lr_step", self.start_step))
        self.scheduler.step(lr_step)
        self.best_accuracy = state.get("best_accuracy")
        # The data order is a function of (seed, epoch), so skipping the consumed batches of the current
        # epoch replays the rest exactly with the same world size and batch size; with a different one
        # it is approximate (the same fraction of the epoch is skipped).
        epoch_f = float(state.get("epoch", self.start_step / self.steps_per_epoch))
        self.resume_epoch = int(epoch_f)
        self.resume_skip = min(self.steps_per_epoch, round((epoch_f - self.resume_epoch) * self.steps_per_epoch))
        if self.start_step >= self.total_steps:
            raise ValueError(f"the checkpoint is at step {self.start_step}, and this run has only "
                             f"{self.total_steps} steps: raise max_steps or num_train_epochs to continue")
        return state

    def _nvml_handle(self) -> Any:
        if self.device == "cpu":
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            dev_id = dist.ParallelEnv().device_id
            ids = [s for s in visible.split(",") if s.strip()]
            index = int(ids[dev_id]) if dev_id < len(ids) and ids[dev_id].strip().isdigit() else dev_id
            return pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:
            return None

    # ------------------------------------------------------------------ collectives (no-ops when world == 1)
    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = []
        dist.all_gather_object(out, obj)
        return out

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = paddle.to_tensor(np.asarray(values, dtype=np.float64))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [float(x) for x in t.numpy()]

    def all_gather_rows(self, row: list[float]) -> np.ndarray:
        if self.world == 1:
            return np.asarray([row], dtype=np.float64)
        t = paddle.to_tensor(np.asarray(row, dtype=np.float64))
        parts: list[Any] = []
        dist.all_gather(parts, t)
        return np.stack([p.numpy() for p in parts])

    # ------------------------------------------------------------------ the loop
    def epochs(self) -> Iterator[tuple[int, int, list[int], int]]:
        """(epoch, index in epoch, this rank's rows, global batch size) from the resume point on."""
        epoch = self.resume_epoch if self.resume_state else 0
        skip = self.resume_skip if self.resume_state else 0
        lengths = self.train_enc.lengths
        while True:
            gbs = batching.global_batches(lengths, self.global_batch, self.world, self.cfg.seed, epoch)
            for i in range(skip, len(gbs)):
                yield epoch, i, gbs[i][self.rank :: self.world], len(gbs[i])
            skip = 0
            epoch += 1

    def train(self) -> tuple[str, str]:
        cfg = self.cfg
        self.global_step = self.start_step
        self._last_flush = time.perf_counter()
        self._next_flush_step = self.global_step + self._flush_interval
        if self.world == 1 and (reason := self.local_stop_reason()):
            return self.stop(reason)
        data = self.epochs()
        while self.global_step < self.total_steps:
            epoch, index, rows, gsize = next(data)
            t0 = time.perf_counter()
            loss = self.train_step(rows)
            self.global_step += 1
            step = self.global_step
            self.epoch_f = epoch + (index + 1) / self.steps_per_epoch
            # tokens/s of the whole job, estimated as rank 0's non-pad tokens x world (ranks get rows of
            # similar length: each takes every world-th row of a length-sorted global batch)
            tokens = int(self.train_enc.lengths[rows].sum()) * self.world
            self.pending.append(Pending(step, self.epoch_f, loss, self._lr_used, gsize, tokens,
                                        time.perf_counter() - t0, t0))
            self.samples_done += len(rows)
            last = step >= self.total_steps
            do_eval = step % cfg.eval_steps == 0 or last
            do_save = step % cfg.save_steps == 0 or last
            verdict = self.maybe_flush(force=do_eval or do_save, final=last)
            if verdict is not None:
                return verdict
            if do_eval:
                self.evaluate()
            if do_save:
                self.save_checkpoint()
        return "finished", f"reached step {self.global_step} of {self.total_steps}"

    def train_step(self, rows: list[int]) -> Any:
        ids, labels, _ = batching.pad_batch(self.train_enc, rows, self.pad_id)
        x, y = paddle.to_tensor(ids), paddle.to_tensor(labels)
        with amp_context(self.fast):
            logits = self.model(x)
        loss = F.cross_entropy(logits.astype("float32"), y)
        if self.global_step + 1 == NAN_TEST_STEP:
            loss = loss * float("nan")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self._lr_used = float(self.scheduler.get_lr())
        self.scheduler.step()
        self.optimizer.clear_grad()
        return loss.detach()

    def local_stop_reason(self) -> str | None:
        if self.signal_num:
            return f"{signal.Signals(self.signal_num).name} received"
        if self.stop_file.exists():
            return f"stop requested ({self.stop_file})"
        return None

    def maybe_flush(self, force: bool = False, final: bool = False) -> tuple[str, str] | None:
        """Flush when due; returns (status, reason) when the run must end here (stop, NaN)."""
        if self.world == 1:
            # os.path.exists every step costs ~2 us: a single process stops at the very step asked.
            due = (force or self.signal_num or self.stop_file.exists() or len(self.pending) >= FLUSH_MAX_STEPS
                   or time.perf_counter() - self._last_flush >= FLUSH_EVERY_S)
            return self.flush(final) if due else None
        # Several ranks: the flush is a collective, so it happens at the same steps on every rank, and
        # a stop (seen by rank 0 only: other nodes do not see RUN/stop) is agreed on there.
        if not force and self.global_step < self._next_flush_step:
            return None
        return self.flush(final)

    def flush(self, final: bool = False) -> tuple[str, str] | None:
        """Fetch the pending losses (one device sync), agree with the other ranks, write the step events.

        ``final``: the last step of the run, so a partial logging window is written too."""
        step = self.global_step
        pend, self.pending = self.pending, []
        if pend:
            losses = paddle.stack([p.loss for p in pend]).astype("float32").numpy()  # the one device sync
            now = time.perf_counter()
            host = sum(p.dt for p in pend)
            # On a GPU the host runs ahead of the device; spread the synced wall time of the window over
            # its steps in proportion to their host times. On a CPU every op is synchronous: keep them.
            scale = (now - pend[0].t0) / host if host > 0 and self.device != "cpu" else 1.0
            for p, v in zip(pend, losses, strict=True):
                p.loss, p.dt = float(v), p.dt * scale
        self._last_flush = time.perf_counter()
        nan_step = next((p.step for p in pend if not math.isfinite(p.loss)), 0)
        mean_dt = (sum(p.dt for p in pend) / len(pend)) if pend else 0.0
        row = [mean_dt, float(self.samples_done), float(self.mem_bytes()), self.util(),
               1.0 if self.stop_file.exists() else 0.0, float(nan_step), float(self.signal_num)]
        table = self.all_gather_rows(row)  # every rank gets the same table and so decides the same
        if self.world > 1:
            slowest = float(table[:, 0].max())
            self._flush_interval = int(min(FLUSH_MAX_STEPS, max(1, FLUSH_EVERY_S // max(slowest, 1e-3))))
            self._next_flush_step = step + self._flush_interval
            nan_steps = [int(s) for s in table[:, 5] if s > 0]
            nan_step = min(nan_steps) if nan_steps else 0
        self.fetched.extend(pend)
        self.emit_steps(final=final)
        if pend:
            self.emit("ranks", step=step, ranks=[
                {"rank": r, "host": self.host_info[r][0], "local_rank": self.host_info[r][1],
                 "device": self.host_info[r][2], "step_time": float(table[r, 0]), "samples": int(table[r, 1]),
                 "mem_bytes": int(table[r, 2]), "util": float(table[r, 3])}
                for r in range(self.world)])
        if nan_step and not self.nan_seen:
            self.nan_seen = True
            self.log(f"loss became nan/inf at step {nan_step}", "error")
            if self.cfg.stop_on_nan:
                self.emit_steps(final=True)
                self.save_checkpoint()
                return "failed", f"loss became nan at step {nan_step} (checkpoint saved)"
        sigs = {r: int(table[r, 6]) for r in range(self.world) if table[r, 6] > 0}
        if 0 in sigs:  # rank 0 signalled: the user's stop escalation or Ctrl-C hits the whole job
            return self.stop(f"{signal.Signals(sigs[0]).name} received")
        if table[:, 4].max() > 0:
            return self.stop(f"stop requested ({self.stop_file})")
        if sigs:  # only other ranks were signalled: their launcher or node went away, not a user's stop
            r = min(sigs)
            return self.stop(f"rank {r} on {self.host_info[r][0]} received {signal.Signals(sigs[r]).name}",
                             status="failed", hint="its launcher or node is probably gone")
        return None

    def emit_steps(self, final: bool) -> None:
        """Step events for every complete logging window (and, when final, the partial last one)."""
        n = self.cfg.logging_steps
        while self.fetched:
            ends = [i for i, p in enumerate(self.fetched) if p.step % n == 0]
            if ends:
                k = ends[0] + 1
            elif final:
                k = len(self.fetched)
            else:
                return
            win, self.fetched = self.fetched[:k], self.fetched[k:]
            last = win[-1]
            dt = sum(p.dt for p in win)
            self.emit("step", step=last.step, epoch=round(last.epoch, 6), loss=float(np.mean([p.loss for p in win])),
                      lr=last.lr, samples_per_s=sum(p.samples for p in win) / dt if dt > 0 else None,
                      tokens_per_s=sum(p.tokens for p in win) / dt if dt > 0 else None, step_time=dt / len(win))

    def stop(self, reason: str, status: str = "stopped", hint: str = "") -> tuple[str, str]:
        self.emit_steps(final=True)
        hint = f"; {hint}" if hint else ""
        if self.global_step > self.start_step:
            self.save_checkpoint()
            return status, f"{reason} at step {self.global_step} (checkpoint saved){hint}"
        return status, f"{reason} before the first step (nothing to save){hint}"

    # ------------------------------------------------------------------ eval and checkpoints
    def evaluate(self) -> None:
        step = self.global_step
        if self.last_eval_step == step:
            return
        self.last_eval_step = step
        t0 = time.perf_counter()
        rows = list(range(self.rank, len(self.dev_enc), self.world))
        order, preds, loss_sum = predict(self.raw_model, self.dev_enc, rows, self.cfg.per_device_eval_batch_size,
                                         self.pad_id, self.fast)
        correct = float((preds == self.dev_enc.labels[order]).sum()) if order else 0.0
        correct, total, loss_sum = self.all_sum([correct, float(len(order)), loss_sum])
        acc = correct / total if total else 0.0
        if self.best_accuracy is None or acc > self.best_accuracy:
            self.best_accuracy = acc
        dt = time.perf_counter() - t0
        self.emit("eval", step=step, accuracy=acc, loss=loss_sum / total if total else None, n=int(total),
                  eval_path=str(Path(self.cfg.resolved_data_dir()).resolve() / DEV_FILE), mode="classify",
                  eval_time=round(dt, 3), samples_per_s=total / dt if dt > 0 else None)

    def save_checkpoint(self) -> None:
        step = self.global_step
        if self.last_save_step == step:
            return
        self.last_save_step = step
        if self.rank == 0:
            final = self.out_dir / f"checkpoint-{step}"
            tmp = self.out_dir / f".checkpoint-{step}.tmp-{os.getpid()}"
            try:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                with portable_config(self.raw_model):
                    self.raw_model.save_pretrained(str(tmp))
                self.tokenizer.save_pretrained(str(tmp))
                paddle.save(self.optimizer.state_dict(), str(tmp / "optimizer.pdopt"))
                state = {"global_step": step, "epoch": self.epoch_f,
                         "lr_step": int(self.scheduler.last_epoch), "best_accuracy": self.best_accuracy,
                         "world_size": self.world, "global_batch": self.global_batch,
                         "steps_per_epoch": self.steps_per_epoch, "seed": self.cfg.seed,
                         "max_seq_length": self.cfg.max_seq_length, "model_dir": str(Path(self.ns.model_dir).resolve())}
                (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise CheckpointError(f"cannot save checkpoint-{step} to {final}: {e.strerror or e}") from None
            self.emit("checkpoint", step=step, path=str(final))


@contextlib.contextmanager
def portable_config(model: Any) -> Iterator[None]:
    """Save a config that loads anywhere: flash attention off (it only runs on a GPU)."""
    cfg = model.config
    saved = getattr(cfg, "use_flash_attention", False)
    cfg.use_flash_attention = False
    try:
        yield
    finally:
        cfg.use_flash_attention = saved


def load_classifier(path: str, fast: dict[str, Any] | None = None) -> Any:
    """GPTForSequenceClassification (2 labels) from a model folder or a checkpoint, fast path applied."""
    from paddlenlp.transformers import GPTForSequenceClassification

    fast = fast or {}
    kw: dict[str, Any] = {"num_labels": 2, "use_flash_attention": bool(fast.get("flash_attention"))}
    if fast.get("fuse_attention_qkv"):
        kw["fuse_attention_qkv"] = True
    if fast.get("dropout_zeroed"):
        kw.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    # fp32 weights always (a checkpoint may say bfloat16): paddle.amp.decorate makes the O2 copies itself
    kw["dtype"] = "float32"
    return GPTForSequenceClassification.from_pretrained(path, **kw)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The complete checkpoint-N folder with the largest N (saves are renamed into place when done)."""
    best: tuple[int, Path] | None = None
    with contextlib.suppress(OSError):
        for d in out_dir.iterdir():
            m = re.fullmatch(r"checkpoint-(\d+)", d.name)
            if m and (d / "model_state.pdparams").is_file() and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), d)
    return best[1] if best else None


def main(argv: list[str] | None = None) -> int:
    ns, cfg = parse_args(argv)
    return Trainer(ns, cfg).run()


if __name__ == "__main__":
    sys.exit(main())
