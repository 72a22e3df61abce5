"""The ``TrainerCallback`` that writes our events from PaddleNLP's ``Trainer``: for a watched script and for
``--engine paddlenlp``.

Imported only where paddlenlp is loaded. ``gpt2-tui watch`` puts it into a watched script's Trainer
(core/watch_hook), writing ``trainer_events.jsonl``, which the watcher forwards into the run's
events.jsonl; core/engine_paddlenlp.py uses it (subclassed) to write events.jsonl itself. Rank 0 writes.
The step and eval fields come from core.logparse: one mapping of PaddleNLP's log keys to ours, whether
they arrive as a dict here or as a printed line.

A stop request (the run folder's ``stop`` file, or SIGTERM/SIGINT noted in ``signal_num``) makes the
Trainer save a checkpoint and stop. Every rank must stop at the same step (a rank that trains on alone
waits in its next all-reduce until gloo aborts it), so with several ranks the request is agreed on by a
one-number all-reduce at the end of every logging step, at least every AGREE_MAX_STEPS steps: reading
its result waits for the device, and the Trainer waits there anyway to log the loss. The same meeting
carries rank 0's "health is due" (every RANKS_EVERY_S): then every rank's record (host, device, step
time, memory, CPU %) is gathered into a ``ranks`` event, the live screen's ranks panel.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from paddlenlp.trainer.trainer_callback import TrainerCallback

from core.events import EventWriter
from core.logparse import LogParser

HEARTBEAT_S = 5.0  # as our trainer's (core/trainer/reporting.py): reconcile reads a run as alive by it
RANKS_EVERY_S = 5.0  # rank health records, as often as the heartbeat
AGREE_MAX_STEPS = 10  # a stop request waits at most this many steps with several ranks (ours: FLUSH_MAX_STEPS)


def _numbers(logs: dict[str, Any]) -> dict[str, float | None]:
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in logs.items()}


class EventsCallback(TrainerCallback):  # type: ignore[misc]
    def __init__(self, path: str, heartbeat_s: float | None = HEARTBEAT_S):
        self.path = Path(path)
        self.stop_file = self.path.parent / "stop"
        self.parser = LogParser()
        self.heartbeat_s = heartbeat_s
        self.signal_num = 0  # set by a signal handler: a stop request like the stop file
        self.stop_requested = False  # the ranks agreed to stop (save, then end "stopped")
        self.saved: dict[int, str] = {}  # checkpoints announced, to announce their deletion (save_total_limit)
        self.last_eval_step = -1
        self.last_save_step = -1
        self._writer: EventWriter | None = None
        self._lock = threading.RLock()  # the heartbeat holds it around _emit (which takes it again)
        self._step = 0
        self._hb_stop = threading.Event()
        self.device = ""  # this rank's device label for its health record (the engine sets it)
        self._ranks_t = -float("inf")  # rank 0: when the last ranks event went out
        self._meet = (time.monotonic(), 0)  # (time, step) of this rank's last meeting: its step time
        self._proc: Any = None

    # ------------------------------------------------------------------ writing
    def _emit(self, state: Any, type: str, **fields: Any) -> None:
        if not state.is_world_process_zero:
            return
        with self._lock:
            if self._writer is None:
                self._writer = EventWriter(self.path)
            self._writer.emit(type, **fields)

    def _heartbeat(self, state: Any, args: Any) -> None:
        import psutil

        me = psutil.Process()
        local_rank = max(int(getattr(args, "local_rank", 0) or 0), 0)  # -1 when not distributed
        fields = {"rank": 0, "host": socket.gethostname(), "local_rank": local_rank,
                  "device": self.device or f"{getattr(args, 'device', 'cpu')}:{local_rank}"}
        while not self._hb_stop.wait(self.heartbeat_s or HEARTBEAT_S):
            with self._lock, contextlib.suppress(Exception):  # a heartbeat must never take the run down
                if self._hb_stop.is_set():  # close() came first: nothing after the end
                    return
                self._emit(state, "heartbeat", step=self._step, mem_bytes=me.memory_info().rss, **fields)

    def close(self) -> None:
        self._hb_stop.set()
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # ------------------------------------------------------------------ PaddleNLP's events
    def start_fields(self, args: Any, state: Any, **kwargs: Any) -> dict[str, Any]:
        loader = kwargs.get("train_dataloader")
        try:
            samples = len(loader.dataset) if loader is not None else None
        except TypeError:
            samples = None
        return {"world_size": getattr(args, "world_size", None), "nnodes": None, "devices": [], "versions": {},
                "total_steps": state.max_steps, "samples_per_epoch": samples,
                "num_epochs": getattr(args, "num_train_epochs", None), "resumed_from_step": state.global_step,
                "pid": os.getpid()}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step = state.global_step
        self._meet = (time.monotonic(), state.global_step)  # step times count from here (not setup, not resume)
        self._emit(state, "start", **self.start_fields(args, state, **kwargs))
        if self.heartbeat_s and state.is_world_process_zero:
            threading.Thread(target=self._heartbeat, args=(state, args), name="heartbeat", daemon=True).start()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kv = _numbers(logs or {})
        if kv.get("loss") is not None:
            self.parser.last_step = state.global_step - 1
            ev = self.parser.step_event({**kv, "global_step": float(state.global_step)})
            self.on_step_logged(ev, kv, state, control)
        elif any(k.startswith("eval_") for k in kv):
            self.parser.last_step = state.global_step
            ev = self.parser.eval_event(kv)
            self.last_eval_step = state.global_step
        else:
            return
        self._emit(state, ev.pop("type"), **ev)

    def on_step_logged(self, ev: dict[str, Any], kv: dict[str, float | None], state: Any, control: Any) -> None:
        """A subclass's look at each step event before it is written (fill a field, act on the loss)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.last_save_step = state.global_step
        path = os.path.abspath(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))
        self._emit(state, "checkpoint", step=state.global_step, path=path)
        self.saved[state.global_step] = path
        # The Trainer's save_total_limit rotation runs inside the save, before this event.
        for step, old in sorted(self.saved.items()):
            if not os.path.isdir(old):
                self._emit(state, "checkpoint_deleted", step=step, path=old)
                del self.saved[step]

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._step = state.global_step
        stop, ranks = self.meet(args, state)
        if ranks:
            self._emit(state, "ranks", step=state.global_step, ranks=ranks)
        if stop:
            self.stop_requested = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        # An epoch strategy asks again for the step just evaluated or saved (the run's last step is an
        # epoch's end too): once is enough.
        if state.global_step == self.last_eval_step or self.stop_requested:
            control.should_evaluate = False
        if state.global_step == self.last_save_step:
            control.should_save = False
        return control

    def meet(self, args: Any, state: Any) -> tuple[bool, list[dict[str, Any]]]:
        """(stop, rank records). With several ranks both are agreed at the steps where they meet (the same
        steps on every rank: one all-reduce of [stop request, health due]), and (False, []) between."""
        step = state.global_step
        local = 1 if (self.signal_num or self.stop_file.exists()) else 0
        due = 1 if state.is_world_process_zero and time.monotonic() - self._ranks_t >= RANKS_EVERY_S else 0
        if int(getattr(args, "world_size", 1) or 1) <= 1:
            records = [self.rank_record(args, step)] if due else []
        elif step % max(1, min(int(getattr(args, "logging_steps", 1) or 1), AGREE_MAX_STEPS)):
            return False, []
        else:
            import paddle
            import paddle.distributed as dist

            flag = paddle.to_tensor([local, due], dtype="int32")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            local, due = (int(v) for v in flag.numpy())
            records = []
            if due:
                dist.all_gather_object(records, self.rank_record(args, step))
        if due:
            self._ranks_t = time.monotonic()
        return bool(local), records

    def rank_record(self, args: Any, step: int) -> dict[str, Any]:
        """This rank's health since its last meeting (core.records.RankRecord)."""
        import psutil

        now, (t0, s0) = time.monotonic(), self._meet
        self._meet = (now, step)
        if self._proc is None:
            self._proc = psutil.Process()
            self._proc.cpu_percent()  # the first reading is 0.0: it starts the measure
        me = self._proc
        local_rank = max(int(getattr(args, "local_rank", 0) or 0), 0)  # -1 when not distributed
        return {"rank": int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0), "host": socket.gethostname(),
                "local_rank": local_rank, "device": self.device or f"{getattr(args, 'device', 'cpu')}:{local_rank}",
                "step_time": (now - t0) / (step - s0) if step > s0 else None,
                "samples": step * int(getattr(args, "per_device_train_batch_size", 0) or 0)
                * int(getattr(args, "gradient_accumulation_steps", 1) or 1),
                "mem_bytes": me.memory_info().rss, "util": me.cpu_percent()}

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()
