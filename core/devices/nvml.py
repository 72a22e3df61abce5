"""GPUs through NVML (``nvidia-ml-py``), or Iluvatar's NVML-compatible ``libixml.so`` behind a shim.

Without a driver ``nvmlInit`` raises ``NVMLError_LibraryNotFound`` in ~15 ms; that is a report line,
never an exception. libixml exports ``nvmlInit_v2`` but not ``nvmlInitWithFlags``, which is all
``pynvml.nvmlInit`` calls, so we load it into ``pynvml.nvmlLib`` ourselves behind a shim that maps the
missing names.
"""

from __future__ import annotations

import ctypes
from typing import Any

from core.devices.model import GpuInfo, GpuProcess
from core.devices.owners import Owners
from core.devices.values import num, opt, text

# Where Iluvatar's CoreX SDK installs by default; LD_LIBRARY_PATH is tried first (bare name).
_IXML_CANDIDATES = ("libixml.so", "/usr/local/corex/lib64/libixml.so", "/usr/local/corex/lib/libixml.so")


class NvmlBackend:
    """Reads GPUs through a pynvml-like module; handles are looked up once and kept."""

    def __init__(self, nvml: Any, vendor: str, name: str):
        self.nvml, self.vendor, self.name = nvml, vendor, name
        count = nvml.nvmlDeviceGetCount()
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.static = [(text(nvml.nvmlDeviceGetName(h)), opt(lambda h=h: text(nvml.nvmlDeviceGetUUID(h))))
                       for h in self.handles]
        self.driver_cuda = driver_cuda_version(nvml)
        self.owners = Owners()

    def read(self) -> list[GpuInfo]:
        nv = self.nvml
        sensor = getattr(nv, "NVML_TEMPERATURE_GPU", 0)
        out = []
        for i, h in enumerate(self.handles):
            name, uuid = self.static[i]
            mem = opt(lambda h=h: nv.nvmlDeviceGetMemoryInfo(h))
            power = opt(lambda h=h: nv.nvmlDeviceGetPowerUsage(h))  # milliwatts
            limit = opt(lambda h=h: nv.nvmlDeviceGetEnforcedPowerLimit(h))  # milliwatts
            out.append(GpuInfo(
                index=i, name=name, uuid=uuid or "",
                mem_total=int(mem.total) if mem is not None else None,
                mem_used=int(mem.used) if mem is not None else None,
                util=num(opt(lambda h=h: nv.nvmlDeviceGetUtilizationRates(h).gpu)),
                temperature=num(opt(lambda h=h: nv.nvmlDeviceGetTemperature(h, sensor))),
                power_w=power / 1000.0 if power is not None else None,
                power_limit_w=limit / 1000.0 if limit is not None else None,
                vendor=self.vendor,
                processes=self._processes(h),
            ))
        self.owners.prune(out)
        return out

    def _processes(self, handle: Any) -> list[GpuProcess]:
        """Every process with a context on the GPU, whoever runs it (nvitop's list), merged by pid."""
        kinds: dict[int, list[str]] = {}
        memory: dict[int, int | None] = {}
        for kind, fn in (("compute", "nvmlDeviceGetComputeRunningProcesses"),
                         ("graphics", "nvmlDeviceGetGraphicsRunningProcesses")):
            for p in opt(lambda fn=fn: getattr(self.nvml, fn)(handle)) or []:
                pid = int(p.pid)
                kinds.setdefault(pid, []).append(kind)
                used = getattr(p, "usedGpuMemory", None)  # pynvml turns "not available" into None
                if used is not None:
                    memory[pid] = max(memory.get(pid) or 0, int(used))
                else:
                    memory.setdefault(pid, None)
        return [self.owners.process(pid, memory[pid], "+".join(kinds[pid])) for pid in sorted(kinds)]

    def close(self) -> None:
        opt(self.nvml.nvmlShutdown)


def driver_cuda_version(nvml: Any) -> str | None:
    """The newest CUDA the driver runs, "12.4" (NVML answers 12040); None if it cannot say."""
    v = opt(nvml.nvmlSystemGetCudaDriverVersion)
    if not isinstance(v, int) or v <= 0:
        return None
    return f"{v // 1000}.{v % 1000 // 10}"


class IxmlShim:
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
        use_shim(pynvml, lib)
        return True
    return False


def use_shim(pynvml: Any, lib: Any) -> None:
    if not isinstance(lib, IxmlShim):
        pynvml.nvmlLib = IxmlShim(lib)
    # pynvml caches function pointers by name; drop any looked up on the unshimmed library.
    getattr(pynvml, "_nvmlGetFunctionPointer_cache", {}).clear()


def _start(nv: Any, vendor: str, name: str) -> NvmlBackend:
    nv.nvmlInit()
    try:
        return NvmlBackend(nv, vendor, name)
    except BaseException:
        opt(nv.nvmlShutdown)  # init succeeded: give the reference back before reporting
        raise


def open_nvml(nvml: Any | None, errors: list[str]) -> NvmlBackend | None:
    if nvml is not None:  # injected (tests, or a caller with its own binding)
        try:
            return _start(nvml, str(getattr(nvml, "VENDOR", "nvidia")), "nvml")
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
            use_shim(pynvml, pynvml.nvmlLib)
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
