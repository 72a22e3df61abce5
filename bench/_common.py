"""Shared helpers for the bench/ scripts: robust statistics, subprocess environment, table printing.

No paddle and no Textual here: the drivers stay light and start their measured work in subprocesses.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def summary(xs: Sequence[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements: min, max and the relative half-range."""
    xs = [float(x) for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None, "spread_pct": None, "values": []}
    med = statistics.median(xs)
    spread = (max(xs) - min(xs)) / 2 / med * 100 if med else None
    return {"n": len(xs), "median": med, "min": min(xs), "max": max(xs),
            "spread_pct": round(spread, 1) if spread is not None else None, "values": [round(x, 4) for x in xs]}


def fmt_summary(s: dict[str, Any], unit: str = "", digits: int = 1) -> str:
    if not s.get("n"):
        return "n/a"
    return (f"{s['median']:.{digits}f}{unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, "
            f"±{s['spread_pct']:.1f} %, n={s['n']})")


def bench_env(threads: int | None = 1, cpu_only: bool = True, **extra: str) -> dict[str, str]:
    """Environment for a measured subprocess: the checkout importable, a fixed math thread count.

    ``cpu_only`` drops CUDA_VISIBLE_DEVICES: a set one kills CPU paddle workers (docs/ARCHITECTURE.md).
    """
    env = dict(os.environ)
    if cpu_only:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(threads)
    env.update(extra)
    return env


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                            "platform": platform.platform()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:  # which code was measured: the commit, and how many files differ from it
        info["git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout
        info["git_changed_files"] = len(dirty.splitlines())
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def write_json(path: str | os.PathLike[str] | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
        print(f"wrote {path}")


class Timer:
    """Wall time and this process's CPU time (all threads) of a block.

    On a shared 2-core box the wall time of a short block is mostly waiting for a core; the CPU time
    is what the code itself costs. Both are reported.
    """

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
