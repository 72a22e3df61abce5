"""Which accelerators and CPU cores this machine has, how busy they are, and whether paddle can use them.

Backends, tried in order (the first that answers wins):

1. NVML through ``pynvml`` (the ``nvidia-ml-py`` package): ``nvml.py``.
2. Iluvatar's NVML-compatible ``libixml.so``, driven by the same ``pynvml`` functions behind a shim.
3. ``ixsmi`` (Iluvatar's ``nvidia-smi``) on PATH, parsed from its CSV: ``ixsmi.py``.

CPU facts come from ``psutil`` (``cpu.py``); the installed paddle build from its files
(``core.paddle_build``); the device rule is ``select.py``. No paddle here: the UI process calls this at
~1 Hz.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import psutil

from core.devices.cpu import cpu_info
from core.devices.ixsmi import IXSMI_FIELDS, IxsmiBackend, parse_ixsmi_csv
from core.devices.model import (
    CpuInfo,
    DeviceError,
    DeviceReport,
    DeviceSelection,
    GpuInfo,
    GpuProcess,
    ProcStat,
)
from core.devices.nvml import NvmlBackend, open_nvml
from core.devices.render import render_text, to_json
from core.devices.select import gpu_problem, parse_devices, visible_ids
from core.paddle_build import PaddleBuild, detect_paddle

__all__ = [
    "IXSMI_FIELDS", "CpuInfo", "DeviceError", "DeviceReport", "DeviceSampler", "DeviceSelection", "GpuInfo",
    "GpuProcess", "PaddleBuild", "ProcStat", "detect", "gpu_problem", "parse_devices", "parse_ixsmi_csv",
    "render_text", "to_json", "visible_ids",
]


def _open_backend(nvml: Any | None, errors: list[str]) -> NvmlBackend | IxsmiBackend | None:
    backend = open_nvml(nvml, errors)
    if backend is not None or nvml is not None:
        return backend
    exe = shutil.which("ixsmi")
    return IxsmiBackend(exe) if exe else None


def _read(backend: Any, errors: list[str]) -> list[GpuInfo]:
    if backend is None:
        return []
    try:
        result: list[GpuInfo] = backend.read()
        return result
    except (OSError, subprocess.SubprocessError) as e:
        errors.append(f"{backend.name}: {e}")
    except Exception as e:  # a driver error mid-run must not kill the UI's sampler
        errors.append(f"{backend.name}: {type(e).__name__}: {e}")
    return []


def detect(nvml: Any | None = None, cpu_interval: float | None = 0.1,
           paddle: PaddleBuild | None = None) -> DeviceReport:
    """One-shot report. ``nvml``: a pynvml-like module to use instead of the real one (tests);
    ``paddle``: the paddle build to report instead of the installed one (tests).

    ``cpu_interval`` seconds are spent measuring per-core load (psutil's first non-blocking reading
    is all zeros); pass None for a non-blocking call.
    """
    errors: list[str] = []
    backend = _open_backend(nvml, errors)
    try:
        gpus = _read(backend, errors)
    finally:
        if backend is not None:
            backend.close()
    if backend is None and not errors:
        errors.append("no GPU found")
    return DeviceReport(gpus, cpu_info(cpu_interval), errors, backend.name if backend else "none",
                        driver_cuda=backend.driver_cuda if backend else None,
                        paddle=paddle if paddle is not None else detect_paddle())


class DeviceSampler:
    """Keeps the GPU backend open and samples cheaply for a ~1 Hz panel.

    NVML/libixml: a handful of ctypes calls a GPU, microseconds. The ixsmi fallback spawns the binary
    every sample, so call ``sample`` from a worker thread, never from the UI's event loop.
    """

    def __init__(self, nvml: Any | None = None):
        self._open_errors: list[str] = []
        self._backend = _open_backend(nvml, self._open_errors)
        self._procs: dict[int, psutil.Process] = {}
        self._paddle = detect_paddle()  # the install does not change under a running dashboard
        psutil.cpu_percent(percpu=True)  # primes the counters: the first sample then has real numbers

    @property
    def backend(self) -> str:
        return self._backend.name if self._backend else "none"

    def sample(self) -> DeviceReport:
        errors = list(self._open_errors)
        gpus = _read(self._backend, errors)
        return DeviceReport(gpus, cpu_info(None), errors, self.backend,
                            driver_cuda=self._backend.driver_cuda if self._backend else None, paddle=self._paddle)

    def process_stats(self, pids: list[int]) -> list[ProcStat]:
        """CPU% (since the previous call; 0.0 on a pid's first call) and RSS; gone pids are left out."""
        wanted = set(pids)
        for pid in list(self._procs):
            if pid not in wanted:
                del self._procs[pid]
        out = []
        for pid in pids:
            try:
                proc = self._procs.get(pid)
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    out.append(ProcStat(pid, float(proc.cpu_percent(None)), int(proc.memory_info().rss)))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        return out

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> DeviceSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
