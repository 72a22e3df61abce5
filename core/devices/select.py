"""The device rule: a spec (``auto``, ``cpu:N``, ``gpu:0,1``) is honoured on this machine or refused.

Never swapped: a GPU that is asked for (or found by ``auto``) but that paddle cannot use is a
DeviceError naming the reason and the fix, not a quiet run on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core import paddle_build
from core.devices.model import DeviceError, DeviceReport, DeviceSelection

_CPU_HINT = "to train on the CPU instead: --devices cpu:N"


def gpu_problem(report: DeviceReport) -> str | None:
    """Why paddle cannot use this machine's GPUs, with the command that fixes it; None if it can (or no GPU)."""
    if not report.gpus or report.paddle is None:
        return None
    return paddle_build.gpu_problem(report.paddle, {g.vendor for g in report.gpus}, report.driver_cuda)


def visible_ids(report: DeviceReport, env: Mapping[str, str] | None = None) -> tuple[list[int] | None, str]:
    """GPU indices the visibility variable leaves to paddle (None: all) and the variable's name.

    paddle's launcher reads ``--devices 1,2`` as entries of CUDA_VISIBLE_DEVICES, so an id it does not
    list makes the launcher fail. Ids are NVML's (nvidia-smi's, nvitop's). Like CUDA, parsing stops at
    the first entry that is not an index ("-1" hides every GPU).
    """
    env = os.environ if env is None else env
    var = "CUDA_VISIBLE_DEVICES"
    if any(g.vendor == "iluvatar" for g in report.gpus) and "ILUVATAR_GPU_VISIBLE_DEVICES" in env:
        var = "ILUVATAR_GPU_VISIBLE_DEVICES"  # paddle's custom-device launcher reads this one first
    raw = env.get(var)
    if raw is None or raw.strip().lower() == "all":
        return None, var
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if part.lower().startswith(("gpu-", "mig-")):
            raise DeviceError(f"{var}={raw} names GPUs by UUID, which paddle's launcher cannot match with "
                              f"--devices; list indices instead (e.g. {var}=0,1)")
        if not part.isdigit():
            break
        ids.append(int(part))
    return ids, var


def parse_devices(spec: str, report: DeviceReport, env: Mapping[str, str] | None = None) -> DeviceSelection:
    """``auto`` | ``cpu`` | ``cpu:N`` | ``gpu`` | ``gpu:0,1,...`` → what to launch on.

    ``auto`` takes every GPU paddle can use, else ``cpu:min(2, cores)`` on a machine without GPUs (2 gloo
    ranks measured as the useful most on the 2-core dev box). GPUs that are there but unusable (a CPU
    build of paddle, a driver too old for the build, hidden by CUDA_VISIBLE_DEVICES) are refused, even
    for ``auto``. Raises DeviceError with a one-line message.
    """
    s = spec.strip().lower()
    cores = report.cpu.cores_logical
    if s == "auto":
        if not report.gpus:
            return DeviceSelection("cpu", [], min(2, cores))
        return _gpus("--devices auto", report, None, env)
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
        ids = _parse_ids(rest, spec) if rest else None
        return _gpus(repr(spec.strip()), report, ids, env)
    raise DeviceError(f"unknown device spec {spec.strip()!r}: use auto, cpu:N or gpu:0,1,...")


def _gpus(asked: str, report: DeviceReport, ids: list[int] | None,
          env: Mapping[str, str] | None) -> DeviceSelection:
    if not report.gpus:
        why = "; ".join(report.errors) or "none detected"
        raise DeviceError(f"{asked} asks for a GPU but none was found ({why}); use --devices cpu:N "
                          f"(or --device cpu) to train on the CPU")
    problem = gpu_problem(report)
    if problem:
        raise DeviceError(f"{asked}: {len(report.gpus)} GPU(s) found but paddle cannot use them: {problem}. "
                          f"{_CPU_HINT[0].upper()}{_CPU_HINT[1:]}")
    have = [g.index for g in report.gpus]
    if ids is not None:
        missing = [i for i in ids if i not in have]
        if missing:
            raise DeviceError(f"GPU {', '.join(map(str, missing))} does not exist; "
                              f"this machine has GPU {', '.join(map(str, have))}")
    env = os.environ if env is None else env
    visible, var = visible_ids(report, env)
    wanted = ids if ids is not None else have
    if visible is not None:
        if ids is None:
            wanted = [i for i in have if i in visible]
            if not wanted:
                raise DeviceError(f"{asked}: {var}={env.get(var, '')} "
                                  f"hides every GPU from paddle; unset it or list the GPUs to use ({_CPU_HINT})")
        hidden = [i for i in wanted if i not in visible]
        if hidden:
            shown = ",".join(map(str, visible)) or "(none)"
            raise DeviceError(f"GPU {', '.join(map(str, hidden))} is hidden from paddle by {var}={shown}; "
                              f"unset {var} or add {','.join(map(str, hidden))} to it")
    return DeviceSelection("gpu", wanted, len(wanted))


def _parse_ids(rest: str, spec: str) -> list[int]:
    parts = [p.strip() for p in rest.split(",")]
    if not all(p.isdigit() for p in parts):
        raise DeviceError(f"GPU ids must be numbers separated by commas, got {spec.strip()!r}")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise DeviceError(f"GPU ids repeat in {spec.strip()!r}")
    return ids
