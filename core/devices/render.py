"""``gpt2-tui devices``: the report as JSON or a plain-text table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from core.devices.model import DeviceReport, GpuInfo
from core.devices.select import gpu_problem


def to_json(report: DeviceReport) -> dict[str, Any]:
    """A JSON-ready dict (``gpt2-tui devices --json``); byte counts stay integers."""
    out = asdict(report)
    if report.paddle is not None:
        out["paddle"]["kind"] = report.paddle.kind
        out["paddle"]["distributions"] = list(report.paddle.distributions)
    out["gpu_problem"] = gpu_problem(report)
    return out


def render_text(report: DeviceReport) -> str:
    """A plain-text table for the CLI."""
    c = report.cpu
    load = sum(c.load_per_core) / len(c.load_per_core) if c.load_per_core else 0.0
    lines = [
        f"CPU  {c.model}: {c.cores_physical} physical / {c.cores_logical} logical cores, "
        f"load {load:.0f}%, memory {_gib(c.mem_used)} / {_gib(c.mem_total)} GiB",
    ]
    if report.gpus:
        cuda = f", driver CUDA {report.driver_cuda}" if report.driver_cuda else ""
        lines.append(f"GPUs ({report.backend}{cuda}):")
        head = ("id", "name", "memory GiB", "util", "temp", "power W")
        rows = [(str(g.index), g.name, f"{_gib(g.mem_used)} / {_gib(g.mem_total)}", _pct(g.util),
                 _fmt(g.temperature, "C"), f"{_fmt(g.power_w)} / {_fmt(g.power_limit_w)}") for g in report.gpus]
        lines += _table(head, rows)
        procs = process_rows(report.gpus)
        if procs:
            lines.append("Processes on the GPUs:")
            lines += _table(("gpu", "pid", "user", "GPU memory", "type", "command"), procs)
        else:
            lines.append("Processes on the GPUs: none")
    else:
        lines.append("GPUs: none")
    if report.paddle is not None:
        lines.append(f"paddle: {report.paddle.describe()}")
    problem = gpu_problem(report)
    if problem:
        lines.append(f"warning: paddle cannot use these GPUs: {problem}")
    lines += [f"note: {e}" for e in report.errors]
    return "\n".join(lines)


def process_rows(gpus: list[GpuInfo]) -> list[tuple[str, ...]]:
    """One row a process a GPU: gpu, pid, user, GPU memory, type, command ('?' where unknown)."""
    return [(str(g.index), str(p.pid), p.user or "?", mib(p.gpu_memory), p.kind, p.name or "?")
            for g in gpus for p in g.processes]


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**2:,.0f} MiB"


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in [head, *rows]]


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f}"


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}%"


def _fmt(v: float | None, unit: str = "") -> str:
    return "?" if v is None else f"{v:.0f}{unit}"
