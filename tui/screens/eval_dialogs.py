"""The results pane's dialogs: what to evaluate a checkpoint on, and what to do about a repeat."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tui.evaljobs import MODES, EvalRequest
from tui.format import fmt_float
from tui.widgets.eval_table import fmt_when


class EvalDialog(ModalScreen[tuple[str, str] | None]):
    """Mode and file for an evaluation: (mode, eval_path), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, label: str, default_path: str, mode: str = "classify"):
        super().__init__()
        self.label, self.default_path, self.mode = label, default_path, mode

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Evaluate {self.label}", classes="dialog-title")
            yield Select([(m, m) for m in MODES], value=self.mode, allow_blank=False, id="eval-mode")
            yield Static("classify: the fine-tuned head.  cloze: the language-model head scores "
                         "' terrible' / ' great' after '<sentence> It was' (works on a base model).",
                         classes="dialog-help")
            yield Input(value=self.default_path, id="eval-path")
            yield Static("A labelled TSV (sentence<TAB>label, with a header), like SST-2's dev.tsv.",
                         classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Evaluate", variant="primary", id="eval-go")
                yield Button("Cancel", id="eval-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#eval-go")
    def go(self) -> None:
        path = self.query_one("#eval-path", Input).value.strip()
        if path:
            self.dismiss((str(self.query_one("#eval-mode", Select).value), path))

    @on(Button.Pressed, "#eval-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class RepeatDialog(ModalScreen[bool]):
    """This evaluation is stored already: show it, and offer to run it again (True)."""

    BINDINGS = [Binding("escape", "keep", "Keep")]

    def __init__(self, req: EvalRequest, done: dict[str, Any]):
        super().__init__()
        self.req, self.done = req, done

    def compose(self) -> ComposeResult:
        d = self.done
        with Vertical(classes="dialog"):
            yield Label(f"{self.req.label} was already evaluated", classes="dialog-title")
            yield Static(Text(
                f"accuracy {fmt_float(d.get('accuracy'))} (n={d.get('n')}, {d.get('mode')}) on "
                f"{d.get('eval_path')}, {fmt_when(d.get('t'))}.\nThe same checkpoint, file content and mode give "
                "the same result; evaluate again only to re-measure."), id="repeat-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep the result", variant="primary", id="repeat-keep")
                yield Button("Evaluate again", id="repeat-again")

    @on(Button.Pressed, "#repeat-again")
    def again(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#repeat-keep")
    def action_keep(self) -> None:
        self.dismiss(False)
