"""ConfigDiff: the settings that differ between runs, a row per field and a column per run."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.widgets.table_fill import fill

MAX_CELL = 40


def cell(v: Any) -> str:
    s = "(unset)" if v is None else repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= MAX_CELL else s[: MAX_CELL - 1] + "…"


class ConfigDiff(DataTable):
    """``show(diff, runs)``: diff from ``compare_logic.config_diff``, runs as (id, label, colour)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.fields: list[str] = []

    def show(self, diff: list[tuple[str, dict[str, Any]]], runs: list[tuple[str, str, str]]) -> None:
        columns: list[tuple[str, str | Text]] = [("setting", "setting")]
        columns += [(rid, Text(label, style=colour)) for rid, label, colour in runs]
        self.fields = [f for f, _ in diff]
        rows: list[tuple[str | None, list[str | Text]]] = [
            (f, [Text(f, style="bold"), *(cell(values.get(rid)) for rid, _, _ in runs)]) for f, values in diff]
        if not diff:
            rows = [(None, [Text("every setting is the same", style="dim"), *("" for _ in runs)])]
        fill(self, columns, rows)
