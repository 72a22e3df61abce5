"""Fakes for driving the dashboard without paddle or hardware: tests, snapshots, demos.

- FakeClock: a settable clock (``Gpt2App(clock=...)``): no real time reaches the rendering.
- FakeSampler: scripted GPU/CPU readings; after ``samples`` readings it returns None (the app's
  sampling worker then stops), so a snapshot always sees the same history.
- FakeLauncher: "launches" by creating the run row in the given store and writing canned events
  into a real runs/<id>/events.jsonl (and a workerlog.0); more events can be appended later with
  ``emit``, and ``stop`` writes the end event a real trainer would.
- fake_services: the app's ``Services`` around a store, built from these fakes.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.devices import CpuInfo, DeviceReport, GpuInfo, ProcStat
from core.follow import sync_events
from core.launch import runs_root_for
from core.store import Store
from tui.evaljobs import EvalLauncher
from tui.launcher import Launcher
from tui.services import Services

T0 = 1_700_000_000.0  # a fixed "now" for canned runs
GIB = 1024**3


class FakeClock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


# ---------------------------------------------------------------------------- devices
def fake_report(k: int, gpus: int = 2, cores: int = 8) -> DeviceReport:
    """The k-th reading of a deterministic machine: busy GPUs with slowly varying load."""
    gs = []
    for i in range(gpus):
        util = 60 + 35 * (0.5 + 0.5 * math.sin((k + 3 * i) / 3.0))
        gs.append(GpuInfo(
            index=i, name="NVIDIA H200", uuid=f"GPU-fake-{i}", mem_total=int(140 * GIB),
            mem_used=int((30 + 20 * i + 10 * (0.5 + 0.5 * math.cos((k + i) / 4.0))) * GIB),
            util=round(util, 1), temperature=55.0 + 3 * i + (k % 5), power_w=400.0 + 10 * (k % 7) + 25 * i,
            power_limit_w=700.0, vendor="nvidia"))
    load = [round(20 + 60 * (0.5 + 0.5 * math.sin((k + c) / 2.0)), 1) for c in range(cores)]
    cpu = CpuInfo(cores_logical=cores, cores_physical=cores // 2, mem_total=int(64 * GIB),
                  mem_used=int((20 + (k % 4)) * GIB), load_per_core=load, model="Fake CPU @ 3.0GHz")
    return DeviceReport(gs, cpu, [] if gpus else ["no NVIDIA driver (libnvidia-ml.so.1 not found)"],
                        "nvml" if gpus else "none")


class FakeSampler:
    """``gate``: an Event the first reading waits for (up to 10 s), so a test can have every reading
    arrive after a screen is up (its process lists included)."""

    def __init__(self, gpus: int = 2, cores: int = 8, samples: int | None = 30,
                 gate: threading.Event | None = None):
        self.gpus, self.cores, self.samples = gpus, cores, samples
        self.gate = gate
        self.calls = 0

    def sample(self) -> DeviceReport | None:
        if self.gate is not None and self.calls == 0:
            self.gate.wait(10)
        if self.samples is not None and self.calls >= self.samples:
            return None
        self.calls += 1
        return fake_report(self.calls, self.gpus, self.cores)

    def process_stats(self, pids: list[int]) -> list[ProcStat]:
        return [ProcStat(pid, 97.5 - 3 * n, int((1.5 + 0.25 * n) * GIB)) for n, pid in enumerate(pids)]

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- canned events
def loss_at(step: int) -> float:
    return 0.69 * math.exp(-step / 120) + 0.25 + 0.04 * (((step * 37) % 11) - 5) / 5


def canned_events(start: int = 1, stop: int = 40, total_steps: int = 120, t0: float = T0, step_s: float = 0.5,
                  eval_every: int = 20, world_size: int = 2, first: bool = True,
                  nan_at: int | None = None) -> list[dict[str, Any]]:
    """Events of a fake run for steps start..stop (inclusive), with a start event when ``first``."""
    evs: list[dict[str, Any]] = []
    if first:
        evs.append({"type": "start", "t": t0, "world_size": world_size, "nnodes": 1, "devices": ["gpu:0", "gpu:1"],
                    "total_steps": total_steps, "samples_per_epoch": total_steps * 32 // 3, "num_epochs": 3.0})
        evs.append({"type": "log", "t": t0, "level": "info", "text": "fake run started"})
    for s in range(start, stop + 1):
        t = t0 + s * step_s
        loss = float("nan") if nan_at is not None and s == nan_at else loss_at(s)
        sps = 64.0 + (s % 7)
        evs.append({"type": "step", "t": t, "step": s, "epoch": round(3.0 * s / total_steps, 4),
                    "loss": "nan" if loss != loss else round(loss, 5), "lr": 3e-3 * min(1.0, s / 12) * (1 - s / total_steps),
                    "samples_per_s": sps, "tokens_per_s": sps * 64, "step_time": step_s})
        if s % 10 == 0:
            evs.append({"type": "ranks", "t": t, "step": s, "ranks": [
                {"rank": r, "host": "fakehost", "local_rank": r, "device": f"gpu:{r}", "step_time": step_s,
                 "samples": 32, "mem_bytes": int((12 + r) * GIB), "util": 90.0 - 5 * r} for r in range(world_size)]})
            evs.append({"type": "heartbeat", "t": t, "rank": 0, "step": s, "mem_bytes": int(12 * GIB)})
        if eval_every and s % eval_every == 0:
            evs.append({"type": "eval", "t": t, "step": s, "accuracy": round(0.55 + 0.3 * s / total_steps, 4),
                        "loss": round(loss_at(s) + 0.05, 4), "n": 872})
    return evs


class FakeLauncher:
    """A launcher that starts nothing: the run is a row in the store and a file of canned events."""

    def __init__(self, events: list[dict[str, Any]] | None = None, run_id: str = "20231114-221320-beef",
                 devices: str = "gpu:0,1", log_lines: list[str] | None = None, stop_delay: float = 0.0):
        self.initial = canned_events() if events is None else events
        self.run_id = run_id
        self.devices = devices
        self.log_lines = log_lines if log_lines is not None else [
            "[gpt2-tui train] info: fake run started", "step 10: loss 0.80", "step 20: loss 0.72"]
        self.stop_delay = stop_delay
        self.launched: list[RunConfig] = []
        self.stopped: list[str] = []
        self.run_dir: Path | None = None
        self._seq = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Launcher protocol
    def launch(self, store: Store, cfg: RunConfig, report: Any = None, progress: Any = None) -> dict[str, Any]:
        self.launched.append(cfg)
        run_dir = runs_root_for(store.path) / self.run_id
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        (run_dir / "logs" / "workerlog.0").write_text("".join(ln + "\n" for ln in self.log_lines))
        (run_dir / "events.jsonl").write_text("")
        store.create_run({
            "id": self.run_id, "kind": "train", "name": cfg.run_name or self.run_id, "status": "running",
            "created_at": T0, "config": cfg.to_dict(), "command": ["fake"], "run_dir": str(run_dir),
            "output_dir": str(run_dir / "checkpoints"), "model": cfg.model_name_or_path, "devices": self.devices,
            "world_size": 2, "nnodes": 1, "host": "fakehost",
        })
        self.emit(*self.initial)
        run = store.get_run(self.run_id)
        assert run is not None
        return run

    def resume(self, store: Store, run_id: str) -> dict[str, Any]:
        raise NotImplementedError("FakeLauncher does not resume runs; tests of resume pass their own launcher")

    def stop(self, store: Store, run: dict[str, Any]) -> str:
        self.stopped.append(run["id"])
        if self.stop_delay:
            time.sleep(self.stop_delay)
        self.emit({"type": "end", "t": T0 + 3600, "status": "stopped", "reason": "stop requested (checkpoint saved)"})
        sync_events(store, run["id"])
        got = store.get_run(run["id"])
        return got["status"] if got else "stopped"

    def reconcile(self, store: Store, run_id: str) -> dict[str, Any]:
        sync_events(store, run_id)
        run = store.get_run(run_id)
        assert run is not None
        return run

    def processes(self, run: dict[str, Any]) -> list[tuple[str, int]]:
        return [("rank 0", 4242), ("rank 1", 4243), ("launcher", 4240)]

    # ------------------------------------------------------------------ test helpers
    def emit(self, *events: dict[str, Any]) -> None:
        """Append events (type, t and fields; v and seq are filled in) to the run's events.jsonl."""
        assert self.run_dir is not None, "launch first"
        with self._lock, open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as fh:
            for ev in events:
                line = {"v": 1, "seq": self._seq, **ev}
                self._seq += 1
                fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def log(self, *lines: str, rank: int = 0) -> None:
        assert self.run_dir is not None, "launch first"
        with open(self.run_dir / "logs" / f"workerlog.{rank}", "a", encoding="utf-8") as fh:
            fh.write("".join(ln + "\n" for ln in lines))


def fake_services(store_path: str | Path, *, launcher: Launcher | None = None, sampler: FakeSampler | None = None,
                  clock: Any = None, eval_launcher: EvalLauncher | None = None, poll_interval: float = 0.02,
                  sample_interval: float = 0.02) -> Services:
    """``Services`` for a test or a demo: a FakeLauncher, a FakeSampler and a FakeClock unless given."""
    return Services.for_store(store_path, launcher=launcher if launcher is not None else FakeLauncher(),
                              eval_launcher=eval_launcher, clock=clock if clock is not None else FakeClock(),
                              sampler=sampler if sampler is not None else FakeSampler(),
                              poll_interval=poll_interval, sample_interval=sample_interval)


async def wait_for(pilot: Any, cond: Any, timeout: float = 10.0) -> None:
    """Pilot tests: let the app run until ``cond()`` holds, or fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")
