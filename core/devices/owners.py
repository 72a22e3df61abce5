"""Who runs a GPU process: user and command name by pid, through psutil, remembered while it lives."""

from __future__ import annotations

import psutil

from core.devices.model import GpuInfo, GpuProcess
from core.devices.values import opt


class Owners:
    """Looks each pid up once; pids that left every GPU are forgotten at ``prune`` (pids get reused)."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[str | None, str | None]] = {}

    def process(self, pid: int, gpu_memory: int | None, kind: str) -> GpuProcess:
        if pid not in self._known:
            try:
                proc = psutil.Process(pid)
                self._known[pid] = (opt(proc.username), opt(proc.name))
            except (psutil.Error, ValueError):  # another pid namespace (a container): NVML's pid is not ours
                self._known[pid] = (None, None)
        user, name = self._known[pid]
        return GpuProcess(pid, user, name, gpu_memory, kind)

    def prune(self, gpus: list[GpuInfo]) -> None:
        seen = {p.pid for g in gpus for p in g.processes}
        self._known = {pid: v for pid, v in self._known.items() if pid in seen}
