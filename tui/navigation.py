"""Navigation: the one place that builds the history-side screens and the live screen and pushes them.

Screens ask for another screen with a message (tui.messages: ``LiveRequested``, ``ResultsRequested``,
``RunPageRequested``, ``CompareRequested``); the app, a ``Navigator``, answers by building that screen
with its ``Services``. So no screen imports another, and a test can host any screen in a bare
``Navigator`` and still follow where its keys lead.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from tui.messages import CompareRequested, LiveRequested, ResultsRequested, RunPageRequested
from tui.services import Services


class Navigator(App[None]):
    def __init__(self, services: Services):
        super().__init__()
        self.services = services

    # Screens are imported when first opened: the live screen pulls in numpy and the charts, and the
    # history side sqlite-backed tables, none of which the first frame needs.
    def open_live(self, run: dict[str, Any]) -> None:
        from tui.screens.live import LiveScreen

        self.push_screen(LiveScreen(run, self.services))

    def open_results(self, run_id: str) -> None:
        from tui.screens.results import ResultsScreen

        self.push_screen(ResultsScreen(run_id, self.services))

    def open_run_page(self, run_id: str) -> None:
        from tui.screens.run_page import RunPage

        self.push_screen(RunPage(run_id, self.services))

    def open_compare(self, run_ids: list[str]) -> None:
        from tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(run_ids, self.services))

    def open_history(self) -> None:
        from tui.screens.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.services))

    def on_live_requested(self, message: LiveRequested) -> None:
        self.open_live(message.run)

    def on_results_requested(self, message: ResultsRequested) -> None:
        self.open_results(message.run_id)

    def on_run_page_requested(self, message: RunPageRequested) -> None:
        self.open_run_page(message.run_id)

    def on_compare_requested(self, message: CompareRequested) -> None:
        self.open_compare(message.run_ids)
