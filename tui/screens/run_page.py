"""A run's page: its curves replayed from the store, config and exact command, software and devices,
checkpoints and evals, the log tail and, when it failed, the error.

A running run is re-read every ``refresh_s`` seconds; only steps after the last one shown are read
again, so a long run costs the new rows, not the whole history. A run longer than ``PREVIEW_ABOVE`` steps
is drawn first from every k-th step (``Store.metric_preview``, a tenth of the full read) and the title
says so; the full curve replaces it when its read lands.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from core.progress import fmt_duration
from core.reconcile import log_tail, worker_log
from tui.compare_logic import Ema, column, metric_xy
from tui.format import fmt_float, fmt_rate
from tui.messages import RunDeleted, RunTagged
from tui.runstate import (
    EMA_BETA,
    EVAL_ACC,
    LOSS,
    LOSS_EMA,
    LR,
    PREVIEW_ABOVE,
    PREVIEW_POINTS,
    SAMPLES,
    TOKENS,
    SeriesDelta,
)
from tui.screens.run_actions import RunActions
from tui.services import Services, as_services
from tui.styles import HISTORY_TCSS
from tui.widgets.chart import ChartWidget
from tui.widgets.run_charts import RunCharts
from tui.widgets.runs_table import STATUS_STYLE

Points = dict[str, tuple[np.ndarray, np.ndarray]]

WORKER_LOG_LINES = 40


def fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _points(metrics: dict[str, np.ndarray], ema: Ema) -> Points:
    """The charts' series from ``Store.metric_arrays`` columns; the EMA continues ``ema``."""
    points: Points = {LOSS: metric_xy(metrics, "loss"), LR: metric_xy(metrics, "lr"),
                      SAMPLES: metric_xy(metrics, "samples_per_s"), TOKENS: metric_xy(metrics, "tokens_per_s")}
    points[LOSS_EMA] = ema.feed(*points[LOSS])
    return points


@dataclass
class PageData:
    run: dict[str, Any]
    summary: dict[str, Any]
    points: Points
    last_step: int | None
    eval_xs: np.ndarray
    eval_ys: np.ndarray
    evals: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    worker_tail: list[str] = field(default_factory=list)
    preview_every: int = 0  # > 0: points are every k-th step; the full read follows
    replace: bool = False  # the charts hold a preview: clear them before drawing these points


def _line(out: Text, label: str, value: str | Text, style: str = "") -> None:
    out.append(f"{label:<10}", style="bold")
    out.append(value if isinstance(value, Text) else Text(value, style=style))
    out.append("\n")


def overview_text(run: dict[str, Any], s: dict[str, Any], now: float) -> Text:
    from core.export import duration_s

    out = Text()
    status = Text(run["status"], style=STATUS_STYLE.get(run["status"], ""))
    if run.get("exit_code") is not None:
        status.append(f"  (exit code {run['exit_code']})")
    _line(out, "status", status)
    _line(out, "name", str(run.get("name") or "-"))
    _line(out, "model", str(run.get("model") or "-"))
    _line(out, "devices", f"{run.get('devices') or '-'}  (world size {run.get('world_size') or '?'}, "
                          f"{run.get('nnodes') or 1} node(s), host {run.get('host') or '?'})")
    _line(out, "steps", f"{s.get('last_step') or 0}/{run.get('total_steps') or '?'}")
    _line(out, "loss", f"final {fmt_float(s.get('final_loss'))}   best accuracy {fmt_float(s.get('best_accuracy'))}"
                       f"   mean samples/s {fmt_rate(s.get('mean_samples_per_s'))}")
    _line(out, "started", f"{fmt_time(run.get('started_at') or run.get('created_at'))}   ended "
                          f"{fmt_time(run.get('ended_at'))}   duration {fmt_duration(duration_s(run, now))}")
    _line(out, "folder", str(run.get("run_dir") or "-"))
    if run.get("tags"):
        _line(out, "tags", ", ".join(run["tags"]), "cyan")
    if run.get("note"):
        _line(out, "note", str(run["note"]))
    if run.get("resumed_from"):
        _line(out, "resumed", f"from {run['resumed_from']} (run {run.get('parent_run') or '?'})")
    versions = run.get("versions") or {}
    if isinstance(versions, dict) and versions:
        _line(out, "software", "   ".join(f"{k} {v}" for k, v in versions.items()))
    info = run.get("device_info") or []
    if isinstance(info, list) and info:
        _line(out, "hardware", ", ".join(str(d) for d in info))
    if run.get("bad_lines"):
        _line(out, "warning", f"{run['bad_lines']} malformed event line(s) skipped", "yellow")
    if run.get("error"):
        out.append("error\n", style="bold red")
        out.append(str(run["error"]).rstrip() + "\n", style="red")
    return out


def config_text(run: dict[str, Any]) -> Text:
    out = Text()
    cfg = run.get("config") or {}
    width = max((len(k) for k in cfg), default=0)
    for k, v in cfg.items():
        out.append(f"{k:<{width}} = ", style="bold")
        out.append(f"{v!r}\n" if isinstance(v, str) else f"{v}\n")
    cmd = run.get("command")
    out.append("\ncommand\n", style="bold")
    out.append(shlex.join(str(a) for a in cmd) if isinstance(cmd, list) else str(cmd or "-"))
    out.append("\n")
    return out


def checkpoints_text(checkpoints: list[dict[str, Any]], evals: list[dict[str, Any]]) -> Text:
    out = Text()
    out.append("checkpoints\n", style="bold")
    for c in checkpoints:
        out.append(f"  step {c['step']:>7}  {c['path']}\n")
    if not checkpoints:
        out.append("  none yet\n", style="dim")
    out.append("\nevals\n", style="bold")
    for e in evals:
        out.append(f"  step {e['step'] if e['step'] is not None else '-':>7}  accuracy {fmt_float(e['accuracy'])}"
                   f"  n={e['n'] if e['n'] is not None else '?'}  {e['mode'] or '-'}  ({e['source']})"
                   f"  {Path(e['eval_path']).name if e.get('eval_path') else ''}\n")
    if not evals:
        out.append("  none yet\n", style="dim")
    return out


def log_text(logs: list[dict[str, Any]], worker_tail: list[str]) -> Text:
    out = Text()
    out.append("events log\n", style="bold")
    for row in logs:
        style = {"error": "red", "warning": "yellow"}.get(str(row.get("level")), "")
        out.append(f"  {fmt_time(row.get('t'))} {row.get('level')}: {row.get('text')}\n", style=style)
    if not logs:
        out.append("  nothing logged\n", style="dim")
    out.append(f"\nlogs/workerlog.0 (last {WORKER_LOG_LINES} lines)\n", style="bold")
    for line in worker_tail:
        out.append(f"  {line}\n")
    if not worker_tail:
        out.append("  no worker log\n", style="dim")
    return out


class RunPage(RunActions):
    """One run. Keys: r results, n clone (posts CloneRequested), u resume, d delete, x export, t tags and note,
    escape back."""

    CSS_PATH = HISTORY_TCSS
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "results", "Results"),
        Binding("n", "clone", "Clone"),
        Binding("u", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("x", "export", "Export"),
        Binding("t", "tags", "Tags"),
    ]

    class Loaded(Message):
        def __init__(self, data: PageData | None):
            super().__init__()
            self.data = data

    def __init__(self, run_id: str, services: Services | str | Path, *, refresh_s: float = 2.0):
        super().__init__()
        self.run_id = run_id
        self.services = as_services(services)
        self.refresh_s = refresh_s
        self.run: dict[str, Any] | None = None
        self.loaded = False
        self._last_step: int | None = None
        self._ema = Ema(EMA_BETA)
        self._loading = False
        self.complete = False  # every step is drawn (after a long run's preview)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"Run {self.run_id}", id="run-title", classes="screen-title")
        with Horizontal(id="run-body"):
            # The live screen's charts: the same series, colours and layout, replayed from the store.
            yield RunCharts(id="run-charts", classes="panel")
            with TabbedContent(id="run-tabs"):
                with TabPane("Overview", id="tab-overview"), VerticalScroll():
                    yield Static("loading…", id="run-overview")
                with TabPane("Config", id="tab-config"), VerticalScroll():
                    yield Static("", id="run-config")
                with TabPane("Checkpoints & evals", id="tab-checkpoints"), VerticalScroll():
                    yield Static("", id="run-checkpoints")
                with TabPane("Log", id="tab-log"), VerticalScroll():
                    yield Static("", id="run-log")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}"
        self.load()
        if self.refresh_s:
            self.set_interval(self.refresh_s, self._tick)

    def _tick(self) -> None:
        if self.is_current and self.run is not None and self.run["status"] == "running":
            self.load()

    def load(self) -> None:
        if not self._loading:  # one read at a time: the EMA is fed in step order
            self._loading = True
            self._load()

    @work(thread=True, group="run-page-load", exit_on_error=False)
    def _load(self, full: bool = False) -> None:
        """Read the run; a long run's first read is a preview only, and its handler starts the full one
        (``full=True``) once the preview is painted: the two reads never compete for the GIL with the
        first frame. ``_loading`` stays set until the handler has taken the last read's steps (a read
        started before that would ask for the same steps again and draw them twice)."""
        posted = False
        try:
            after = self._last_step
            with self.services.store() as store:
                run = store.get_run(self.run_id)
                if run is None:
                    self.post_message(self.Loaded(None))
                    posted = True
                    return
                evals = store.evals(self.run_id)
                data = PageData(
                    run=run, summary=store.summary(self.run_id), points={}, last_step=after,
                    eval_xs=np.empty(0), eval_ys=np.empty(0), evals=evals,
                    checkpoints=store.checkpoints(self.run_id), logs=store.logs(self.run_id, 100))
                data.eval_xs, data.eval_ys = column([e for e in evals if e["source"] == "train"], "step", "accuracy")
                if run.get("run_dir"):
                    data.worker_tail = log_tail(worker_log(Path(run["run_dir"]), 0), WORKER_LOG_LINES)
                span = store.metric_span(self.run_id) if after is None and not full else None
                if span is not None and span[1] - span[0] + 1 > PREVIEW_ABOVE:
                    arrays, k = store.metric_preview(self.run_id, PREVIEW_POINTS)
                    data.points, data.preview_every = _points(arrays, Ema(EMA_BETA ** k)), k
                    self.post_message(self.Loaded(data))
                    posted = True
                    return
                metrics = store.metric_arrays(self.run_id, after_step=after)
            data.points, data.replace = _points(metrics, self._ema), full
            if len(metrics["step"]):
                data.last_step = int(metrics["step"][-1])
            self.post_message(self.Loaded(data))
            posted = True
        finally:
            if not posted:  # the read failed: the next tick tries again
                self._loading = False

    def on_run_page_loaded(self, message: Loaded) -> None:
        data = message.data
        self._loading = data is not None and bool(data.preview_every)  # a preview: the full read follows
        if data is None:
            self.query_one("#run-overview", Static).update(Text(f"run {self.run_id} is not in the store",
                                                                style="red"))
            self.loaded = self.complete = True
            return
        self.run = run = data.run
        if not data.preview_every:
            self._last_step = data.last_step
        title = Text(f"Run {run['id']}", style="bold")
        title.append(f"  {run.get('name') or ''}  ")
        title.append(run["status"], style=STATUS_STYLE.get(run["status"], ""))
        if data.preview_every:
            title.append(f"  curves drawn from 1 step in {data.preview_every:,}; loading all "
                         f"{data.summary.get('metric_rows') or 0:,}…", style="dim")
        self.query_one("#run-title", Static).update(title)
        charts = self.query_one(RunCharts)
        if data.replace:
            for chart in charts.charts.values():
                chart.clear()
        charts.extend(SeriesDelta({k: v for k, v in data.points.items() if len(v[0])}))
        acc = self.query_one("#chart-loss", ChartWidget)
        acc.series(EVAL_ACC).clear()  # evals are few: replaced whole on every read
        acc.extend(EVAL_ACC, data.eval_xs, data.eval_ys)
        self.query_one("#run-overview", Static).update(overview_text(run, data.summary, self.services.clock()))
        self.query_one("#run-config", Static).update(config_text(run))
        self.query_one("#run-checkpoints", Static).update(checkpoints_text(data.checkpoints, data.evals))
        self.query_one("#run-log", Static).update(log_text(data.logs, data.worker_tail))
        self.loaded = True  # the first frame is drawn (a preview, for a long run)
        self.complete = not data.preview_every
        charts.refresh_now()  # paint on this refresh, not on the charts' next tick
        if data.preview_every:
            self.call_after_refresh(self._load, True)  # the full read starts once the preview is painted

    def on_run_deleted(self, message: RunDeleted) -> None:
        self.notify(f"Deleted run {message.run_id}" + (" and its folder" if message.files_removed else ""))
        self.app.pop_screen()

    def on_run_tagged(self, message: RunTagged) -> None:
        self.notify(f"Tags saved: {', '.join(message.tags) or 'none'}", title="Tags")
        self.load()  # the overview shows them

    # ------------------------------------------------------------------ actions
    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_results(self) -> None:
        self.open_results(self.run_id)

    def action_clone(self) -> None:
        self.clone_run(self.run_id)

    def action_delete(self) -> None:
        if self.run is not None:
            self.delete_run_asked(self.run)

    def action_resume(self) -> None:
        if self.run is not None:
            self.resume_run(self.run)

    def action_export(self) -> None:
        self.export_run_asked(self.run_id)

    def action_tags(self) -> None:
        self.edit_tags_asked(self.run_id)
