"""SpeedTable: the compared runs' engine, speed, time to a common step and dev accuracy, against the first run.

It answers "how much faster is ours, and is it as accurate" for a run of each engine on one config
(``tui.compare_logic.speed_rows`` does the arithmetic).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.compare_logic import SpeedRow
from tui.format import fmt_duration, fmt_float, fmt_rate
from tui.widgets.table_fill import Cell, fill


def _times(v: float | None) -> str:
    return f"×{v:.2f}" if v is not None else "-"


def _seconds(v: float | None) -> str:
    # The tiny model's runs reach a common step in seconds: mm:ss alone would show them all as 00:03.
    if v is None:
        return "-"
    return f"{v:.1f} s" if v < 60 else fmt_duration(v)


class SpeedTable(DataTable[Cell]):
    """One row per run; ratios are to the first run. Empty (and hidden) with fewer than two runs."""

    DEFAULT_CSS = """
    SpeedTable { height: auto; max-height: 8; margin-top: 1; }
    SpeedTable.-empty { display: none; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="none", zebra_stripes=True)

    def show(self, rows: Sequence[SpeedRow], step: int | None, colours: dict[str, str]) -> None:
        self.set_class(len(rows) < 2, "-empty")
        at = f"time to step {step:,}" if step is not None else "time to a common step"
        columns = [("run", "run"), ("engine", "engine"), ("sps", "samples/s (median)"), ("sps_x", "vs first"),
                   ("time", at), ("time_x", "vs first"), ("final", "final dev acc"), ("best", "best dev acc")]
        fill(self, columns, [(None, [
            Text("━ " + r.label, style=colours.get(r.label, "")), r.engine, fmt_rate(r.samples_per_s),
            _times(r.speed_ratio), _seconds(r.time_to_step),
            _times(r.time_ratio), fmt_float(r.final_accuracy), fmt_float(r.best_accuracy)]) for r in rows])
