"""AttachScreen: runs in progress when the dashboard starts; pick one to watch, or carry on."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


def run_line(run: dict[str, Any], last_step: int | None = None) -> Text:
    t = Text()
    t.append(f"{run['id']}  ", style="bold")
    t.append(f"{run.get('name') or ''}  ")
    t.append(f"{run.get('model') or '?'} on {run.get('devices') or '?'}", style="dim")
    if last_step is not None:
        total = run.get("total_steps")
        t.append(f"  step {last_step}" + (f"/{total}" if total else ""))
    return t


class AttachScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Not now")]

    def __init__(self, runs: list[dict[str, Any]], steps: dict[str, int | None] | None = None):
        super().__init__()
        self.runs = runs
        self.steps = steps or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="attach-box", classes="dialog"):
            n = len(self.runs)
            yield Static(f"{n} run{'s' if n != 1 else ''} in progress. Watch one?", classes="dialog-title")
            yield OptionList(*[Option(run_line(r, self.steps.get(r["id"])), id=r["id"]) for r in self.runs],
                             id="attach-list")
            yield Static("enter: attach   esc: not now (they keep running)", classes="dialog-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
