"""DevicePanel: the run's devices, live. Per GPU: utilisation, memory, temperature and power with
history sparklines, and every process on it (the run's ranks and anyone else's, as nvitop lists them).
With CPU ranks: per-core load, memory, and each rank's process CPU and RSS."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Sparkline, Static

from core.devices import DeviceReport, GpuInfo, GpuProcess, ProcStat
from tui.format import fmt_bytes, update_text

HISTORY = 120  # samples (~4 minutes at the live screen's one reading in 2 s); the app keeps as many


class _Trace(Horizontal):
    """A label with the current value and a sparkline of the history."""

    def __init__(self, name: str, classes: str = ""):
        super().__init__(classes=f"trace {classes}".strip())
        self.history: deque[float] = deque(maxlen=HISTORY)
        self.label = Label(name, classes="trace-label")
        self.spark = Sparkline([], classes="trace-spark")

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.spark

    def push(self, value: float | None, text: str) -> None:
        if value is not None:
            self.history.append(value)
        update_text(self.label, text)
        self.spark.data = list(self.history)


class GpuCard(Vertical):
    def __init__(self, index: int):
        super().__init__(classes="gpu-card", id=f"gpu-card-{index}")
        self.index = index
        self.title = Static("", classes="gpu-title")
        self.util = _Trace("util")
        self.mem = _Trace("mem")
        self.procs = Static("", classes="gpu-procs")
        self.procs.display = False  # shown only once NVML lists a process: no blank line before

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.util
        yield self.mem
        yield self.procs

    def push(self, g: GpuInfo, own: dict[int, str] | None = None) -> None:
        """``own``: pid -> label ('rank 0') of the run's processes, to tell them from others'."""
        t = Text()
        t.append(f"GPU {g.index} ", style="bold")
        t.append(g.name)
        if g.temperature is not None:
            t.append(f"  {g.temperature:.0f}°C", style="red" if g.temperature >= 85 else "")
        if g.power_w is not None:
            limit = f"/{g.power_limit_w:.0f}" if g.power_limit_w else ""
            t.append(f"  {g.power_w:.0f}{limit} W")
        update_text(self.title, t)
        self.util.push(g.util, f"util {g.util:>3.0f}%" if g.util is not None else "util   ?")
        share = 100 * g.mem_used / g.mem_total if g.mem_used is not None and g.mem_total else None
        self.mem.push(share, f"mem  {_gib_pair(g.mem_used, g.mem_total)}")
        self.procs.display = bool(g.processes)
        if g.processes:
            update_text(self.procs, render_gpu_procs(g.processes, own or {}))


def render_gpu_procs(procs: list[GpuProcess], own: dict[int, str]) -> Text:
    """One line a process: pid, user, GPU memory, command; the run's own ranks by name, others in yellow."""
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, p in enumerate(procs):
        mem = fmt_bytes(p.gpu_memory) if p.gpu_memory is not None else "?"
        label = own.get(p.pid)
        t.append(f"{p.pid:>8} {p.user or '?':<10.10} {mem:>9} ", style="" if label else "yellow")
        t.append(label or (p.name or "?"), style="bold" if label else "yellow")
        if i + 1 < len(procs):
            t.append("\n")
    return t


def _gib_pair(used: int | None, total: int | None) -> str:
    """'36.7/140 GiB': fits the 20-column label beside a sparkline."""
    if used is None or total is None:
        return "?"
    return f"{used / 1024**3:.1f}/{total / 1024**3:.0f} GiB"


def core_bars(loads: list[float], width: int) -> Text:
    """Per-core load as little bars, as many to a line as fit: '0 ▅ 45%'."""
    t = Text()
    cell = 10
    per_line = max(1, width // cell)
    for i, load in enumerate(loads):
        level = " ▁▂▃▄▅▆▇█"[min(8, int(load / 12.5 + 0.5))]
        t.append(f"{i:>2} ")
        t.append(level, style="red" if load > 90 else "green")
        t.append(f"{load:>3.0f}% ")
        if (i + 1) % per_line == 0 and i + 1 < len(loads):
            t.append("\n")
    return t


def render_procs(procs: list[tuple[str, ProcStat]]) -> Text:
    t = Text()
    if not procs:
        t.append("no processes of the run (yet)", style="dim")
        return t
    t.append(f"{'process':<11}{'pid':>8}{'cpu':>7}{'rss':>11}\n", style="bold")
    for label, p in procs:
        t.append(f"{label:<11}{p.pid:>8}{p.cpu_percent:>6.0f}%{fmt_bytes(p.rss):>11}\n")
    t.rstrip()
    return t


class DevicePanel(VerticalScroll):
    """``set_devices('gpu:0,1' | 'cpu:2')`` picks what to show; ``push`` adds a reading."""

    ALLOW_MAXIMIZE = True

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.kind: str | None = None
        self.gpu_ids: list[int] | None = None
        self.cards: dict[int, GpuCard] = {}
        self.samples = 0
        self.cpu_load = _Trace("load", classes="cpu-trace")
        self.cpu_mem = _Trace("mem", classes="cpu-trace")

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first device reading…", id="device-head")
        yield Vertical(id="gpu-cards")
        with Vertical(id="cpu-box"):
            yield self.cpu_load
            yield self.cpu_mem
            yield Static("", id="core-bars")
        yield Static("", id="proc-table")

    def set_devices(self, spec: str | None) -> None:
        s = (spec or "").lower()
        if s.startswith("gpu"):
            self.kind = "gpu"
            rest = s.partition(":")[2]
            self.gpu_ids = [int(x) for x in rest.split(",") if x.isdigit()] or None
        elif s.startswith("cpu"):
            self.kind, self.gpu_ids = "cpu", None
        else:
            self.kind, self.gpu_ids = None, None

    def push(self, report: DeviceReport, procs: list[tuple[str, ProcStat]] | None = None) -> None:
        self.samples += 1
        kind = self.kind or ("gpu" if report.gpus else "cpu")
        gpus = [g for g in report.gpus if self.gpu_ids is None or g.index in self.gpu_ids]
        head = Text()
        c = report.cpu
        load = sum(c.load_per_core) / len(c.load_per_core) if c.load_per_core else 0.0
        if kind == "gpu":
            head.append(f"{len(gpus)} GPU(s) of {len(report.gpus)}", style="bold")
            head.append(f"   CPU {load:.0f}%  RAM {fmt_bytes(c.mem_used)} / {fmt_bytes(c.mem_total)}", style="dim")
        else:
            head.append(f"CPU {c.model}", style="bold")
            head.append(f"  {c.cores_logical} cores")
        update_text(self.query_one("#device-head", Static), head)
        box = self.query_one("#gpu-cards")
        box.display = kind == "gpu"
        self.query_one("#cpu-box").display = kind == "cpu"
        if kind == "gpu":
            own = {p.pid: label for label, p in procs or []}
            for g in gpus:
                card = self.cards.get(g.index)
                if card is None:
                    card = self.cards[g.index] = GpuCard(g.index)
                    box.mount(card)
                card.push(g, own)
        else:
            self.cpu_load.push(load, f"load {load:>3.0f}%")
            share = 100 * c.mem_used / c.mem_total if c.mem_total else None
            self.cpu_mem.push(share, f"mem  {_gib_pair(c.mem_used, c.mem_total)}")
            width = (self.size.width or 40) - 2
            update_text(self.query_one("#core-bars", Static), core_bars(c.load_per_core, width))
        update_text(self.query_one("#proc-table", Static), render_procs(procs or []))
