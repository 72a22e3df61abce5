"""AlertsPanel: the run's alerts, newest first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.alerts import Alert
from tui.format import update_text

ICONS = {"nan": "✘ NaN", "stall": "⏸ stall", "throughput": "↓ slow"}


def render_alerts(alerts: list[Alert]) -> Text:
    t = Text()
    if not alerts:
        t.append("no alerts", style="dim")
        return t
    for a in reversed(alerts[-50:]):
        style = "bold red" if a.level == "error" else "bold yellow"
        t.append(f"{ICONS.get(a.kind, a.kind):<8}", style=style)
        t.append(a.message + "\n")
    t.rstrip()
    return t


class AlertsPanel(Static, can_focus=True):
    ALLOW_MAXIMIZE = True

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(render_alerts([]), id=id, classes=classes)
        self.alerts: list[Alert] = []

    def add(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)
        update_text(self, render_alerts(self.alerts))
        self.set_class(bool(self.alerts), "-has-alerts")
