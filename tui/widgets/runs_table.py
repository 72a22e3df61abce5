"""RunsTable: the history's table of training runs, one row per run, keyed by run id."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from core.progress import fmt_duration
from tui.compare_logic import SORT_COLUMNS
from tui.format import fmt_float, fmt_rate
from tui.widgets.table_fill import fill, width_of

STATUS_STYLE = {"running": "bold dodger_blue1", "finished": "green", "failed": "bold red", "stopped": "yellow",
                "lost": "magenta"}
MARK = "●"
NAME_WIDTH = 20
TAGS_WIDTH = 14  # "best, sweep-3…": enough to tell tagged runs apart; the filter (tag:NAME) finds the rest
# Columns in display order: the mark column first, then the sortable ones, then the tags when they fit.
COLUMNS = ("mark", *SORT_COLUMNS, "tags")
NUMERIC = {"steps", "final_loss", "best_accuracy", "mean_samples_per_s", "duration_s"}


def fmt_when(t: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "-"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def cells(row: dict[str, Any], marked: bool) -> list[Text | str]:
    name = str(row.get("name") or row["id"])
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1] + "…"
    steps = f"{row.get('steps') or 0}/{row.get('total_steps') or '?'}"
    values: dict[str, Text | str] = {
        "mark": Text(MARK if marked else " ", style="bold yellow"),
        "status": status_text(row["status"]),
        "name": name,
        "model": str(row.get("model") or "-"),
        "devices": str(row.get("devices") or "-"),
        "steps": steps,
        "final_loss": fmt_float(row.get("final_loss")),
        "best_accuracy": fmt_float(row.get("best_accuracy")),
        "mean_samples_per_s": fmt_rate(row.get("mean_samples_per_s")),
        "duration_s": fmt_duration(row.get("duration_s")) if row.get("duration_s") is not None else "-",
        "started": fmt_when(row.get("created_at")),
        "tags": Text(_clip(", ".join(row.get("tags") or []), TAGS_WIDTH), style="cyan"),
    }
    return [Text(str(values[k]), justify="right") if k in NUMERIC else values[k] for k in COLUMNS]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def header(sort_key: str, descending: bool) -> list[tuple[str, Text | str]]:
    """(key, label) of every column; the sort column's label shows the direction."""
    columns: list[tuple[str, Text | str]] = []
    for key in COLUMNS:
        label = "" if key == "mark" else SORT_COLUMNS.get(key, key)
        if key == sort_key:
            label += " ▼" if descending else " ▲"
        columns.append((key, Text(label, justify="right") if key in NUMERIC else label))
    return columns


def fits(columns: list[tuple[str, Text | str]], rows: list[tuple[str, list[Text | str]]], width: int) -> bool:
    """The columns, each as wide as its widest cell plus DataTable's padding (1 a side), within ``width``
    less a vertical scrollbar's 2 cells."""
    widths = [width_of(label) for _, label in columns]
    for _, row in rows:
        widths = [max(w, width_of(c)) for w, c in zip(widths, row, strict=True)]
    return sum(w + 2 for w in widths) <= width - 2


class RunsTable(DataTable):
    """A row per run (key: run id) with a mark column; the header shows the sort column and direction.

    The screen owns filtering, sorting and marks; ``show`` redraws and keeps the cursor on its run.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.row_ids: list[str] = []
        self._shown: tuple[Any, ...] | None = None
        self._with_tags = False

    def show(self, rows: list[dict[str, Any]], marked: set[str], sort_key: str, descending: bool) -> None:
        self._shown = (rows, marked, sort_key, descending)
        current = self.current_id()
        columns = header(sort_key, descending)
        self.row_ids = [r["id"] for r in rows]
        body = [(r["id"], cells(r, r["id"] in marked)) for r in rows]
        # The tags column comes last, when a run shown has tags and the whole table then fits (at 160
        # columns, not at 120 with the usual columns).
        self._with_tags = self._tags_fit(rows, columns, body)
        if not self._with_tags:
            columns, body = columns[:-1], [(k, c[:-1]) for k, c in body]
        fill(self, columns, body)
        if current in self.row_ids:
            self.move_cursor(row=self.row_ids.index(current), animate=False)

    def _tags_fit(self, rows: list[dict[str, Any]], columns: list[tuple[str, Text | str]],
                  body: list[tuple[str, list[Text | str]]]) -> bool:
        return any(r.get("tags") for r in rows) and fits(columns, body, self.size.width or self.app.size.width)

    def on_resize(self) -> None:
        if self._shown is None:
            return
        rows, marked, sort_key, descending = self._shown
        if not self._with_tags and not any(r.get("tags") for r in rows):
            return  # no tags shown: nothing to measure (10,000 rows' cells cost ~0.2 s)
        body = [(r["id"], cells(r, r["id"] in marked)) for r in rows]
        if self._tags_fit(rows, header(sort_key, descending), body) != self._with_tags:  # grew or shrank past it
            self.show(rows, marked, sort_key, descending)

    def current_id(self) -> str | None:
        if not self.row_ids or not (0 <= self.cursor_row < len(self.row_ids)):
            return None
        return self.row_ids[self.cursor_row]
