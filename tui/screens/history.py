"""History: every training run in the store, sortable and filterable; mark runs to compare them.

The table is read once in a thread worker with that thread's own Store, then every ``refresh_s`` seconds
only when something may have changed (a run is running, or the store's files moved), and then only what
changed (``core.runs_reader``). After each read the running runs are reconciled (so a run whose
processes died stops showing as running, and runs nobody follows still gain steps) and read again: the
table is painted first, never held up by a reconcile. One read at a time: Textual's ``exclusive``
cancels only a thread worker's wrapper, not its thread, so up to 5 reads of 10,000 runs overlapped. Actions shared with the run page (clone, resume, delete, export, results)
live in ``tui.screens.run_actions.RunActions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from core.export import export_table
from core.run_filter import FilterError
from core.runs_reader import Changes, RunsReader
from tui.compare_logic import SORT_COLUMNS, STATUS_FILTERS, filter_rows, sort_rows, sort_value
from tui.messages import CompareRequested, RunDeleted, RunPageRequested, RunTagged
from tui.screens.dialogs import ExportDialog
from tui.screens.run_actions import RunActions
from tui.services import Services, as_services
from tui.styles import HISTORY_TCSS
from tui.widgets.runs_table import RunsTable

# Text columns sort A→Z first; numbers and times biggest/newest first.
TEXT_COLUMNS = {"status", "name", "model", "devices"}


# ---------------------------------------------------------------------------- the screen
def store_signature(path: str | Path) -> tuple[int, ...]:
    """Size and modification time of runs.db and its WAL: every commit, by any process, changes them."""
    out: list[int] = []
    for p in (Path(path), Path(f"{path}-wal")):
        try:
            st = p.stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [-1, -1]
    return tuple(out)


class HistoryScreen(RunActions):
    """The runs table. Posts ``CloneRequested`` (clone), ``RunDeleted`` (after a delete), and asks the app
    for a run's page, a comparison, results or a resumed run's live screen."""

    CSS_PATH = HISTORY_TCSS
    SUB_TITLE = "run history"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "results", "Results"),
        Binding("n", "clone", "Clone"),
        Binding("u", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("t", "tags", "Tags"),
        Binding("x", "export_run", "Export run"),
        Binding("X", "export_table", "Export table"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
        Binding("f", "cycle_status", "Status"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    # What the help screen (?) says under the keys: the filter's syntax (core.run_filter).
    HELP_NOTES = [
        ("filter", "words (id, name, model, devices, status, tags, note); \"a phrase\""),
        ("", "tag:best  status:failed  model:medium  name:x  engine:paddlenlp  note:oom"),
        ("", "lr>1e-4  acc>=0.9  steps<100  bs=32  use_amp:true  (any run setting by name)"),
        ("", "-term leaves out what it matches: -tag:broken"),
    ]

    class RowsLoaded(Message):
        """A read's result: rows new or changed, ids gone; ``signature``: the store's files before it."""

        def __init__(self, changes: Changes, signature: tuple[int, ...]):
            super().__init__()
            self.changes = changes
            self.signature = signature

    class ReadDone(Message):
        pass

    def __init__(self, services: Services | str | Path, *, refresh_s: float = 2.0, reconcile: bool = True):
        """``reconcile``: True = the launcher's reconcile on every running run before each read (a run
        whose processes died stops showing as running), False = show the store as it is (tests, snapshots)."""
        super().__init__()
        self.services = as_services(services)
        self.refresh_s = refresh_s
        self.reconcile = reconcile
        self.rows: list[dict[str, Any]] = []  # every run, newest first
        self.by_id: dict[str, dict[str, Any]] = {}
        self.shown: list[dict[str, Any]] = []
        self.marked: set[str] = set()
        self.sort_key = "started"
        self.descending = True
        self.loaded = False  # first load done (tests and snapshots wait on it)
        self._read_signature: tuple[int, ...] = ()
        self.reader = RunsReader()
        self._filtered: tuple[tuple[str, str, int] | None, list[dict[str, Any]]] = (None, [])
        self._rows_version = 0  # goes up whenever self.rows changes (the filter's result is kept until then)
        self._problem = ""  # the filter's error, shown instead of the counts
        self._reading = False  # a read's thread is running (our own guard: see the module's docstring)
        self._again: bool | None = None  # a read was asked meanwhile: None = no, else whether a full one

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="history-bar"):
            yield Input(placeholder="filter: words tag:best lr>1e-4 -word (? for help)", id="history-filter")
            yield Select([(s, s) for s in STATUS_FILTERS], value="all", allow_blank=False, id="history-status")
        yield RunsTable(id="history-table")
        yield Static("", id="history-info")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.load()
        if self.refresh_s:
            self.set_interval(self.refresh_s, self._tick)

    def _tick(self) -> None:
        if self.is_current and self._may_have_changed():
            self.load()

    def _may_have_changed(self) -> bool:
        """Anything new to read: a running run (its steps, duration and status move), or a commit to the
        store by anyone since the last read. Idle with 10,000 finished runs, the screen then reads
        nothing at all instead of the whole table every refresh_s (issue 14: 63-81 % of a core)."""
        if not self.loaded or self.reader.running:
            return True
        return store_signature(self.services.store_path) != self._read_signature

    def on_screen_resume(self) -> None:
        if self.loaded:  # back from a run page, a comparison or a dialog: show what changed there
            self.load(full=True)

    # ------------------------------------------------------------------ data
    def load(self, full: bool = False) -> None:
        """Read what changed (everything when ``full``); while a read runs, one more follows it."""
        if self._reading:
            self._again = bool(self._again) or full
            return
        self._reading = True
        self._read(full)

    @work(thread=True, group="history-load", exit_on_error=False)
    def _read(self, full: bool) -> None:
        try:
            signature = store_signature(self.services.store_path)  # before the read: no commit is missed
            with self.services.store() as store:
                now = self.services.clock()
                self.post_message(self.RowsLoaded(self.reader.changes(store, now, full=full), signature))
                if self.reconcile:
                    running = [r["id"] for r in store.running_runs()]
                    for rid in running:
                        try:
                            self.services.launcher.reconcile(store, rid)
                        except Exception:  # one unreadable run must not hide the table
                            pass
                    if running:
                        changes = self.reader.changes(store, self.services.clock())
                        if changes.rows or changes.removed:
                            self.post_message(self.RowsLoaded(changes, signature))
        finally:
            self.post_message(self.ReadDone())

    def on_history_screen_read_done(self) -> None:
        self._reading = False
        if self._again is not None:
            full, self._again = self._again, None
            self.load(full)

    def on_history_screen_rows_loaded(self, message: RowsLoaded) -> None:
        self._read_signature = message.signature
        ch = message.changes
        first = not self.loaded
        self.loaded = True
        changed = [r for r in ch.rows if self.by_id.get(r["id"]) != r]
        if not first and not changed and not (ch.removed & set(self.by_id)):
            return  # nothing changed: keep the table (and its scroll position) as it is
        old = {r["id"]: self.by_id.get(r["id"]) for r in changed}
        for rid in ch.removed:
            self.by_id.pop(rid, None)
        for r in changed:
            self.by_id[r["id"]] = r
        if first or ch.removed or any(old[rid] is None for rid in old):  # runs came or went: order again
            self.rows = sorted(self.by_id.values(), key=lambda r: r.get("created_at") or 0, reverse=True)
        else:  # the same runs, some of them new dicts: in their places (created_at never changes)
            self.rows = [self.by_id[r["id"]] for r in self.rows]
        self._rows_version += 1
        self.marked &= set(self.by_id)
        if first or ch.removed or not self._update_in_place(changed, old):
            self.redraw()

    def _update_in_place(self, changed: list[dict[str, Any]], old: dict[str, dict[str, Any] | None]) -> bool:
        """Redraw only the changed rows when none of them enters, leaves or moves in the table shown (a
        running run's steps and duration, sorted by start time): a filter and a sort of 10,000 rows
        every 2 s cost more than the rows drawn. False: the table must be redrawn."""
        text = self.query_one("#history-filter", Input).value
        status = str(self.query_one("#history-status", Select).value)
        table = self.query_one(RunsTable)
        for r in changed:
            before = old.get(r["id"])
            if before is None or sort_value(before, self.sort_key) != sort_value(r, self.sort_key):
                return False
            if bool(filter_rows([before], text, status)) != bool(filter_rows([r], text, status)):
                return False
        self.shown = [self.by_id[r["id"]] for r in self.shown]
        table.update_rows(changed)
        self._show_info()
        return True

    def redraw(self) -> None:
        text = self.query_one("#history-filter", Input).value
        status = str(self.query_one("#history-status", Select).value)
        key = (text, status, self._rows_version)
        if self._filtered[0] != key:  # a sort or a mark keeps the filter's result (37 ms at 10,000 runs)
            everything = not text.strip() and status == "all"  # a cleared filter: no row to test
            try:
                picked = list(self.rows) if everything else filter_rows(self.rows, text, status)
                self._problem = ""
            except FilterError as e:  # half-typed or wrong: say so, and hide nothing until it parses
                picked, self._problem = filter_rows(self.rows, "", status), f"filter: {e}"
            self._filtered = (key, picked)
        self.shown = sort_rows(self._filtered[1], self.sort_key, self.descending)
        self.query_one(RunsTable).show(self.shown, self.marked, self.sort_key, self.descending)
        self._show_info()

    def _show_info(self) -> None:
        if self._problem:
            self.query_one("#history-info", Static).update(Text(self._problem, style="bold red"), layout=False)
            return
        info = f"{len(self.shown)} of {len(self.rows)} runs"
        if self.marked:
            info += f" · {len(self.marked)} marked (c compares)"
        info += f" · sorted by {SORT_COLUMNS[self.sort_key]} {'▼' if self.descending else '▲'}"
        # One line high by CSS and as wide as the screen: a new text needs no layout of the whole screen
        # (Static.update lays it out by default: a full layout per sort, mark or keystroke).
        self.query_one("#history-info", Static).update(info, layout=False)

    def current_row(self) -> dict[str, Any] | None:
        rid = self.query_one(RunsTable).current_id()
        return self.by_id.get(rid) if rid is not None else None

    # ------------------------------------------------------------------ events
    @on(Input.Changed, "#history-filter")
    @on(Select.Changed, "#history-status")
    def _filter_changed(self) -> None:
        self.redraw()

    @on(Input.Submitted, "#history-filter")
    def _filter_done(self) -> None:
        self.query_one(RunsTable).focus()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key not in SORT_COLUMNS:
            return
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, key not in TEXT_COLUMNS
        self.redraw()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.post_message(RunPageRequested(event.row_key.value))

    def on_run_tagged(self, message: RunTagged) -> None:
        self.notify(f"Run {message.run_id}: tags {', '.join(message.tags) or 'none'}"
                    + (f"; note {message.note!r}" if message.note else ""), title="Tags")
        self.load(full=True)  # an edit of a run that is not running: only a full read sees it

    def on_run_deleted(self, message: RunDeleted) -> None:
        self.notify(f"Deleted run {message.run_id}" + (" and its folder" if message.files_removed else ""))
        self.marked.discard(message.run_id)
        self.load(full=True)

    # ------------------------------------------------------------------ actions
    def action_back(self) -> None:
        if self.focused is self.query_one("#history-filter"):
            self.query_one(RunsTable).focus()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    def action_refresh(self) -> None:
        self.load(full=True)

    def action_mark(self) -> None:
        row = self.current_row()
        if row is None:
            return
        self.marked ^= {row["id"]}
        self.query_one(RunsTable).set_marks(self.marked)
        self._show_info()

    def action_compare(self) -> None:
        ids = [r["id"] for r in self.shown if r["id"] in self.marked]
        ids += sorted(self.marked - set(ids))  # marked but filtered out: still compared
        if len(ids) < 2:
            self.notify("Mark two or more runs with space to compare them.", severity="warning")
            return
        self.post_message(CompareRequested(ids))

    def action_results(self) -> None:
        row = self.current_row()
        if row is not None:
            self.open_results(row["id"])

    def action_clone(self) -> None:
        row = self.current_row()
        if row is not None:
            self.clone_run(row["id"])

    def action_delete(self) -> None:
        row = self.current_row()
        if row is not None:
            self.delete_run_asked(row)

    def action_resume(self) -> None:
        row = self.current_row()
        if row is not None:
            self.resume_run(row)

    def action_tags(self) -> None:
        row = self.current_row()
        if row is not None:
            self.edit_tags_asked(row["id"])

    def action_export_run(self) -> None:
        row = self.current_row()
        if row is not None:
            self.export_run_asked(row["id"])

    def action_export_table(self) -> None:
        rows = list(self.shown)

        def done(path: str | None) -> None:
            if path:
                self.run_worker(lambda: self._export_table(rows, path), thread=True, group="run-action",
                                exit_on_error=False)

        self.app.push_screen(ExportDialog(f"Export the {len(rows)} runs shown", "./runs.csv"), done)

    def _export_table(self, rows: list[dict[str, Any]], path: str) -> None:
        written = export_table(rows, path)
        self.app.call_from_thread(self.notify, f"Wrote {written}", title="Export")

    def action_cycle_sort(self) -> None:
        keys = list(SORT_COLUMNS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.descending = self.sort_key not in TEXT_COLUMNS
        self.redraw()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self.redraw()

    def action_cycle_status(self) -> None:
        select = self.query_one("#history-status", Select)
        i = STATUS_FILTERS.index(str(select.value))
        select.value = STATUS_FILTERS[(i + 1) % len(STATUS_FILTERS)]
