"""Compare runs: loss, accuracy and throughput overlaid (one colour per run) and the settings that differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.compare_logic import Ema, SpeedFacts, column, common_step, config_diff, metric_xy, speed_rows
from tui.format import fmt_float, fmt_rate
from tui.runstate import EMA_BETA, PREVIEW_ABOVE, PREVIEW_POINTS
from tui.services import Services, as_services
from tui.styles import HISTORY_TCSS
from tui.widgets.chart import ChartWidget
from tui.widgets.config_diff import ConfigDiff
from tui.widgets.runs_table import status_text
from tui.widgets.speed_table import SpeedTable
from tui.widgets.table_fill import fill

PALETTE = ("cyan", "magenta", "yellow", "green", "red", "dodger_blue1", "orange1", "white")
SUMMARY_COLUMNS = ("run", "status", "model", "devices", "steps", "final loss", "best acc", "samples/s")
CHARTS = (("compare-loss", "loss (EMA-smoothed)"), ("compare-acc", "eval accuracy"),
          ("compare-sps", "samples/s"))


def run_label(run: dict[str, Any]) -> str:
    """Short and unique: the name and the id's random suffix."""
    return f"{run.get('name') or run['id']} ·{run['id'][-4:]}"


SHORT_BELOW = 36  # terminal lines: below this the charts shrink (CompareScreen.-short in history.tcss)


class CompareScreen(Screen[None]):
    """Two or more runs side by side. Keys: escape back."""

    CSS_PATH = HISTORY_TCSS
    SUB_TITLE = "compare runs"
    BINDINGS = [Binding("escape", "back", "Back")]

    class Loaded(Message):
        def __init__(self, runs: list[dict[str, Any]], curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
                     preview: bool = False):
            super().__init__()
            self.runs = runs
            self.curves = curves  # chart id -> label -> (steps, values)
            self.preview = preview  # long runs' curves are every k-th step; the full read follows
            self.speed: tuple[int | None, list[SpeedFacts]] = (None, [])  # (common step, each run's facts)

    def __init__(self, run_ids: list[str], services: Services | str | Path):
        super().__init__()
        self.run_ids = list(run_ids)
        self.services = as_services(services)
        self.diff: list[tuple[str, dict[str, Any]]] = []
        self.loaded = False  # the first frame is drawn (from previews, if a run is long)
        self.complete = False  # every step of every run is drawn

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"Comparing {len(self.run_ids)} runs", id="compare-title", classes="screen-title")
        with Horizontal(id="compare-charts"):
            for cid, title in CHARTS:
                chart = ChartWidget(id=cid)
                chart.border_title = title
                yield chart
        yield DataTable(id="compare-runs", cursor_type="row", zebra_stripes=True)
        yield SpeedTable(id="compare-speed")
        yield Static("Settings that differ", classes="section-title")
        yield ConfigDiff(id="compare-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        # At 24 lines the 14-line charts left the speed table one row and the settings none.
        self.set_class(event.size.height < SHORT_BELOW, "-short")

    @work(thread=True, group="compare-load", exit_on_error=False)
    def load(self, full: bool = False) -> None:
        """Read the runs. As on a run's page, runs longer than ``PREVIEW_ABOVE`` steps are first read as
        previews (``Store.metric_preview``); the handler starts the full read once that frame is painted."""
        runs: list[dict[str, Any]] = []
        curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {cid: {} for cid, _ in CHARTS}
        preview = False
        spans: dict[str, tuple[int, int] | None] = {}
        accuracies: dict[str, list[tuple[int | None, float | None]]] = {}
        with self.services.store() as store:
            for rid in self.run_ids:
                run = store.get_run(rid)
                if run is None:
                    continue
                run["summary"] = store.summary(rid)
                span = None if full else store.metric_span(rid)
                if span is not None and span[1] - span[0] + 1 > PREVIEW_ABOVE:
                    metrics, k = store.metric_preview(rid, PREVIEW_POINTS)
                    ema, preview = Ema(EMA_BETA ** k), True
                else:
                    metrics, ema = store.metric_arrays(rid), Ema(EMA_BETA)
                evals = [e for e in store.evals(rid) if e["source"] == "train"]
                label = run_label(run)
                curves["compare-loss"][label] = ema.feed(*metric_xy(metrics, "loss"))
                curves["compare-acc"][label] = column(evals, "step", "accuracy")
                curves["compare-sps"][label] = metric_xy(metrics, "samples_per_s")
                accuracies[rid] = [(e["step"], e["accuracy"]) for e in evals]
                spans[rid] = store.metric_span(rid)
                runs.append(run)
            step = common_step(spans[r["id"]][1] if spans[r["id"]] else None for r in runs)
            facts = []
            for r in runs:
                span, label = spans[r["id"]], run_label(r)
                times = store.step_times(r["id"], [span[0], step] if span and step is not None else [])
                facts.append(SpeedFacts(
                    label=label, engine=(r.get("config") or {}).get("engine") or "gpt2-tui",
                    samples_per_s=curves["compare-sps"][label][1],
                    first_t=times.get(span[0]) if span else r.get("started_at"),
                    t_at_step=times.get(step) if step is not None else None, evals=accuracies[r["id"]]))
        loaded = self.Loaded(runs, curves, preview)
        loaded.speed = (step, facts)
        self.post_message(loaded)

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        runs = message.runs
        colours = {run_label(r): PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}
        for cid, by_run in message.curves.items():
            chart = self.query_one(f"#{cid}", ChartWidget)
            chart.clear()  # a full read replaces a preview
            for label, (xs, ys) in by_run.items():
                chart.add_series(label, colours[label])
                chart.extend(label, xs, ys)
        rows: list[tuple[str | None, list[str | Text]]] = []
        for r in runs:
            s = r["summary"]
            label = run_label(r)
            rows.append((r["id"], [
                Text("━ " + label, style=colours[label]), status_text(r["status"]), str(r.get("model")),
                str(r.get("devices")), f"{s['last_step'] or 0}/{r.get('total_steps') or '?'}",
                fmt_float(s["final_loss"]), fmt_float(s["best_accuracy"]), fmt_rate(s["mean_samples_per_s"])]))
        fill(self.query_one("#compare-runs", DataTable), [(c, c) for c in SUMMARY_COLUMNS], rows)
        step, facts = message.speed
        self.query_one(SpeedTable).show(speed_rows(facts), step, colours)
        self.diff = config_diff({r["id"]: r.get("config") or {} for r in runs})
        self.query_one(ConfigDiff).show(self.diff, [(r["id"], run_label(r), colours[run_label(r)]) for r in runs])
        missing = [rid for rid in self.run_ids if rid not in {r["id"] for r in runs}]
        title = f"Comparing {len(runs)} runs"
        if missing:
            title += f" ({', '.join(missing)} no longer in the store)"
        if message.preview:
            title += f"  (long runs drawn from about {PREVIEW_POINTS:,} steps each; loading every step…)"
        self.query_one("#compare-title", Static).update(title)
        self.loaded = True
        self.complete = not message.preview
        if message.preview:
            for cid, _ in CHARTS:
                self.query_one(f"#{cid}", ChartWidget).flush()
            self.call_after_refresh(self.load, True)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
