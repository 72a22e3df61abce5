"""DevicePicker: what was detected, with free memory and load, refreshed live; picks the run's devices.

GPUs are a checklist (one rank per checked GPU); with no accelerator the CPU process count is the
choice. The picker never edits the config itself: it posts ``Picked`` with a devices spec
(``gpu:0,1`` / ``cpu:2``) and the screen writes that into the form's ``devices`` field.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from core.devices import DeviceReport, GpuInfo, gpu_problem
from tui.format import fmt_bytes, update_text


def gpu_prompt(g: GpuInfo) -> Text:
    """'GPU 0 NVIDIA H200  102/140 GiB free  94% util  57°C' (fits the 60-column side panel)."""
    gib = 1024**3
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"GPU {g.index} ", style="bold")
    t.append(f"{g.name}  ")
    if g.mem_total is not None and g.mem_used is not None:
        free = g.mem_total - g.mem_used
        t.append(f"{free / gib:.0f}/{g.mem_total / gib:.0f} GiB free",
                 style="green" if free > g.mem_total / 2 else "yellow")
    util = g.util if g.util is not None else 0.0
    t.append(f"  {util:.0f}% util", style="red" if util > 50 else "")
    if g.temperature is not None:
        t.append(f"  {g.temperature:.0f}°C", style="dim")
    return t


def cpu_summary(report: DeviceReport) -> Text:
    c = report.cpu
    load = sum(c.load_per_core) / len(c.load_per_core) if c.load_per_core else 0.0
    t = Text()
    t.append("CPU ", style="bold")
    t.append(f"{c.model}: {c.cores_logical} cores, {load:.0f}% load, ")
    t.append(f"{fmt_bytes(c.mem_total - c.mem_used)} free of {fmt_bytes(c.mem_total)}")
    if not report.gpus:
        why = "; ".join(report.errors) or "none detected"
        t.append(f"\nNo GPU ({why}): the run uses CPU processes.", style="yellow")
    problem = gpu_problem(report)
    if problem:
        t.append(f"\npaddle cannot use these GPUs: {problem}", style="bold red")
    return t


class DevicePicker(Vertical):
    class Picked(Message):
        def __init__(self, picker: DevicePicker, spec: str):
            super().__init__()
            self.picker = picker
            self.spec = spec

        @property
        def control(self) -> DevicePicker:
            return self.picker

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.report: DeviceReport | None = None
        self._spec = "auto"

    def compose(self) -> ComposeResult:
        yield Static("detecting devices…", id="device-summary")
        yield SelectionList[int](id="gpu-list")
        with Horizontal(id="cpu-row"):
            yield Label("CPU processes ", id="cpu-label")
            procs = Input("2", id="cpu-procs", compact=True, restrict=r"\d{0,3}", max_length=3)
            procs.cursor_blink = False  # steady, as the form's fields (tui/widgets/config_form.py)
            yield procs

    def on_mount(self) -> None:
        self.query_one("#gpu-list").display = False

    # ------------------------------------------------------------------ data in
    def show_report(self, report: DeviceReport) -> None:
        self.report = report
        update_text(self.query_one("#device-summary", Static), cpu_summary(report))
        gl = self.query_one("#gpu-list", SelectionList)
        gl.display = bool(report.gpus)
        if gl.option_count != len(report.gpus):
            with self.prevent(SelectionList.SelectedChanged):
                gl.clear_options()
                gl.add_options([Selection(gpu_prompt(g), g.index) for g in report.gpus])
            self.reflect(self._spec)
        else:
            for i, g in enumerate(report.gpus):
                gl.replace_option_prompt_at_index(i, gpu_prompt(g))

    def reflect(self, spec: str) -> None:
        """Show ``spec`` (the form's devices field) as the picked state, without posting Picked."""
        self._spec = spec
        s = spec.strip().lower()
        gl = self.query_one("#gpu-list", SelectionList)
        have = [g.index for g in self.report.gpus] if self.report else []
        if s.startswith("gpu") or (s == "auto" and have):
            rest = s.partition(":")[2]
            ids = {int(x) for x in rest.split(",") if x.strip().isdigit()} if rest else set(have)
        else:
            ids = set()
        with self.prevent(SelectionList.SelectedChanged, Input.Changed):
            for i in have:
                (gl.select if i in ids else gl.deselect)(i)
            if s.startswith("cpu:") and s[4:].isdigit():
                self.query_one("#cpu-procs", Input).value = s[4:]

    # ------------------------------------------------------------------ user picks
    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        ids = sorted(event.selection_list.selected)
        if ids:
            spec = "gpu:" + ",".join(map(str, ids))
        else:
            spec = f"cpu:{self.query_one('#cpu-procs', Input).value or 1}"
        self._spec = spec
        self.post_message(self.Picked(self, spec))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not event.input.has_focus:  # its initial value on mount, or reflect(): not the user's pick
            return
        if event.value.isdigit() and int(event.value) > 0:
            with self.prevent(SelectionList.SelectedChanged):
                self.query_one("#gpu-list", SelectionList).deselect_all()
            self._spec = f"cpu:{int(event.value)}"
            self.post_message(self.Picked(self, self._spec))
