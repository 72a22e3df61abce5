"""PreflightList: the launch checklist, one line per check (✔ ok, ! warning, ✘ refuses the launch)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.preflight import FAIL, OK, WARN, Check, summary_line

MARKS = {OK: ("✔", "green"), WARN: ("!", "yellow"), FAIL: ("✘", "red")}


def render_checks(checks: list[Check] | None, running: bool = False, note: str | None = None) -> Text:
    t = Text()
    if checks is None:
        t.append("checking…" if running else (note or "not checked yet"), style="dim")
        return t
    # The verdict first: on a short terminal the list below it may be cut off.
    t.append(summary_line(checks) + ("  (re-checking…)" if running else "") + "\n",
             style="bold red" if any(c.status == FAIL for c in checks) else "bold green")
    for i, c in enumerate(checks):
        mark, style = MARKS.get(c.status, ("?", ""))
        t.append(f"{mark} ", style=f"bold {style}")
        t.append(f"{c.name:<8}", style="bold")
        t.append(c.detail + ("\n" if i < len(checks) - 1 else ""), style="" if c.status == OK else style)
    return t


class PreflightList(Static):
    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(render_checks(None), id=id, classes=classes)
        self.checks: list[Check] | None = None
        self.running = False

    def show(self, checks: list[Check] | None, running: bool = False, note: str | None = None) -> None:
        self.checks, self.running = checks, running
        self.update(render_checks(checks, running, note))

    def status_of(self, name: str) -> str | None:
        for c in self.checks or []:
            if c.name == name:
                return c.status
        return None
