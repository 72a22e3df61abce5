"""LogPanel: the tail of rank 0's worker log and the error lines of the other ranks."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Log

MAX_LINES = 2000


class LogPanel(Vertical):
    ALLOW_MAXIMIZE = True

    def compose(self) -> ComposeResult:
        yield Label("workerlog.0", classes="log-title")
        yield Log(max_lines=MAX_LINES, id="rank0-log")
        yield Label("errors from other ranks", classes="log-title", id="errors-title")
        yield Log(max_lines=500, id="rank-errors")

    def on_mount(self) -> None:
        self.query_one("#errors-title").display = False
        self.query_one("#rank-errors").display = False

    def add(self, lines: list[str], errors: list[str]) -> None:
        if lines:
            self.query_one("#rank0-log", Log).write_lines(lines)
        if errors:
            self.query_one("#errors-title").display = True
            log = self.query_one("#rank-errors", Log)
            log.display = True
            log.write_lines(errors)

    @property
    def rank0_lines(self) -> list[str]:
        return list(self.query_one("#rank0-log", Log).lines)

    @property
    def error_lines(self) -> list[str]:
        return list(self.query_one("#rank-errors", Log).lines)
