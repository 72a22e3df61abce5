"""Dialogs shared by the history screen and a run's page: where to export, and what to delete."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from core.export import ExportError, format_for


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
