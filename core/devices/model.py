"""What a device report holds: plain dataclasses, JSON-ready through ``dataclasses.asdict``."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.paddle_build import PaddleBuild


class DeviceError(ValueError):
    """A device spec that cannot be satisfied on this machine (one-line message for the user)."""


@dataclass
class GpuProcess:
    """A process holding a GPU context, as NVML lists it (what nvitop and nvidia-smi show)."""

    pid: int
    user: str | None  # None: the pid is in another pid namespace (a container) or access is denied
    name: str | None
    gpu_memory: int | None  # bytes; None where the driver does not say (some vGPU / MIG setups)
    kind: str  # 'compute' | 'graphics' | 'compute+graphics'


@dataclass
class GpuInfo:
    index: int
    name: str
    uuid: str
    mem_total: int | None  # bytes
    mem_used: int | None  # bytes
    util: float | None  # percent, 0-100
    temperature: float | None  # degrees C
    power_w: float | None
    power_limit_w: float | None
    vendor: str  # 'nvidia' | 'iluvatar'
    processes: list[GpuProcess] = field(default_factory=list)


@dataclass
class CpuInfo:
    cores_logical: int
    cores_physical: int
    mem_total: int  # bytes
    mem_used: int  # bytes
    load_per_core: list[float]  # percent per logical core
    model: str


@dataclass
class DeviceReport:
    gpus: list[GpuInfo]
    cpu: CpuInfo
    errors: list[str] = field(default_factory=list)
    backend: str = "none"  # 'nvml' | 'ixml' | 'ixsmi' | 'none'
    # The highest CUDA version the driver supports ("12.4", from NVML); None without NVML.
    driver_cuda: str | None = None
    # The installed paddle build, read from its files (never imported). None: not looked at (a report
    # made by hand in a test); then the device rule checks GPUs only.
    paddle: PaddleBuild | None = None


@dataclass(frozen=True)
class DeviceSelection:
    kind: str  # 'cpu' | 'gpu'
    ids: list[int]  # GPU ids; empty for cpu
    nprocs: int


@dataclass(frozen=True)
class ProcStat:
    pid: int
    cpu_percent: float  # of one core: 200.0 = two cores busy
    rss: int  # bytes
