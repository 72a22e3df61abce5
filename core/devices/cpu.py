"""CPU facts from psutil: cores, memory, per-core load."""

from __future__ import annotations

import functools
import os

import psutil

from core.devices.model import CpuInfo


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def cpu_info(interval: float | None) -> CpuInfo:
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    vm = psutil.virtual_memory()
    return CpuInfo(
        cores_logical=logical,
        cores_physical=psutil.cpu_count(logical=False) or logical,
        mem_total=int(vm.total), mem_used=int(vm.used),
        load_per_core=[float(x) for x in psutil.cpu_percent(interval=interval, percpu=True)],
        model=_cpu_model(),
    )
