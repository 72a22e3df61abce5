"""RunCharts: loss (raw and EMA) with eval accuracy points, learning rate, and throughput, stacked on
one step axis (each chart's x range is pinned to 0 .. total steps once the start event says it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from tui.runstate import EVAL_ACC, LOSS, LOSS_EMA, LR, SAMPLES, TOKENS, SeriesDelta
from tui.widgets.chart import ChartWidget

# chart id -> (series name, colour, kind, axis)
LAYOUT: dict[str, list[tuple[str, str, str, str]]] = {
    "chart-loss": [(LOSS, "#5f87af", "line", "left"), (LOSS_EMA, "#ffaf00", "line", "left"),
                   (EVAL_ACC, "#5fd75f", "points", "right")],
    "chart-lr": [(LR, "#d787d7", "line", "left")],
    "chart-throughput": [(SAMPLES, "#00afaf", "line", "left"), (TOKENS, "#8787ff", "line", "right")],
}


class RunCharts(Vertical, can_focus=True):
    ALLOW_MAXIMIZE = True

    def __init__(self, *, refresh_interval: float = 1.0, id: str | None = None, classes: str | None = None):
        """``refresh_interval``: the charts repaint together at most this often (one frame for all three;
        a chart is the screen's largest region, so its repaint rate is most of the dashboard's CPU);
        0: never on their own, the owner calls ``refresh_now``."""
        super().__init__(id=id, classes=classes)
        self.refresh_interval = refresh_interval
        self.charts: dict[str, ChartWidget] = {}
        self._owner: dict[str, ChartWidget] = {}
        self.total_steps: int | None = None

    def compose(self) -> ComposeResult:
        for chart_id, series in LAYOUT.items():
            chart = ChartWidget(refresh_interval=0, id=chart_id)  # repainted by this widget's one timer
            for name, colour, kind, axis in series:
                chart.add_series(name, colour, kind=kind, axis=axis)
                self._owner[name] = chart
            self.charts[chart_id] = chart
            yield chart

    def extend(self, delta: SeriesDelta) -> None:
        cut = getattr(delta, "truncate_after", None)
        if cut is not None:
            for chart in self.charts.values():
                chart.truncate_after(cut)
        for name, (xs, ys) in delta.items():
            self._owner[name].extend(name, xs, ys)

    def on_mount(self) -> None:
        if self.refresh_interval > 0:  # 0: the screen calls refresh_now() in its own frame (the live screen)
            self.set_interval(self.refresh_interval, self.refresh_now)

    def refresh_now(self) -> None:
        """Repaint the charts that have new points on the next screen refresh, not on their next tick."""
        for chart in self.charts.values():
            chart.flush()

    def set_total_steps(self, total: int | None) -> None:
        if total and total != self.total_steps:
            self.total_steps = total
            for chart in self.charts.values():
                chart.set_x_range(0, total)

    def series_len(self, name: str) -> int:
        return len(self._owner[name].series(name))
