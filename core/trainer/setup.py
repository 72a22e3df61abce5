"""The trainer's state and its setup: device, tokenizer, model, data, optimiser and the resume point.

core.trainer.loop.Trainer builds on it with the loop itself.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist

from core import batching
from core import checkpoint_files as files
from core.config import RunConfig
from core.trainer import checkpoints, elastic, runtime, schedule
from core.trainer.encoding import load_splits, pad_id_for
from core.trainer.fastpath import amp_request, choose_fast_path
from core.trainer.optim import build_optimisation
from core.trainer.phases import Phases
from core.trainer.reporting import Reporter, StepWindow
from core.trainer.state import RunRecord, read_paddlenlp_state
from core.trainer.trial import settle_fast_path


class TrainerSetup:
    """Everything before the first step: device, model, data, optimiser, the resume point."""

    def __init__(self, ns: argparse.Namespace, cfg: RunConfig, phases: Phases | None = None):
        self.ns, self.cfg = ns, cfg
        self.phases = phases or Phases()
        self.run_dir = Path(ns.run_dir).resolve()
        self.stop_file = self.run_dir / "stop"
        self.out_dir = Path(cfg.output_dir).resolve() if cfg.output_dir else self.run_dir / "checkpoints"
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.local_rank = runtime.local_rank(self.rank)
        self.comm = runtime.Collectives(self.world)
        self.probe = runtime.Probe()
        self.report = Reporter(self.rank)
        self.window = StepWindow()
        self.ended = False
        self.global_step = 0
        self.start_step = 0
        self.signal_num = 0  # SIGTERM/SIGINT received (the handler only records it)
        self.restart = 0  # under an elastic launcher: how many times the job was restarted before this one
        self.accum = cfg.gradient_accumulation_steps  # micro-batches per step (more after an out-of-memory trial)
        self.samples_done = 0  # this rank's rows since start
        self.record = RunRecord()
        self.last_eval_step = -1
        self.last_save_step = -1
        self.nan_seen = False
        self.fast: dict[str, Any] = {}
        self.device = "cpu"
        self.device_str = f"cpu:{self.local_rank}"
        self._last_flush = time.perf_counter()
        self.epoch_f = 0.0
        self.notes: list[tuple[str, str]] = []  # log lines found during setup, written after `start`
        self.resume_state: dict[str, Any] | None = None
        self._lr_used = 0.0
        self._flush_interval = 1  # steps between flushes when world > 1 (adapted at every flush)
        self._next_flush_step = 0

    def emit(self, type: str, **fields: Any) -> None:
        self.report.emit(type, **fields)

    def log(self, text: str, level: str = "info") -> None:
        self.report.log(text, level)

    def _heartbeat(self) -> dict[str, Any]:
        return {"rank": self.rank, "step": self.global_step, "mem_bytes": self.probe.mem_bytes(),
                "host": socket.gethostname(), "local_rank": self.local_rank, "device": self.device_str}

    def elastic_restart_point(self) -> None:
        """Under an elastic launcher (max_restart > 0) a restarted job continues from the latest checkpoint."""
        if self.cfg.max_restart <= 0 or self.ns.resume_from:
            return
        self.restart = elastic.restarts_so_far(self.run_dir / "events.jsonl")
        if not self.restart:
            return
        ck = files.latest(self.out_dir)
        if ck is not None:
            self.ns.resume_from = str(ck)
        self.notes.append((f"restart {self.restart} of {self.cfg.max_restart} by the elastic launcher: "
                           + (f"continuing from {ck.name}" if ck else "no checkpoint yet, starting again at step 1"),
                           "warning"))

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        problems = cfg.validate()
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        self.device = runtime.pick_device(cfg.device, cfg.devices)
        self.elastic_restart_point()
        runtime.set_device(self.device)
        self.phases.mark("device")
        if self.world > 1:
            runtime.init_parallel_env(self.rank)
        self.phases.mark("gloo")
        self.device_str = runtime.device_label(self.device, self.local_rank)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        paddle.seed(cfg.seed)
        if self.rank == 0:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise checkpoints.CheckpointError(
                    f"cannot create the output folder {self.out_dir}: {e.strerror or e}") from None
            if not os.access(self.out_dir, os.W_OK):
                raise checkpoints.CheckpointError(f"the output folder {self.out_dir} is not writable")
            stale = files.remove_stale_tmp(self.out_dir)
            if stale:
                self.notes.append((f"removed {len(stale)} unfinished checkpoint folder(s) left by an interrupted "
                                   f"save: {', '.join(p.name for p in stale)}", "warning"))

        from paddlenlp.transformers import GPTTokenizer

        self.fast = choose_fast_path(self.device, amp_request(cfg), cfg.fp16_opt_level, runtime.gpu_capability,
                                     runtime.flash_attention_importable, cfg.fast_path,
                                     cfg.flash_attention_drops_dropout)
        self.tokenizer = GPTTokenizer.from_pretrained(self.ns.model_dir)
        self._rng_before_model = paddle.get_rng_state()
        self.model = checkpoints.load_classifier(self.ns.resume_from or self.ns.model_dir, self.fast)
        self.phases.mark("model")
        self.pad_id = pad_id_for(self.model)
        tok_eos = self.tokenizer.eos_token_id
        if tok_eos is not None and int(tok_eos) != self.pad_id:
            self.notes.append((f"the tokenizer's EOS id {tok_eos} differs from the model's eos_token_id "
                               f"{self.pad_id}; padding with {self.pad_id}, the id the classifier skips", "warning"))

        self.load_data()
        self.phases.mark("data")
        self.host_info = self.comm.gather_objects((socket.gethostname(), self.local_rank, self.device_str))
        self.build_optimiser()
        settle_fast_path(self)
        self.phases.mark("optimiser")
        if self.fast.get("flash_attention") and self.fast.get("dropout_zeroed"):
            self.notes.append(("flash attention is on: attention and hidden dropout set to 0 "
                               "(flash attention on Hopper refuses dropout > 0)", "info"))
        self.resume_state = self.load_resume_state()
        self.raw_model = self.model
        self.model.train()
        if self.world > 1:
            self.model = paddle.DataParallel(self.model)

        self.probe.attach(self.device)
        nnodes = int(os.environ.get("PADDLE_NNODES", "0") or 0) or len({h for h, _, _ in self.host_info})
        self.emit(
            "start", world_size=self.world, nnodes=nnodes, devices=[d for _, _, d in self.host_info],
            versions=runtime.versions(), total_steps=self.total_steps, samples_per_epoch=len(self.train_enc),
            num_epochs=round(self.total_steps / self.steps_per_epoch, 4), resumed_from_step=self.start_step,
            pid=os.getpid(), fast_path=self.fast,
            steps_per_epoch=self.steps_per_epoch, global_batch=self.global_batch, dev_rows=len(self.dev_enc),
            output_dir=str(self.out_dir), hosts=[h for h, _, _ in self.host_info], restart=self.restart,
        )
        print(f"[gpt2-tui train] {self.phases.line()}", flush=True)  # paddle's logs/workerlog.N
        for text, level in self.notes:
            self.log(text, level)
        tr, dv = self.train_enc.truncated, self.dev_enc.truncated
        self.log(f"truncated {tr} of {len(self.train_enc)} train and {dv} of {len(self.dev_enc)} dev sentences "
                 f"to max_seq_length={cfg.max_seq_length} tokens", "warning" if tr or dv else "info")
        if self.resume_state:
            self.log(f"resumed from {self.ns.resume_from} at step {self.start_step}")

    def build_optimiser(self) -> None:
        opt = build_optimisation(self.model, self.cfg, self.total_steps, self.fast)
        self.model, self.optimizer, self.scheduler, self.scaler = opt.model, opt.optimizer, opt.scheduler, opt.scaler

    def build_model_and_optimiser(self) -> None:
        """Again, for a stepped-down fast path: from the same random state, so the head starts the same."""
        paddle.set_rng_state(self._rng_before_model)
        self.model = checkpoints.load_classifier(self.ns.resume_from or self.ns.model_dir, self.fast)
        self.build_optimiser()

    def load_data(self) -> None:
        cfg = self.cfg
        if cfg.data_dir == "glue":
            raise ValueError("--data_dir glue: the launcher resolves it to the downloaded folder; pass that folder")
        data_dir = Path(cfg.resolved_data_dir())  # 'sample' = the bundled sample
        self.train_enc, self.dev_enc, note = load_splits(self.tokenizer, data_dir, cfg.max_seq_length, self.pad_id,
                                                         self.local_rank == 0, self.comm.barrier)
        self.notes.append((note, "info"))
        # one optimiser step takes gradient_accumulation_steps micro-batches on every rank
        self.global_batch = cfg.per_device_train_batch_size * self.world * cfg.gradient_accumulation_steps
        self.steps_per_epoch = batching.steps_per_epoch(len(self.train_enc), self.global_batch, self.world)
        self.total_steps = schedule.total_steps(cfg.max_steps, cfg.num_train_epochs, self.steps_per_epoch)

    def load_resume_state(self) -> dict[str, Any] | None:
        ck = self.ns.resume_from
        if not ck:
            return None
        ck_path = Path(ck)
        state = files.read_state(ck_path)
        warning = checkpoints.restore_optimizer(ck_path, self.optimizer)
        if warning:
            self.notes.append((warning, "warning"))
        self.start_step = int(state.get("global_step", 0))
        lr_step = int(state.get("lr_step", self.start_step))
        self.scheduler.step(lr_step)
        self.record.resumed(state, read_paddlenlp_state(ck_path), self.start_step)
        epoch_f = float(state.get("epoch", self.start_step / self.steps_per_epoch))
        self.resume_epoch, self.resume_skip = schedule.resume_position(epoch_f, self.steps_per_epoch)
        if self.start_step >= self.total_steps:
            raise ValueError(f"the checkpoint is at step {self.start_step}, and this run has only "
                             f"{self.total_steps} steps: raise max_steps or num_train_epochs to continue")
        return state
