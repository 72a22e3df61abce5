"""TagDialog: edit one run's tags and note (key t on the history and on a run's page)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from core.tags import MAX_NOTE_LEN, TagError, clean_note, merge_tags, split_tags, tags_text

TagEdit = tuple[list[str], str | None]


class TagDialog(ModalScreen[TagEdit | None]):
    """Ask for a run's tags (comma or space separated) and note; dismisses with (tags, note) or None.

    The answer is checked here with the store's own rules (``core.tags``), so a refused tag is named in
    the dialog and nothing is written; the caller saves it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, name: str, tags: list[str], note: str | None):
        super().__init__()
        self.run_id, self.run_name = run_id, name
        self.tags, self.note = tags, note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Tags and note of run {self.run_id} ({self.run_name})", classes="dialog-title")
            yield Label("tags")
            yield Input(value=tags_text(self.tags), placeholder="best, lr-sweep  (commas or spaces)", id="tag-tags")
            yield Label("note")
            yield Input(value=self.note or "", placeholder="free text", id="tag-note", max_length=MAX_NOTE_LEN)
            yield Static("The history's filter finds them: tag:best, or any word of the note.",
                         classes="dialog-help")
            yield Static("", id="tag-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="tag-save")
                yield Button("Cancel", id="tag-cancel")

    def on_mount(self) -> None:
        self.query_one("#tag-tags", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#tag-save")
    def save(self) -> None:
        try:
            tags = merge_tags(split_tags(self.query_one("#tag-tags", Input).value))
            note = clean_note(self.query_one("#tag-note", Input).value)
        except TagError as e:
            self.query_one("#tag-error", Static).update(str(e))
            return
        self.dismiss((tags, note))

    @on(Button.Pressed, "#tag-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
