"""Which accelerators and CPU cores this machine has, and how busy they are.

Backends, tried in order (the first that answers wins):

1. NVML through ``pynvml`` (the ``nvidia-ml-py`` package). Without a driver ``nvmlInit`` raises
   ``NVMLError_LibraryNotFound`` in ~15 ms; that is a report line, never an exception.
2. Iluvatar's NVML-compatible ``libixml.so``, driven by the same ``pynvml`` functions. It exports
   ``nvmlInit_v2`` but not ``nvmlInitWithFlags``, which is all ``pynvml.nvmlInit`` calls, so we load the
   library into ``pynvml.nvmlLib`` ourselves behind a shim that maps the missing names.
3. ``ixsmi`` (Iluvatar's ``nvidia-smi``) on PATH, parsed from ``--format=csv,noheader,nounits``.

CPU facts come from ``psutil``. No paddle here: the UI process calls this at ~1 Hz.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

# Where Iluvatar's CoreX SDK installs by default; LD_LIBRARY_PATH is tried first (bare name).
_IXML_CANDIDATES = ("libixml.so", "/usr/local/corex/lib64/libixml.so", "/usr/local/corex/lib/libixml.so")
IXSMI_FIELDS = (
    "index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit"
)
# ixsmi, like nvidia-smi, can take ~1 s on a busy 8-card box; beyond 5 s something is wrong.
_IXSMI_TIMEOUT_S = 5.0
_MIB = 1024 * 1024


class DeviceError(ValueError):
    """A device spec that cannot be satisfied on this machine (one-line message for the user)."""


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


# ---------------------------------------------------------------- NVML-like backends


class _NvmlBackend:
    """Reads GPUs through a pynvml-like module; handles are looked up once and kept."""

    def __init__(self, nvml: Any, vendor: str, name: str):
        self.nvml, self.vendor, self.name = nvml, vendor, name
        count = nvml.nvmlDeviceGetCount()
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.static = [(_text(nvml.nvmlDeviceGetName(h)), _opt(lambda h=h: _text(nvml.nvmlDeviceGetUUID(h))))
                       for h in self.handles]

    def read(self) -> list[GpuInfo]:
        nv = self.nvml
        sensor = getattr(nv, "NVML_TEMPERATURE_GPU", 0)
        out = []
        for i, h in enumerate(self.handles):
            name, uuid = self.static[i]
            mem = _opt(lambda h=h: nv.nvmlDeviceGetMemoryInfo(h))
            power = _opt(lambda h=h: nv.nvmlDeviceGetPowerUsage(h))  # milliwatts
            limit = _opt(lambda h=h: nv.nvmlDeviceGetEnforcedPowerLimit(h))  # milliwatts
            out.append(GpuInfo(
                index=i, name=name, uuid=uuid or "",
                mem_total=int(mem.total) if mem is not None else None,
                mem_used=int(mem.used) if mem is not None else None,
                util=_num(_opt(lambda h=h: nv.nvmlDeviceGetUtilizationRates(h).gpu)),
                temperature=_num(_opt(lambda h=h: nv.nvmlDeviceGetTemperature(h, sensor))),
                power_w=power / 1000.0 if power is not None else None,
                power_limit_w=limit / 1000.0 if limit is not None else None,
                vendor=self.vendor,
            ))
        return out

    def close(self) -> None:
        _opt(self.nvml.nvmlShutdown)


class _IxmlShim:
    """Stands in for ``pynvml.nvmlLib`` over libixml.so: maps names pynvml asks for onto ones it has.

    pynvml calls ``nvmlInitWithFlags`` and ``*_v2`` entry points; libixml exports ``nvmlInit_v2`` and,
    per Iluvatar's device plugin, some functions only unversioned (``nvmlDeviceGetCount``).
    """

    def __init__(self, lib: ctypes.CDLL):
        self._lib = lib

    def __getattr__(self, name: str) -> Any:
        if name == "nvmlInitWithFlags":
            init = _first_attr(self._lib, "nvmlInit_v2", "nvmlInit")
            return lambda flags: init()
        if name.endswith("_v2"):
            return _first_attr(self._lib, name, name[:-3])
        return getattr(self._lib, name)


def _first_attr(lib: Any, *names: str) -> Any:
    for n in names:
        try:
            return getattr(lib, n)
        except AttributeError:
            continue
    raise AttributeError(names[0])


def _load_ixml(pynvml: Any) -> bool:
    """Point pynvml at libixml.so if it loads; False if there is none (or a library is already loaded)."""
    if getattr(pynvml, "nvmlLib", None) is not None:
        return False
    for path in _IXML_CANDIDATES:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        _use_shim(pynvml, lib)
        return True
    return False


def _use_shim(pynvml: Any, lib: Any) -> None:
    if not isinstance(lib, _IxmlShim):
        pynvml.nvmlLib = _IxmlShim(lib)
    # pynvml caches function pointers by name; drop any looked up on the unshimmed library.
    getattr(pynvml, "_nvmlGetFunctionPointer_cache", {}).clear()


def _start(nv: Any, vendor: str, name: str) -> _NvmlBackend:
    nv.nvmlInit()
    try:
        return _NvmlBackend(nv, vendor, name)
    except BaseException:
        _opt(nv.nvmlShutdown)  # init succeeded: give the reference back before reporting
        raise


def _open_nvml(nvml: Any | None, errors: list[str]) -> _NvmlBackend | None:
    if nvml is not None:  # injected (tests, or a caller with its own binding)
        try:
            return _start(nvml, _vendor_of(nvml), "nvml")
        except Exception as e:  # a fake or foreign binding: any failure is a report line
            errors.append(f"NVML: {e}")
            return None
    try:
        import pynvml
    except ImportError:
        errors.append("nvidia-ml-py is not installed")
        return None
    try:
        return _start(pynvml, "nvidia", "nvml")
    except pynvml.NVMLError as e:
        code = getattr(e, "value", None)
        if code == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND and pynvml.nvmlLib is not None:
            # A libnvidia-ml.so.1 without nvmlInitWithFlags: libixml installed under NVIDIA's name.
            _use_shim(pynvml, pynvml.nvmlLib)
        elif code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            errors.append("no NVIDIA driver (libnvidia-ml.so.1 not found)")
            if not _load_ixml(pynvml):
                return None
        else:
            errors.append(f"NVML: {e}")
            return None
    try:
        return _start(pynvml, "iluvatar", "ixml")
    except (pynvml.NVMLError, AttributeError) as e:
        errors.append(f"libixml: {e}")
        return None


def _vendor_of(nvml: Any) -> str:
    return str(getattr(nvml, "VENDOR", "nvidia"))


# ---------------------------------------------------------------- ixsmi


class _IxsmiBackend:
    name = "ixsmi"

    def __init__(self, exe: str):
        self.exe = exe

    def read(self) -> list[GpuInfo]:
        cmd = [self.exe, f"--query-gpu={IXSMI_FIELDS}", "--format=csv,noheader,nounits"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=_IXSMI_TIMEOUT_S, check=True)
        return parse_ixsmi_csv(res.stdout)

    def close(self) -> None:
        pass


def parse_ixsmi_csv(text: str, vendor: str = "iluvatar") -> list[GpuInfo]:
    """Parse ``ixsmi``/``nvidia-smi --query-gpu=IXSMI_FIELDS --format=csv,noheader,nounits`` output.

    Memory comes in MiB; ``[N/A]``/``[Not Supported]`` become None; a short or garbled line is skipped.
    """
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 9 or _num(_lead_number(cells[0])) is None:
            continue
        mem_total, mem_used = _lead_number(cells[3]), _lead_number(cells[4])
        gpus.append(GpuInfo(
            index=int(_lead_number(cells[0]) or 0), name=cells[1], uuid=cells[2],
            mem_total=int(mem_total * _MIB) if mem_total is not None else None,
            mem_used=int(mem_used * _MIB) if mem_used is not None else None,
            util=_lead_number(cells[5]), temperature=_lead_number(cells[6]),
            power_w=_lead_number(cells[7]), power_limit_w=_lead_number(cells[8]), vendor=vendor,
        ))
    return gpus


_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def _lead_number(cell: str) -> float | None:
    m = _NUMBER.match(cell)  # tolerates units left on ("80 MiB") when nounits is ignored
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- CPU and public API


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


def _cpu_info(interval: float | None) -> CpuInfo:
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    vm = psutil.virtual_memory()
    return CpuInfo(
        cores_logical=logical,
        cores_physical=psutil.cpu_count(logical=False) or logical,
        mem_total=int(vm.total), mem_used=int(vm.used),
        load_per_core=[float(x) for x in psutil.cpu_percent(interval=interval, percpu=True)],
        model=_cpu_model(),
    )


def _open_backend(nvml: Any | None, errors: list[str]) -> _NvmlBackend | _IxsmiBackend | None:
    backend = _open_nvml(nvml, errors)
    if backend is not None or nvml is not None:
        return backend
    exe = shutil.which("ixsmi")
    return _IxsmiBackend(exe) if exe else None


def _read(backend: Any, errors: list[str]) -> list[GpuInfo]:
    if backend is None:
        return []
    try:
        return backend.read()
    except (OSError, subprocess.SubprocessError) as e:
        errors.append(f"{backend.name}: {e}")
    except Exception as e:  # a driver error mid-run must not kill the UI's sampler
        errors.append(f"{backend.name}: {type(e).__name__}: {e}")
    return []


def detect(nvml: Any | None = None, cpu_interval: float | None = 0.1) -> DeviceReport:
    """One-shot report. ``nvml``: a pynvml-like module to use instead of the real one (tests).

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
    return DeviceReport(gpus, _cpu_info(cpu_interval), errors, backend.name if backend else "none")


class DeviceSampler:
    """Keeps the GPU backend open and samples cheaply for a ~1 Hz panel.

    NVML/libixml: 5 ctypes calls a GPU, microseconds. The ixsmi fallback spawns the binary every
    sample, so call ``sample`` from a worker thread, never from the UI's event loop.
    """

    def __init__(self, nvml: Any | None = None):
        self._open_errors: list[str] = []
        self._backend = _open_backend(nvml, self._open_errors)
        self._procs: dict[int, psutil.Process] = {}
        psutil.cpu_percent(percpu=True)  # primes the counters: the first sample then has real numbers

    @property
    def backend(self) -> str:
        return self._backend.name if self._backend else "none"

    def sample(self) -> DeviceReport:
        errors = list(self._open_errors)
        gpus = _read(self._backend, errors)
        return DeviceReport(gpus, _cpu_info(None), errors, self.backend)

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


def parse_devices(spec: str, report: DeviceReport) -> DeviceSelection:
    """``auto`` | ``cpu`` | ``cpu:N`` | ``gpu`` | ``gpu:0,1,...`` → what to launch on.

    ``auto`` takes every GPU, else ``cpu:min(2, cores)`` (2 gloo ranks measured as the useful most on
    the 2-core dev box). Raises DeviceError with a one-line message.
    """
    s = spec.strip().lower()
    cores = report.cpu.cores_logical
    have = [g.index for g in report.gpus]
    if s == "auto":
        if have:
            return DeviceSelection("gpu", have, len(have))
        return DeviceSelection("cpu", [], min(2, cores))
    kind, _, rest = s.partition(":")
    rest = rest.strip()
    if kind == "cpu":
        if not rest:
            return DeviceSelection("cpu", [], min(2, cores))
        if not rest.isdigit() or int(rest) < 1:
            raise DeviceError(f"cpu:N needs a whole number of processes >= 1, got {spec.strip()!r}")
        n = int(rest)
        if n > cores:
            raise DeviceError(f"cpu:{n} asks for {n} processes but this machine has {cores} logical cores")
        return DeviceSelection("cpu", [], n)
    if kind == "gpu":
        if not have:
            why = "; ".join(report.errors) or "none detected"
            raise DeviceError(f"{spec.strip()!r} asks for a GPU but none was found ({why}); use cpu:N or auto")
        if not rest:
            return DeviceSelection("gpu", have, len(have))
        ids = _parse_ids(rest, spec)
        missing = [i for i in ids if i not in have]
        if missing:
            raise DeviceError(f"GPU {', '.join(map(str, missing))} does not exist; "
                              f"this machine has GPU {', '.join(map(str, have))}")
        return DeviceSelection("gpu", ids, len(ids))
    raise DeviceError(f"unknown device spec {spec.strip()!r}: use auto, cpu:N or gpu:0,1,...")


def _parse_ids(rest: str, spec: str) -> list[int]:
    parts = [p.strip() for p in rest.split(",")]
    if not all(p.isdigit() for p in parts):
        raise DeviceError(f"GPU ids must be numbers separated by commas, got {spec.strip()!r}")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise DeviceError(f"GPU ids repeat in {spec.strip()!r}")
    return ids


def to_json(report: DeviceReport) -> dict[str, Any]:
    """A JSON-ready dict (``gpt2-tui devices --json``); byte counts stay integers."""
    return asdict(report)


def render_text(report: DeviceReport) -> str:
    """A plain-text table for the CLI."""
    c = report.cpu
    load = sum(c.load_per_core) / len(c.load_per_core) if c.load_per_core else 0.0
    lines = [
        f"CPU  {c.model}: {c.cores_physical} physical / {c.cores_logical} logical cores, "
        f"load {load:.0f}%, memory {_gib(c.mem_used)} / {_gib(c.mem_total)} GiB",
    ]
    if report.gpus:
        lines.append(f"GPUs ({report.backend}):")
        head = ("id", "name", "memory GiB", "util", "temp", "power W")
        rows = [(str(g.index), g.name, f"{_gib(g.mem_used)} / {_gib(g.mem_total)}", _pct(g.util),
                 _fmt(g.temperature, "C"), f"{_fmt(g.power_w)} / {_fmt(g.power_limit_w)}") for g in report.gpus]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    else:
        lines.append("GPUs: none")
    lines += [f"note: {e}" for e in report.errors]
    return "\n".join(lines)


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f}"


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}%"


def _fmt(v: float | None, unit: str = "") -> str:
    return "?" if v is None else f"{v:.0f}{unit}"


def _opt(fn: Any) -> Any:
    """A reading a card does not support (power on some boards) is None, not a failed sample."""
    try:
        return fn()
    except Exception:
        return None


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
