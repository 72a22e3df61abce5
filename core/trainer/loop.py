"""The Trainer: the training loop, the flush where ranks agree, evaluations, checkpoints, how a run ends.

Only rank 0 writes events (core.events); every rank writes paddle's own logs/workerlog.N. A file
RUN/stop, SIGTERM or SIGINT asks for a graceful stop: flush, checkpoint, ``end`` stopped, exit 0.
With several ranks the flush is also where ranks talk: one all_gather of a few floats per rank
(health, stop request, NaN), so every rank decides to stop at the same step.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paddle
import paddle.nn.functional as F

from core import batching
from core import checkpoint_files as files
from core.trainer import checkpoints, elastic, schedule
from core.trainer.encoding import DEV_FILE
from core.trainer.evaluation import amp_context, evaluate_dev
from core.trainer.reporting import FLUSH_EVERY_S, FLUSH_MAX_STEPS, Pending, step_fields
from core.trainer.setup import TrainerSetup
from core.trainer.state import state_files

# Fault injection for tests: the loss of this step (1-based) becomes NaN.
SAVE_MEETING_S = 1.0  # how often the ranks meet while rank 0 writes a checkpoint
NAN_TEST_STEP = int(os.environ.get("GPT2_TUI_TEST_NAN_AT_STEP", "0") or 0)


class Trainer(TrainerSetup):
    """One rank's training process (core/train.py runs ``Trainer(ns, cfg).run()``)."""

    # ------------------------------------------------------------------ life of the process
    def run(self) -> int:
        self.report.open(self.run_dir, self._heartbeat)
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
            self.report.close()

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
        return elastic.restart_expected(status, self.cfg.max_restart, self.restart, self.stop_file.exists(),
                                        bool(self.signal_num))

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal_num = int(signum)

    # ------------------------------------------------------------------ the loop
    def epochs(self) -> Iterator[tuple[int, int, bool, list[int]]]:
        """(epoch, index in epoch, last of the epoch, the global batch's rows) from the resume point on."""
        epoch = self.resume_epoch if self.resume_state else 0
        skip = self.resume_skip if self.resume_state else 0
        lengths = self.train_enc.lengths
        while True:
            gbs = batching.global_batches(lengths, self.global_batch, self.world, self.cfg.seed, epoch)
            for i in range(skip, len(gbs)):
                yield epoch, i, i + 1 == len(gbs), gbs[i]
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
            epoch, index, epoch_end, batch = next(data)
            gsize = len(batch)
            t0 = time.perf_counter()
            # at most the configured micro-batch a call (more accumulation after an out-of-memory trial), cut
            # where the lengths change: SST-2-like batches padded as one call are ~72 % padding, cut ~22 %
            micro = batching.length_micro_batches(self.train_enc.lengths, batch, -(-gsize // (self.world * self.accum)),
                                                  world=self.world, rank=self.rank)
            rows = [i for mb in micro for i in mb]
            loss = self.train_step(rows, micro)
            self.global_step += 1
            step = self.global_step
            self.epoch_f = epoch + (index + 1) / self.steps_per_epoch
            # tokens/s of the whole job, estimated as rank 0's non-pad tokens x world (ranks get rows of
            # similar length: each takes every world-th row of a length-sorted global batch)
            tokens = int(self.train_enc.lengths[rows].sum()) * self.world
            self.window.add(Pending(step, self.epoch_f, loss, self._lr_used, gsize, tokens,
                                    time.perf_counter() - t0, t0))
            self.samples_done += len(rows)
            last = step >= self.total_steps
            do_eval = schedule.should_evaluate(step, last, epoch_end, cfg.do_eval, cfg.evaluation_strategy,
                                               cfg.eval_steps)
            do_save = schedule.should_save(step, last, epoch_end, cfg.save_strategy, cfg.save_steps)
            verdict = self.maybe_flush(force=do_eval or do_save, final=last)
            if verdict is not None:
                return verdict
            if do_eval:
                self.evaluate()
            if do_save:
                self.save_checkpoint()
        return "finished", f"reached step {self.global_step} of {self.total_steps}"

    def train_step(self, rows: list[int], micro: list[list[int]] | None = None) -> Any:
        """One optimiser step over this rank's rows, in the given micro-batches (default: cut by length, one
        rank): the loss is their mean however many micro-batches they take (each micro-batch's mean loss
        weighted by its share of the rows)."""
        if micro is None:
            micro = batching.length_micro_batches(self.train_enc.lengths, rows, -(-len(rows) // self.accum))
        total: Any = None
        for i, mb in enumerate(micro):
            ids, labels, _ = batching.pad_batch(self.train_enc, mb, self.pad_id)
            x, y = paddle.to_tensor(ids), paddle.to_tensor(labels)
            with amp_context(self.fast):
                logits = self.model(x)
            loss = F.cross_entropy(logits.astype("float32"), y)
            if self.global_step + 1 == NAN_TEST_STEP:
                loss = loss * float("nan")
            if len(micro) > 1:
                loss = loss * (len(mb) / len(rows))
            # DataParallel all-reduces gradients at each backward: only the last micro-batch's needs to
            sync = self.world == 1 or i == len(micro) - 1
            with contextlib.nullcontext() if sync else self.model.no_sync():
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self._lr_used = float(self.scheduler.get_lr())
        self.scheduler.step()
        self.optimizer.clear_grad()
        return total

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
            due = (force or self.signal_num or self.stop_file.exists()
                   or len(self.window.pending) >= FLUSH_MAX_STEPS
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
        pend = self.window.fetch(synchronous_device=self.device == "cpu")
        self._last_flush = time.perf_counter()
        nan_step = next((p.step for p in pend if not math.isfinite(p.loss)), 0)
        mean_dt = (sum(p.dt for p in pend) / len(pend)) if pend else 0.0
        row = [mean_dt, float(self.samples_done), float(self.probe.mem_bytes()), self.probe.util(),
               1.0 if self.stop_file.exists() else 0.0, float(nan_step), float(self.signal_num)]
        table = self.comm.all_gather_rows(row)  # every rank gets the same table and so decides the same
        if self.world > 1:
            slowest = float(table[:, 0].max())
            self._flush_interval = int(min(FLUSH_MAX_STEPS, max(1, FLUSH_EVERY_S // max(slowest, 1e-3))))
            self._next_flush_step = step + self._flush_interval
            nan_steps = [int(s) for s in table[:, 5] if s > 0]
            nan_step = min(nan_steps) if nan_steps else 0
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
        for win in self.window.windows(self.cfg.logging_steps, final):
            f = step_fields(win)
            self.emit("step", **f)
            self.record.logged_step(f["step"], f["epoch"], f["loss"], f["lr"], f["step_time"] * len(win),
                                    f["samples_per_s"])

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
        res = evaluate_dev(self.raw_model, self.dev_enc, self.rank, self.world, self.cfg.per_device_eval_batch_size,
                           self.pad_id, self.fast, self.comm)
        dt = res.seconds
        self.record.evaluated(step, self.epoch_f, res.accuracy, res.loss, dt, res.n / dt if dt > 0 else None)
        self.emit("eval", step=step, accuracy=res.accuracy, loss=res.loss, n=res.n,
                  eval_path=str(Path(self.cfg.resolved_data_dir()).resolve() / DEV_FILE), mode="classify",
                  eval_time=round(dt, 3), samples_per_s=res.n / dt if dt > 0 else None)

    def save_checkpoint(self) -> None:
        step = self.global_step
        if self.last_save_step == step:
            return
        self.last_save_step = step
        if self.world == 1:
            self._announce(step, *self._write_checkpoint(step))
            return
        # Several ranks: rank 0 writes in a thread while every rank meets in a one-number all-reduce each
        # second. Gloo gives a collective ~30 s: a GPT-2 Medium save (1.4 GB of weights, 2.8 GB of AdamW
        # state) takes longer, and rank 1, already in the next step's gradient all-reduce, aborted with
        # gloo::TimeoutException (bench/medium_cpu.py). Meetings a second apart never come near it.
        result: dict[str, Any] = {}
        writer = None
        if self.rank == 0:
            writer = threading.Thread(target=self._write_into, args=(step, result), daemon=True)
            writer.start()
        while True:
            if writer is not None:
                writer.join(timeout=SAVE_MEETING_S)
            flag = 0.0
            if writer is not None and not writer.is_alive():
                flag = 2.0 if "error" in result else 1.0
            (total,) = self.comm.all_sum([flag])
            if total >= 1.0:
                break
        if total >= 2.0:
            if "error" in result:
                raise result["error"]
            raise checkpoints.CheckpointError(f"rank 0 could not save checkpoint-{step} (its log says why)")
        if self.rank == 0:
            self._announce(step, *result["done"])

    def _write_into(self, step: int, result: dict[str, Any]) -> None:
        try:
            result["done"] = self._write_checkpoint(step)
        except BaseException as e:  # handed to the main thread, which raises it
            result["error"] = e

    def _write_checkpoint(self, step: int) -> tuple[Path | None, list[tuple[int, Path]]]:
        """Rank 0 writes checkpoint-<step> and applies save_total_limit; no events (the caller's thread
        writes those). Other ranks write nothing."""
        if self.rank != 0:
            return None, []
        cfg = self.cfg
        ours = {"global_step": step, "epoch": self.epoch_f, "lr_step": int(self.scheduler.last_epoch),
                "world_size": self.world, "global_batch": self.global_batch, "steps_per_epoch": self.steps_per_epoch,
                "gradient_accumulation_steps": cfg.gradient_accumulation_steps, "seed": cfg.seed,
                "max_seq_length": cfg.max_seq_length, "model_dir": str(Path(self.ns.model_dir).resolve())}
        self.record.saving(step, self.out_dir / f"checkpoint-{step}")
        final = checkpoints.save_checkpoint(self.out_dir, step, self.raw_model, self.tokenizer, self.optimizer,
                                            state_files(self.record, ours, self.total_steps))
        best = self.record.best_model_checkpoint
        try:  # only once the new checkpoint is safely in place
            deleted = files.retain(self.out_dir, Path(best) if best else None, cfg.save_total_limit)
        except OSError as e:
            raise checkpoints.CheckpointError(f"cannot remove old checkpoints in {self.out_dir} "
                                              f"(save_total_limit {cfg.save_total_limit}): {e}") from None
        return final, deleted

    def _announce(self, step: int, final: Path | None, deleted: list[tuple[int, Path]]) -> None:
        if final is None:
            return
        self.emit("checkpoint", step=step, path=str(final))
        for old_step, path in deleted:
            self.log(f"deleted {path.name} (save_total_limit {self.cfg.save_total_limit}; kept the newest and "
                     f"the best)")
            self.emit("checkpoint_deleted", step=old_step, path=str(path))
