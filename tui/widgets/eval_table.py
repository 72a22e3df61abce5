"""EvalTable: a run's checkpoints and every evaluation of each; the best marked ★."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from tui.compare_logic import ResultRow
from tui.format import fmt_float
from tui.widgets.table_fill import fill

COLUMNS = (("best", ""), ("step", "step"), ("checkpoint", "checkpoint"), ("mode", "mode"), ("file", "file"),
           ("accuracy", "accuracy"), ("n", "n"), ("when", "when"), ("source", "source"))


def fmt_when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else ""


class EvalTable(DataTable):
    """``show(rows)`` keeps the cursor on the same checkpoint; ``current()`` is the row under it."""

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.results: list[ResultRow] = []

    def on_mount(self) -> None:
        self.show([])

    def show(self, rows: list[ResultRow]) -> None:
        cur = self.current()
        self.results = rows
        table: list[tuple[str | None, list[str | Text]]] = []
        for r in rows:
            no_ckpt = r.checkpoint is None
            table.append((r.key, [
                Text("★", style="bold yellow") if r.best else "",
                Text(str(r.step if r.step is not None else "-"), justify="right"),
                Text("(no checkpoint)", style="dim") if no_ckpt else Path(r.checkpoint or "").name,
                r.mode or Text("not evaluated", style="dim"),
                # The trainer evaluates on its data folder's dev.tsv and does not record the path.
                Path(r.eval_path).name if r.eval_path else Text("dev.tsv", style="dim") if r.mode else "",
                Text(fmt_float(r.accuracy) if r.mode else "", justify="right",
                     style="bold green" if r.best else ""),
                Text(str(r.n) if r.n is not None else "", justify="right"),
                fmt_when(r.t),
                r.source or "",
            ]))
        columns = [(k, Text(label, justify="right") if k in ("accuracy", "n") else label) for k, label in COLUMNS]
        fill(self, columns, table)
        if cur is not None:
            # The same row if it is still there (a new eval replaces 'not evaluated'), else its checkpoint.
            same = [i for i, r in enumerate(rows) if r.key == cur.key]
            same = same or [i for i, r in enumerate(rows) if (r.step, r.checkpoint) == (cur.step, cur.checkpoint)]
            if same:
                self.move_cursor(row=same[0], animate=False)
        elif rows:
            # First fill: on the best checkpoint (else the newest), the row "Evaluate" acts on.
            ckpts = [i for i, r in enumerate(rows) if r.checkpoint is not None]
            best = [i for i in ckpts if rows[i].best]
            if best or ckpts:
                self.move_cursor(row=(best or ckpts)[-1], animate=False)

    def current(self) -> ResultRow | None:
        if not self.results or not (0 <= self.cursor_row < len(self.results)):
            return None
        return self.results[self.cursor_row]
