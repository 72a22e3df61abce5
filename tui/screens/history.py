"""History: every training run in the store, sortable and filterable; mark runs to compare them.

The table is read in a thread worker with that thread's own Store, every ``refresh_s`` seconds, after
reconciling running runs (so a run whose processes died stops showing as running, and runs nobody
follows still gain steps). Actions shared with the run page (clone, delete, export, results) live in
``RunActions``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from core.config import RunConfig
from core.export import ExportError, export_run, export_table, format_for, runs_table
from core.launch import runs_root_for
from core.store import Store
from tui.compare_logic import SORT_COLUMNS, STATUS_FILTERS, filter_rows, sort_rows
from tui.widgets.runs_table import RunsTable

CSS_FILE = "../history.tcss"
# Text columns sort A→Z first; numbers and times biggest/newest first.
TEXT_COLUMNS = {"status", "name", "model", "devices"}


@contextmanager
def opened(path: Path) -> Iterator[Store]:
    """A Store for this thread only (sqlite connections are per thread here)."""
    store = Store(path)
    try:
        yield store
    finally:
        store.close()


class CloneRequested(Message):
    """The user wants to launch a copy of a run: open the configure screen with ``config`` to edit."""

    def __init__(self, config: RunConfig, run_id: str):
        super().__init__()
        self.config = config
        self.run_id = run_id


class RunDeleted(Message):
    """A run was removed from the store (and its folder, when ``files_removed``)."""

    def __init__(self, run_id: str, files_removed: bool):
        super().__init__()
        self.run_id = run_id
        self.files_removed = files_removed


class DeleteRefused(Exception):
    """The run cannot be deleted (it is running, or gone); the message says why."""


def inside_runs_root(run_dir: str | Path | None, runs_root: Path) -> bool:
    """True when ``run_dir`` resolves to a folder strictly inside the runs root (symlinks followed)."""
    if not run_dir:
        return False
    d = Path(run_dir).resolve()
    root = runs_root.resolve()
    return d != root and d.is_relative_to(root) and d.is_dir()


def delete_run(store: Store, run_id: str, runs_root: Path, files: bool) -> bool:
    """Remove the run and the eval jobs of its checkpoints from the store and, when ``files``, their
    folders (only those inside the runs root).

    Returns whether files were removed. The rows go first: a folder left behind by a failed removal is
    harmless, a row pointing at a half-removed folder is not.
    """
    run = store.get_run(run_id)
    if run is None:
        raise DeleteRefused(f"run {run_id} is not in the store any more")
    if run["status"] == "running":
        raise DeleteRefused(f"run {run_id} is running: stop it first")
    jobs = store.eval_jobs(run_id)
    busy = [j["id"] for j in jobs if j["status"] == "running"]
    if busy:
        raise DeleteRefused(f"an evaluation of run {run_id} is running ({', '.join(busy)}): "
                            "let it finish or stop it first")
    store.delete_run(run_id)
    removed = False
    if files:
        for r in (run, *jobs):
            if inside_runs_root(r.get("run_dir"), runs_root):
                shutil.rmtree(r["run_dir"])
                removed = True
    return removed


# ---------------------------------------------------------------------------- dialogs
class ExportDialog(ModalScreen[str | None]):
    """Ask where to write an export; the suffix (.csv or .json) picks the format."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default_path: str):
        super().__init__()
        self.title_text = title
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.default_path, id="export-path")
            yield Static("Name the file .csv or .json; a relative path starts in the current folder.",
                         classes="dialog-help")
            yield Static("", id="export-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="export-save")
                yield Button("Cancel", id="export-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#export-save")
    def save(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        try:
            format_for(path)
        except ExportError as e:
            self.query_one("#export-error", Static).update(str(e))
            return
        self.dismiss(path)

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DeleteDialog(ModalScreen[bool | None]):
    """Confirm a delete: None = cancel, False = from the store only, True = its files too."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, name: str, run_dir: str | None, files_allowed: bool, eval_jobs: int = 0):
        super().__init__()
        self.run_id, self.run_name, self.run_dir, self.files_allowed = run_id, name, run_dir, files_allowed
        self.eval_jobs = eval_jobs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Delete run {self.run_id} ({self.run_name})?", classes="dialog-title")
            jobs = (f", and the {self.eval_jobs} evaluation job{'s' if self.eval_jobs != 1 else ''} run on its "
                    "checkpoints (their folders too, with the box below)") if self.eval_jobs else ""
            yield Static(f"It leaves the runs database: its metrics, evals, checkpoint list and logs{jobs}.",
                         classes="dialog-help")
            yield Checkbox(f"Also delete its folder {self.run_dir}", id="delete-files",
                           disabled=not self.files_allowed)
            if not self.files_allowed:
                yield Static("Its folder is not inside the runs folder next to the database (or is gone): "
                             "it is never removed from here.", classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Delete", variant="error", id="delete-confirm")
                yield Button("Cancel", id="delete-cancel")

    def on_mount(self) -> None:
        self.query_one("#delete-cancel", Button).focus()

    @on(Button.Pressed, "#delete-confirm")
    def confirm(self) -> None:
        self.dismiss(self.files_allowed and self.query_one("#delete-files", Checkbox).value)

    @on(Button.Pressed, "#delete-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------------------- shared actions
class RunActions:
    """Clone, delete, export and results for one run; mixed into the history screen and the run page.

    Needs ``store_path`` and ``runs_root`` attributes; every store access runs in a thread worker.
    """

    store_path: Path
    runs_root: Path
    app: Any
    run_worker: Callable[..., Worker[Any]]
    notify: Callable[..., None]

    def clone_run(self, run_id: str) -> None:
        self.run_worker(lambda: self._clone(run_id), thread=True, group="run-action", exit_on_error=False)

    def _clone(self, run_id: str) -> None:
        with opened(self.store_path) as store:
            run = store.get_run(run_id)
        if run is None:
            raise DeleteRefused(f"run {run_id} is not in the store any more")
        # Keys of an older schema are dropped, not fatal: the configure screen validates the rest.
        known = set(RunConfig.field_names())
        cfg = RunConfig.from_dict({k: v for k, v in (run.get("config") or {}).items() if k in known})
        self.post_message(CloneRequested(cfg, run_id))  # type: ignore[attr-defined]

    def resume_run(self, run: dict[str, Any]) -> None:
        """Continue a stopped, failed or lost run from its latest checkpoint, as a new linked run."""
        if run["status"] in ("running", "finished"):
            self.notify(f"Run {run['id']} is {run['status']}: only a stopped, failed or lost run resumes.",
                        severity="warning")
            return
        self.run_worker(lambda: self._resume(run["id"]), thread=True, group="run-action", exit_on_error=False)

    def _resume(self, run_id: str) -> None:
        with opened(self.store_path) as store:
            new = self.app.launcher.resume(store, run_id)
        self.app.call_from_thread(self.app.open_live, new)

    def delete_run_asked(self, run: dict[str, Any]) -> None:
        if run["status"] == "running":
            self.notify(f"Run {run['id']} is running: stop it before deleting it.", severity="warning")
            return
        allowed = inside_runs_root(run.get("run_dir"), self.runs_root)

        def done(files: bool | None) -> None:
            if files is not None:
                self.run_worker(lambda: self._delete(run["id"], files), thread=True, group="run-action",
                                exit_on_error=False)

        def ask() -> None:  # the dialog names the eval jobs that go with the run: count them off the UI thread
            with opened(self.store_path) as store:
                jobs = len(store.eval_jobs(run["id"]))
            self.app.call_from_thread(self.app.push_screen, DeleteDialog(
                run["id"], run.get("name") or run["id"], run.get("run_dir"), allowed, jobs), done)

        self.run_worker(ask, thread=True, group="run-action", exit_on_error=False)

    def _delete(self, run_id: str, files: bool) -> None:
        with opened(self.store_path) as store:
            removed = delete_run(store, run_id, self.runs_root, files)
        self.post_message(RunDeleted(run_id, removed))  # type: ignore[attr-defined]

    def export_run_asked(self, run_id: str) -> None:
        def done(path: str | None) -> None:
            if path:
                self.run_worker(lambda: self._export_run(run_id, path), thread=True, group="run-action",
                                exit_on_error=False)

        self.app.push_screen(ExportDialog(f"Export run {run_id}", f"./{run_id}.csv"), done)

    def _export_run(self, run_id: str, path: str) -> None:
        with opened(self.store_path) as store:
            run = store.get_run(run_id)
            if run is None:
                raise DeleteRefused(f"run {run_id} is not in the store any more")
            written = export_run(store, run, path)
        self.app.call_from_thread(self.notify, f"Wrote {written}", title="Export")

    def open_results(self, run_id: str) -> None:
        from tui.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(run_id, self.store_path, self.runs_root))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(str(err) or type(err).__name__, severity="error", markup=False)
            event.stop()  # said here, in the user's words; the app need not say it again


# ---------------------------------------------------------------------------- the screen
class HistoryScreen(RunActions, Screen[None]):
    """The runs table. Posts ``CloneRequested`` (clone), ``RunDeleted`` (after a delete)."""

    CSS_PATH = CSS_FILE
    SUB_TITLE = "run history"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "results", "Results"),
        Binding("n", "clone", "Clone"),
        Binding("u", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("x", "export_run", "Export run"),
        Binding("X", "export_table", "Export table"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
        Binding("f", "cycle_status", "Status"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    class RowsLoaded(Message):
        def __init__(self, rows: list[dict[str, Any]]):
            super().__init__()
            self.rows = rows

    def __init__(self, store_path: str | Path, runs_root: Path | None = None, *,
                 clock: Callable[[], float] = time.time, refresh_s: float = 2.0,
                 reconcile: Callable[[Store, str], Any] | bool = True):
        """``reconcile``: True = core.reconcile on every running run before each read (a run whose
        processes died stops showing as running), a callable (e.g. the app launcher's ``reconcile``)
        to do it that way, False = show the store as it is (tests, snapshots)."""
        super().__init__()
        self.store_path = Path(store_path)
        self.runs_root = runs_root or runs_root_for(self.store_path)
        self.clock = clock
        self.refresh_s = refresh_s
        self.reconcile = reconcile
        self.rows: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.marked: set[str] = set()
        self.sort_key = "started"
        self.descending = True
        self.loaded = False  # first load done (tests and snapshots wait on it)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="history-bar"):
            yield Input(placeholder="filter: name, id, model, devices…  (/)", id="history-filter")
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
        if self.is_current:
            self.load()

    def on_screen_resume(self) -> None:
        if self.loaded:  # back from a run page, a comparison or a dialog: show what changed there
            self.load()

    # ------------------------------------------------------------------ data
    @work(thread=True, exclusive=True, group="history-load", exit_on_error=False)
    def load(self) -> None:
        with opened(self.store_path) as store:
            if self.reconcile:
                if callable(self.reconcile):
                    check = self.reconcile
                else:
                    from core.reconcile import reconcile as check
                for r in store.running_runs():
                    try:
                        check(store, r["id"])
                    except Exception:  # one unreadable run must not hide the table
                        pass
            rows = runs_table(store, now=self.clock())
        self.post_message(self.RowsLoaded(rows))

    def on_history_screen_rows_loaded(self, message: RowsLoaded) -> None:
        if self.loaded and message.rows == self.rows:
            return  # nothing changed: keep the table (and its scroll position) as it is
        self.rows = message.rows
        self.marked &= {r["id"] for r in self.rows}
        self.loaded = True
        self.redraw()

    def redraw(self) -> None:
        text = self.query_one("#history-filter", Input).value
        status = self.query_one("#history-status", Select).value
        self.shown = sort_rows(filter_rows(self.rows, text, str(status)), self.sort_key, self.descending)
        self.query_one(RunsTable).show(self.shown, self.marked, self.sort_key, self.descending)
        info = f"{len(self.shown)} of {len(self.rows)} runs"
        if self.marked:
            info += f" · {len(self.marked)} marked (c compares)"
        info += f" · sorted by {SORT_COLUMNS[self.sort_key]} {'▼' if self.descending else '▲'}"
        self.query_one("#history-info", Static).update(info)

    def current_row(self) -> dict[str, Any] | None:
        rid = self.query_one(RunsTable).current_id()
        return next((r for r in self.shown if r["id"] == rid), None)

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
        from tui.screens.run_page import RunPage

        if event.row_key.value:
            self.app.push_screen(RunPage(event.row_key.value, self.store_path, self.runs_root, clock=self.clock))

    def on_run_deleted(self, message: RunDeleted) -> None:
        self.notify(f"Deleted run {message.run_id}" + (" and its folder" if message.files_removed else ""))
        self.marked.discard(message.run_id)
        self.load()

    # ------------------------------------------------------------------ actions
    def action_back(self) -> None:
        if self.focused is self.query_one("#history-filter"):
            self.query_one(RunsTable).focus()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    def action_refresh(self) -> None:
        self.load()

    def action_mark(self) -> None:
        row = self.current_row()
        if row is None:
            return
        self.marked ^= {row["id"]}
        self.redraw()

    def action_compare(self) -> None:
        from tui.screens.compare import CompareScreen

        ids = [r["id"] for r in self.shown if r["id"] in self.marked]
        ids += sorted(self.marked - set(ids))  # marked but filtered out: still compared
        if len(ids) < 2:
            self.notify("Mark two or more runs with space to compare them.", severity="warning")
            return
        self.app.push_screen(CompareScreen(ids, self.store_path))

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
