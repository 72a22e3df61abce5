"""CommandPaste: a box to paste a whole run_glue.py command into; the configure form fills from it.

The text may span lines (shell ``\\`` continuations), so it is a TextArea, not an Input (an Input keeps
only the first line of a paste). Parsing is core.command_line's, shared with ``train --from_command``.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from core.command_line import parse_command
from core.config import RunConfig, parse_bool

_BOOLS = {n for n in RunConfig.field_names() if isinstance(getattr(RunConfig(), n), bool)}


def form_values(text: str) -> tuple[dict[str, Any], list[str]]:
    """(field -> value for the form, what was not mapped). Raises ValueError on unreadable quoting.

    Text values go into the form as pasted, so a wrong one is marked there like a typed one; a checkbox
    cannot hold a wrong word, so a boolean that is not true/false is listed as not mapped instead.
    """
    parsed = parse_command(text)
    values: dict[str, Any] = {}
    unmapped = list(parsed.unmapped)
    for name, raw in parsed.values.items():
        if name in _BOOLS:
            try:
                values[name] = parse_bool(raw)
            except ValueError:
                unmapped.append(f"--{name} {raw} (not true/false)")
        else:
            values[name] = raw
    return values, unmapped


class CommandPaste(ModalScreen[str | None]):
    """Dismisses with the pasted text, or None."""

    DEFAULT_CSS = """
    CommandPaste { align: center middle; }
    CommandPaste #paste-box { width: 100; }
    CommandPaste #paste-input { height: 8; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("ctrl+l", "fill", "Fill the form", priority=True)]

    def compose(self) -> ComposeResult:
        with Vertical(id="paste-box", classes="dialog"):
            yield Static("Paste a run_glue.py command (with or without `python -m paddle.distributed.launch "
                         "--gpus ...` and VAR=value in front):", classes="dialog-title")
            yield TextArea(id="paste-input", soft_wrap=True, show_line_numbers=False)
            yield Static("ctrl+l: fill the form   esc: cancel   (flags we cannot map are listed after)",
                         classes="dialog-hint")

    def action_fill(self) -> None:
        text = self.query_one("#paste-input", TextArea).text
        self.dismiss(text if text.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
