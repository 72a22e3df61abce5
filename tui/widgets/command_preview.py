"""CommandPreview: the exact launch command, shell-quoted so it can be pasted into a terminal."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class CommandPreview(Static):
    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__("", id=id, classes=classes)
        self.command: str | None = None
        self.problem: str | None = None

    def show(self, command: str | None, problem: str | None = None) -> None:
        if (command, problem) == (self.command, self.problem):
            return  # an update re-lays out the screen: skip it when nothing changed
        self.command, self.problem = command, problem
        if command is None:
            self.update(Text(problem or "…", style="red" if problem else "dim"))
        else:
            self.update(Text(command))
