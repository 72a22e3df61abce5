"""What the trainer tells the world: events (rank 0 only), the heartbeat thread, and the step window.

Speed: the loss of a step is a device tensor; reading it (``float(loss)``) waits for the device, so
losses of pending steps are fetched together at a *flush* (every ~1 s or 10 steps, and before every
eval, checkpoint and the end), and each step's event is written then with that step's own values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from core.events import EventWriter

HEARTBEAT_S = 5.0
FLUSH_EVERY_S = 1.0  # write step events at least this often ...
FLUSH_MAX_STEPS = 10  # ... and never hold more than this many steps back


class Reporter:
    """The run's event file (rank 0 writes, the other ranks' calls do nothing) and the heartbeat."""

    def __init__(self, rank: int):
        self.rank = rank
        self.writer: EventWriter | None = None
        self._lock = threading.Lock()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None

    def open(self, run_dir: Path, heartbeat: Callable[[], dict[str, Any]]) -> None:
        """Rank 0: start the event file and a heartbeat every HEARTBEAT_S with ``heartbeat()``'s fields."""
        if self.rank != 0:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = EventWriter(run_dir / "events.jsonl")
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, args=(heartbeat,), name="heartbeat",
                                           daemon=True)
        self._hb_thread.start()

    def emit(self, type: str, **fields: Any) -> None:
        if self.writer is None:
            return
        with self._lock:
            self.writer.emit(type, **fields)

    def log(self, text: str, level: str = "info") -> None:
        self.emit("log", level=level, text=text)
        if self.rank == 0:
            print(f"[gpt2-tui train] {level}: {text}", flush=True)

    def close(self) -> None:
        self._hb_stop.set()
        if self.writer is not None:
            with self._lock:
                self.writer.close()

    def _heartbeat_loop(self, fields: Callable[[], dict[str, Any]]) -> None:
        while not self._hb_stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a heartbeat must never take the run down
                self.emit("heartbeat", **fields())


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


class StepWindow:
    """Steps not yet written: ``pending`` (losses still on the device), then ``fetched`` (numbers)."""

    def __init__(self) -> None:
        self.pending: list[Pending] = []
        self.fetched: list[Pending] = []

    def add(self, p: Pending) -> None:
        self.pending.append(p)

    def fetch(self, synchronous_device: bool) -> list[Pending]:
        """Read the pending losses (the one device sync); returns the steps just fetched."""
        pend, self.pending = self.pending, []
        if pend:
            losses = paddle.stack([p.loss for p in pend]).astype("float32").numpy()
            now = time.perf_counter()
            host = sum(p.dt for p in pend)
            # On a GPU the host runs ahead of the device; spread the synced wall time of the window over
            # its steps in proportion to their host times. On a CPU every op is synchronous: keep them.
            scale = (now - pend[0].t0) / host if host > 0 and not synchronous_device else 1.0
            for p, v in zip(pend, losses, strict=True):
                p.loss, p.dt = float(v), p.dt * scale
        self.fetched.extend(pend)
        return pend

    def windows(self, logging_steps: int, final: bool) -> list[list[Pending]]:
        """Take every complete logging window (and, when final, the partial last one)."""
        out: list[list[Pending]] = []
        while self.fetched:
            ends = [i for i, p in enumerate(self.fetched) if p.step % logging_steps == 0]
            if ends:
                k = ends[0] + 1
            elif final:
                k = len(self.fetched)
            else:
                break
            out.append(self.fetched[:k])
            self.fetched = self.fetched[k:]
        return out


def step_fields(win: list[Pending]) -> dict[str, Any]:
    """The ``step`` event of one logging window: the last step's numbers, means and rates over the window."""
    last = win[-1]
    dt = sum(p.dt for p in win)
    return {"step": last.step, "epoch": round(last.epoch, 6), "loss": float(np.mean([p.loss for p in win])),
            "lr": last.lr, "samples_per_s": sum(p.samples for p in win) / dt if dt > 0 else None,
            "tokens_per_s": sum(p.tokens for p in win) / dt if dt > 0 else None, "step_time": dt / len(win)}
