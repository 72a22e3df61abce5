"""Iluvatar cards through ``ixsmi`` (their ``nvidia-smi``) when no NVML-compatible library loads."""

from __future__ import annotations

import subprocess

from core.devices.model import GpuInfo
from core.devices.owners import Owners
from core.devices.values import lead_number, num

IXSMI_FIELDS = (
    "index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit"
)
# nvidia-smi's process query; an ixsmi without it simply lists no processes.
APPS_FIELDS = "gpu_uuid,pid,used_memory"
# ixsmi, like nvidia-smi, can take ~1 s on a busy 8-card box; beyond 5 s something is wrong.
_IXSMI_TIMEOUT_S = 5.0
_MIB = 1024 * 1024


class IxsmiBackend:
    name = "ixsmi"
    driver_cuda = None

    def __init__(self, exe: str):
        self.exe = exe
        self.owners = Owners()

    def read(self) -> list[GpuInfo]:
        gpus = parse_ixsmi_csv(self._query(f"--query-gpu={IXSMI_FIELDS}"))
        try:
            apps = parse_apps_csv(self._query(f"--query-compute-apps={APPS_FIELDS}"))
        except (OSError, subprocess.SubprocessError):
            apps = {}
        for g in gpus:
            g.processes = [self.owners.process(pid, mem, "compute") for pid, mem in apps.get(g.uuid, [])]
        self.owners.prune(gpus)
        return gpus

    def _query(self, query: str) -> str:
        cmd = [self.exe, query, "--format=csv,noheader,nounits"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=_IXSMI_TIMEOUT_S, check=True).stdout

    def close(self) -> None:
        pass


def parse_ixsmi_csv(text: str, vendor: str = "iluvatar") -> list[GpuInfo]:
    """Parse ``ixsmi``/``nvidia-smi --query-gpu=IXSMI_FIELDS --format=csv,noheader,nounits`` output.

    Memory comes in MiB; ``[N/A]``/``[Not Supported]`` become None; a short or garbled line is skipped.
    """
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 9 or num(lead_number(cells[0])) is None:
            continue
        mem_total, mem_used = lead_number(cells[3]), lead_number(cells[4])
        gpus.append(GpuInfo(
            index=int(lead_number(cells[0]) or 0), name=cells[1], uuid=cells[2],
            mem_total=int(mem_total * _MIB) if mem_total is not None else None,
            mem_used=int(mem_used * _MIB) if mem_used is not None else None,
            util=lead_number(cells[5]), temperature=lead_number(cells[6]),
            power_w=lead_number(cells[7]), power_limit_w=lead_number(cells[8]), vendor=vendor,
        ))
    return gpus


def parse_apps_csv(text: str) -> dict[str, list[tuple[int, int | None]]]:
    """``--query-compute-apps=gpu_uuid,pid,used_memory`` output: GPU uuid -> [(pid, bytes or None)]."""
    apps: dict[str, list[tuple[int, int | None]]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 3 or not cells[1].isdigit():
            continue
        mem = lead_number(cells[2])
        apps.setdefault(cells[0], []).append((int(cells[1]), int(mem * _MIB) if mem is not None else None))
    return apps
