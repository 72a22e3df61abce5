"""Rebuild a DataTable with column widths measured up front.

DataTable measures auto-width columns later, on idle; a table rebuilt while other widgets update was
seen (Textual 8.2.8) to stay painted with the old, narrower widths until something repainted it, which
truncated cells on screen and in snapshots. Measuring here makes every rebuild exact at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text


def width_of(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else max((cell_len(s) for s in str(cell).split("\n")), default=0)


def fill(table: DataTable, columns: Sequence[tuple[str, Cell]],
         rows: Sequence[tuple[str | None, Sequence[Cell]]]) -> None:
    """Clear ``table`` and add ``columns`` (key, label) and ``rows`` (key, cells), widths fitted to content."""
    widths = [width_of(label) for _, label in columns]
    for _, cells in rows:
        for i, c in enumerate(cells):
            widths[i] = max(widths[i], width_of(c))
    table.clear(columns=True)
    for (key, label), w in zip(columns, widths, strict=True):
        table.add_column(label, key=key, width=w)
    for row_key, cells in rows:
        table.add_row(*cells, key=row_key)
