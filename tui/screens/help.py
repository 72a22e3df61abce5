"""HelpScreen: the keys of the screen it was opened from, and where to find the rest."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", key_display="esc")]

    def __init__(self, title: str, keys: list[tuple[str, str]]):
        super().__init__()
        self.title_text = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action")
        for key, description in self.keys:
            table.add_row(key, description)
        with Vertical(id="help-box"):
            yield Static(f"Keys: {self.title_text}", id="help-title")
            yield Static(table, id="help-keys")
            yield Static("ctrl+p opens the command palette: every action by name. Tab moves between panels; "
                         "the mouse works too. Esc closes this.", id="help-hint")
