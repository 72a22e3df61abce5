"""Launching real runs for benchmarks (the installed ``gpt2-tui``) and reading their event files.

No paddle here: runs start as subprocesses through the CLI, exactly as a user starts them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT

GPT2_TUI = Path(sys.executable).parent / "gpt2-tui"


def cli() -> list[str]:
    exe = GPT2_TUI if GPT2_TUI.exists() else shutil.which("gpt2-tui")
    return [str(exe)] if exe else [sys.executable, "-m", "core.cli"]


def launch(db: Path, data: Path, steps: int, env: dict[str, str], devices: str = "cpu:2", name: str = "bench",
           extra: list[str] | None = None) -> tuple[str, float]:
    """``gpt2-tui train --detach`` with the offline preset; returns (run id, seconds the CLI took)."""
    cmd = [*cli(), "--db", str(db), "train", "--detach", "--preset", "offline", "--data_dir", str(data),
           "--max_steps", str(steps), "--eval_steps", "1000000", "--save_steps", "1000000", "--logging_steps", "1",
           "--devices", devices, "--run_name", name, *(extra or [])]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=str(db.parent), env=env, capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"gpt2-tui train failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout.strip().splitlines()[-1].strip(), dt


def run_dir(db: Path, run_id: str) -> Path:
    return db.parent / "runs" / run_id


def read_events(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_for(path: Path, pred: Any, timeout: float, poll: float = 0.05) -> tuple[dict[str, Any] | None, float]:
    """First event of ``path`` that satisfies pred, polling; (event, perf_counter when seen)."""
    deadline = time.monotonic() + timeout
    offset = 0
    buf = b""
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if pred(ev):
                    return ev, time.perf_counter()
        time.sleep(poll)
    return None, time.perf_counter()


def wait_exit(rdir: Path, timeout: float = 120) -> bool:
    """Until core.supervise wrote exit.json (the launcher and its ranks are gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (rdir / "exit.json").exists():
            return True
        time.sleep(0.1)
    return False


def stop(rdir: Path) -> None:
    """Ask the trainer to stop at its next step (the stop file core.launch.request_stop writes)."""
    (rdir / "stop").write_text(str(time.time()))


def steady_rate(events: list[dict[str, Any]], warmup_steps: int) -> dict[str, Any]:
    """samples/s from step events between flush boundaries, after ``warmup_steps``.

    The trainer writes step events at flushes (every ~1 s or 10 steps), all lines of one flush within a
    millisecond; the window runs from the end of the first flush after ``warmup_steps`` to the end of the
    last flush, so it holds whole steps only. A step's samples = samples_per_s x step_time.
    """
    steps = [e for e in events if e.get("type") == "step"]
    if len(steps) < 3:
        return {"samples_per_s": None, "window_steps": 0, "window_s": 0.0}
    ends = [i for i in range(len(steps) - 1) if steps[i + 1]["t"] - steps[i]["t"] > 0.005] + [len(steps) - 1]
    a = next((i for i in ends if steps[i]["step"] >= warmup_steps), None)
    b = ends[-1]
    if a is None or a >= b:
        return {"samples_per_s": None, "window_steps": 0, "window_s": 0.0}
    samples = sum(float(e["samples_per_s"]) * float(e["step_time"]) for e in steps[a + 1 : b + 1])
    dt = steps[b]["t"] - steps[a]["t"]
    return {"samples_per_s": samples / dt if dt > 0 else None, "window_steps": b - a, "window_s": dt,
            "window_t0": steps[a]["t"], "window_t1": steps[b]["t"],
            "mean_step_time": sum(e["step_time"] for e in steps[a + 1 : b + 1]) / (b - a)}


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["GPT2_TUI_CACHE"] = str(tmp / "cache")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env
