"""RunsTable: the history's table of training runs, one row per run, keyed by run id.

A column is defined in two places side by side: ``COLUMNS`` (its order) and ``cell_values`` (its text);
``cells`` styles that text. The table is a DataTable whose rows are swapped in whole (``show``) instead
of cleared and re-added: at 10,000 runs ``clear`` + ``add_row`` cost 1.4 s a sort, mark or filter
keystroke (issue 14), 0.7 s of it building Rich Text cells for rows nobody sees. Here a row's cells are
built when a line of it is first drawn (``LazyCells``), column widths come from each row's plain text
(cached per row), and the DataTable's own drawing (only the lines in view) is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, Row, RowKey

from core.progress import fmt_duration
from tui.compare_logic import SORT_COLUMNS
from tui.format import fmt_float, fmt_rate

STATUS_STYLE = {"running": "bold dodger_blue1", "finished": "green", "failed": "bold red", "stopped": "yellow",
                "lost": "magenta"}
MARK = "●"
NAME_WIDTH = 20
TAGS_WIDTH = 14  # "best, sweep-3…": enough to tell tagged runs apart; the filter (tag:NAME) finds the rest
# Columns in display order: the mark column first, then the sortable ones, then the tags when they fit.
COLUMNS = ("mark", *SORT_COLUMNS, "tags")
WITHOUT_TAGS = COLUMNS[:-1]
NUMERIC = {"steps", "final_loss", "best_accuracy", "mean_samples_per_s", "duration_s"}


def fmt_when(t: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "-"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def cell_values(row: dict[str, Any]) -> dict[str, str]:
    """The plain text of each column but the mark (what the widths are measured on)."""
    name = str(row.get("name") or row["id"])
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1] + "…"
    return {
        "status": str(row["status"]),
        "name": name,
        "model": str(row.get("model") or "-"),
        "devices": str(row.get("devices") or "-"),
        "steps": f"{row.get('steps') or 0}/{row.get('total_steps') or '?'}",
        "final_loss": fmt_float(row.get("final_loss")),
        "best_accuracy": fmt_float(row.get("best_accuracy")),
        "mean_samples_per_s": fmt_rate(row.get("mean_samples_per_s")),
        "duration_s": fmt_duration(row.get("duration_s")) if row.get("duration_s") is not None else "-",
        "started": fmt_when(row.get("created_at")),
        "tags": _clip(", ".join(row.get("tags") or []), TAGS_WIDTH),
    }


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def label_of(key: str, sort_key: str, descending: bool) -> str:
    label = "" if key == "mark" else SORT_COLUMNS.get(key, key)
    if key == sort_key:
        label += " ▼" if descending else " ▲"
    return label


def mark_cell(marked: bool) -> Text:
    return Text(MARK if marked else " ", style="bold yellow")


def cells(row: dict[str, Any], marked: bool, values: dict[str, str] | None = None,
          columns: tuple[str, ...] = COLUMNS) -> list[Text | str]:
    """The cells of one row in ``columns`` order (``values``: its ``cell_values``, when already made)."""
    values = values if values is not None else cell_values(row)
    out: list[Text | str] = []
    for k in columns:
        if k == "mark":
            out.append(mark_cell(marked))
        elif k == "status":
            out.append(Text(values[k], style=STATUS_STYLE.get(values[k], "")))
        elif k == "tags":
            out.append(Text(values[k], style="cyan"))
        else:
            out.append(Text(values[k], justify="right") if k in NUMERIC else values[k])
    return out


def text_width(s: str) -> int:
    return len(s) if s.isascii() else max((cell_len(p) for p in s.split("\n")), default=0)


def cell_widths(values: dict[str, str]) -> tuple[int, ...]:
    return tuple(cell_len(MARK) if k == "mark" else text_width(values[k]) for k in COLUMNS)


class LazyCells(dict):  # type: ignore[type-arg]
    """The DataTable's ``_data`` (row key -> {column key: cell}), each row's cells made on first use.

    DataTable reads a row's cells through ``_data.get`` (drawing a line, ``get_row``) and
    ``_data[key][column] = value`` (``update_cell``); both end here."""

    def __init__(self, make: Callable[[RowKey], dict[ColumnKey, Any] | None]):
        super().__init__()
        self._make = make

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __missing__(self, key: RowKey) -> dict[ColumnKey, Any]:
        made = self._make(key)
        if made is None:
            raise KeyError(key)
        self[key] = made
        return made


class LineOffsets:
    """DataTable's ``_y_offsets`` (line -> (row key, line in row)) for rows one line high, without the
    list DataTable rebuilds after every change (10,000 tuples: ~9 ms a sort, mark or cursor move)."""

    def __init__(self, keys: list[RowKey]):
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, y: int) -> tuple[RowKey, int]:
        return self.keys[y], 0

    def clear(self) -> None:
        self.keys = []


class RunsTable(DataTable):
    """A row per run (key: run id) with a mark column; the header shows the sort column and direction.

    The screen owns filtering, sorting and marks; ``show`` puts rows in (the cursor stays on its run),
    ``update_rows`` redraws some rows in place and ``set_marks`` only the mark cells.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        self._order: list[RowKey] = []  # before DataTable's __init__: its watchers read the properties below
        self._metas: list[Row] = []
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.row_ids: list[str] = []
        self.cells_made = 0  # rows whose cells were built (tests: only rows drawn or asked for)
        self._shown: dict[str, dict[str, Any]] = {}
        self._marked: set[str] = set()
        self._values: dict[str, tuple[dict[str, Any], dict[str, str], tuple[int, ...]]] = {}
        self._keys: dict[str, RowKey] = {}
        self._row_meta: dict[str, Row] = {}
        self._active = WITHOUT_TAGS  # the columns shown: the tags only when a run has some and they fit
        self._col_keys = [ColumnKey(k) for k in self._active]
        self._header: tuple[str, bool] | None = None
        self._last: tuple[str, bool] = ("started", True)
        self._content_widths: list[int] = []
        # Rendered cells by content (not by place: DataTable's cache forgets every cell on each sort).
        self._by_content: dict[tuple[Any, ...], list[list[Segment]]] = {}

    # ------------------------------------------------------------------ rows in
    def show(self, rows: list[dict[str, Any]], marked: set[str], sort_key: str, descending: bool) -> None:
        current = self.current_id()
        same_rows = len(rows) == len(self._shown) and all(self._shown.get(r["id"]) is r for r in rows)
        self._marked = set(marked)
        self._shown = {r["id"]: r for r in rows}
        self.row_ids = list(self._shown)
        self._last = (sort_key, descending)
        self._set_columns(sort_key, descending, fit=not same_rows)  # a sort: the same widths
        self._order = [self._key(rid) for rid in self.row_ids]
        self._metas = [self._meta(rid) for rid in self.row_ids]
        self.rows = dict(zip(self._order, self._metas, strict=True))
        self._row_locations = TwoWayDict({k: i for i, k in enumerate(self._order)})
        self._invalidate()
        if current in self._shown:
            self.move_cursor(row=self.row_ids.index(current), animate=False)
        else:
            self.move_cursor(row=0, animate=False)

    def update_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """New contents for rows already shown, in the same places (a running run's steps): only their
        lines are drawn again, unless a column's width changes (then the whole table is)."""
        changed = []
        for r in rows:
            if r["id"] in self._shown:
                self._shown[r["id"]] = r
                self._data.pop(self._key(r["id"]), None)
                changed.append(r["id"])
        widths = list(self._content_widths)
        self._fit_widths()
        if widths != self._content_widths:
            self._invalidate(new_data=False)
        elif changed:
            self._redraw_rows(changed)

    def _redraw_rows(self, ids: Iterable[str]) -> None:
        # The render caches are keyed by place, not content: drop them, but keep _update_count (it keys
        # every line of the table) so that only the lines refreshed here are drawn again.
        for cache in (self._row_render_cache, self._cell_render_cache, self._row_renderable_cache,
                      self._line_cache):
            cache.clear()
        for rid in ids:
            index = self._row_locations.get(self._key(rid))
            if index is not None:
                self.refresh_row(index)

    def set_marks(self, marked: set[str]) -> None:
        """Redraw only the mark cells that changed (one line for one mark, not the whole table)."""
        changed = (marked ^ self._marked) & set(self._shown)
        self._marked = set(marked)
        col = self._col_keys[0]
        for rid in changed:
            made = dict.get(self._data, self._key(rid))
            if made is not None:
                made[col] = mark_cell(rid in marked)
        if changed:
            self._redraw_rows(changed)

    def current_id(self) -> str | None:
        if not self.row_ids or not (0 <= self.cursor_row < len(self.row_ids)):
            return None
        return self.row_ids[self.cursor_row]

    # ------------------------------------------------------------------ internals
    def _key(self, rid: str) -> RowKey:
        key = self._keys.get(rid)
        if key is None:
            key = self._keys[rid] = RowKey(rid)
        return key

    def _meta(self, rid: str) -> Row:
        meta = self._row_meta.get(rid)
        if meta is None:
            meta = self._row_meta[rid] = Row(self._key(rid), 1)
        return meta

    def _text_of(self, rid: str) -> tuple[dict[str, str], tuple[int, ...]]:
        """A row's plain text and widths, cached while the row (the same dict) is the one shown."""
        row = self._shown[rid]
        hit = self._values.get(rid)
        if hit is None or hit[0] is not row:
            values = cell_values(row)
            hit = self._values[rid] = (row, values, cell_widths(values))
        return hit[1], hit[2]

    def _make_cells(self, key: RowKey) -> dict[ColumnKey, Any] | None:
        rid = key.value
        if rid not in self._shown:
            return None
        self.cells_made += 1
        values, _ = self._text_of(rid)
        made = cells(self._shown[rid], rid in self._marked, values, self._active)
        return dict(zip(self._col_keys, made, strict=True))

    def _set_columns(self, sort_key: str, descending: bool, fit: bool = True) -> None:
        if fit or not self._content_widths:
            self._measure()
        active = self._choose_columns(sort_key, descending)
        if not self.columns or active != self._active:
            # Rebuilt empty: add_column fills a cell of every existing row (it would build them all); the
            # caller puts the rows back.
            self.rows = {}
            self._data = LazyCells(self._make_cells)
            self.columns.clear()
            self._column_locations = TwoWayDict({})
            self._active = active
            self._col_keys = [ColumnKey(k) for k in active]
            self._header = None
            for key in active:
                self.add_column("", key=key, width=1)
        if self._header != (sort_key, descending):
            self._header = (sort_key, descending)
            for key, ckey in zip(self._active, self._col_keys, strict=True):
                label = label_of(key, sort_key, descending)
                self.columns[ckey].label = Text(label, justify="right") if key in NUMERIC else Text(label)
        self._apply_widths()

    def _measure(self) -> None:
        """Each column's widest cell among the rows shown (every column in ``COLUMNS``, shown or not)."""
        per_row = [self._text_of(rid)[1] for rid in self.row_ids]
        self._content_widths = list(map(max, zip(*per_row, strict=True))) if per_row else [0] * len(COLUMNS)

    def _fit_widths(self) -> None:
        self._measure()
        self._apply_widths()

    def _choose_columns(self, sort_key: str, descending: bool) -> tuple[str, ...]:
        """The tags come last, when a run shown has tags and the whole table then fits (at 160 columns,
        not at 120 with the usual columns): each column as wide as its label and widest cell, plus
        DataTable's padding (1 a side), within the width less a vertical scrollbar's 2 cells."""
        widths = dict(zip(COLUMNS, self._content_widths, strict=True))
        if not widths.get("tags"):
            return WITHOUT_TAGS
        total = sum(max(widths[k], cell_len(label_of(k, sort_key, descending))) + 2 for k in COLUMNS)
        return COLUMNS if total <= (self.size.width or self.app.size.width) - 2 else WITHOUT_TAGS

    def _apply_widths(self) -> None:
        widths = dict(zip(COLUMNS, self._content_widths, strict=True))
        for key, ckey in zip(self._active, self._col_keys, strict=True):
            self.columns[ckey].width = max(widths[key], self.columns[ckey].label.cell_len)

    def on_resize(self) -> None:
        if self._content_widths and self._choose_columns(*self._last) != self._active:  # grew or shrank past it
            self.show(list(self._shown.values()), self._marked, *self._last)

    @property
    def _y_offsets(self) -> LineOffsets:  # type: ignore[override]
        return LineOffsets(self._order)

    @property
    def ordered_rows(self) -> list[Row]:  # type: ignore[override]
        return self._metas

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """DataTable's cell, but a cell already drawn elsewhere with the same text and styles is reused
        (a sort or filter moves rows, and DataTable's cache is keyed by place): a 160 x 48 table drew
        42 lines in ~80 ms, most of it Rich laying out cells like "finished" or "300/300" again."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell = self._get_row_renderables(row_index).cells[column_index]
        if not isinstance(cell, Text) or cell.spans:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (cell.plain, str(cell.style), cell.justify, cell.overflow, cell.no_wrap, cell.end, base_style, width,
               cursor, hover, self._show_hover_cursor, self.show_cursor, self._pseudo_class_state,
               self.rows[self._order[row_index]].height)
        lines = self._by_content.get(key)
        if lines is None:
            # Drawn at a place that is not on screen (row 0, the real column): DataTable adds the place as
            # meta (row, column: where a click lands), which is put back below.
            if len(self._by_content) > 4096:
                self._by_content.clear()
            lines = self._by_content[key] = super()._render_cell(row_index, column_index, base_style, width,
                                                                  cursor, hover)
            lines = self._by_content[key] = [[Segment(t, _without_meta(st), c) for t, st, c in line]
                                             for line in lines]
        meta = Style.from_meta({"row": row_index, "column": column_index})
        return [[Segment(t, (st + meta) if st is not None else meta, c) for t, st, c in line] for line in lines]

    def notify_style_update(self) -> None:
        self._by_content.clear()  # a theme or focus change restyles every cell
        super().notify_style_update()

    def _invalidate(self, new_data: bool = True, dimensions: bool = True) -> None:
        """What DataTable.clear + add_row would have reset, without touching every row."""
        if new_data:
            self._data = LazyCells(self._make_cells)
        self._new_rows.clear()
        self._updated_cells.clear()
        self._clear_caches()
        self._update_count += 1
        if dimensions:
            self._require_update_dimensions = False
            self._update_dimensions(())
        self.refresh()


def _without_meta(style: Style | None) -> Style | None:
    if style is None or not style._meta:
        return style
    return Style(color=style.color, bgcolor=style.bgcolor, bold=style.bold, dim=style.dim, italic=style.italic,
                 underline=style.underline, blink=style.blink, blink2=style.blink2, reverse=style.reverse,
                 conceal=style.conceal, strike=style.strike, underline2=style.underline2, frame=style.frame,
                 encircle=style.encircle, overline=style.overline, link=style.link)
