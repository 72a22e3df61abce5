"""An imported run opens and compares in the dashboard like one of ours (Pilot, no paddle)."""

from __future__ import annotations

from typing import Any

import pytest
from test_import_sources import run_glue_log
from test_tui_history import until
from textual.app import App
from textual.widgets import Static

from core.imports import import_run
from core.store import Store
from tui.screens.compare import CompareScreen
from tui.screens.run_page import RunPage
from tui.widgets.chart import ChartWidget
from tui.widgets.config_diff import ConfigDiff


class Host(App[None]):
    def __init__(self, make_screen: Any):
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def imported(tmp_path):
    store = Store(tmp_path / "runs.db")
    a, _ = import_run(store, run_glue_log(tmp_path / "a.log"), tmp_path / "runs", name="glue-a")
    b, _ = import_run(store, run_glue_log(tmp_path / "b.log", upto=4), tmp_path / "runs", name="glue-b")
    store.close()
    return tmp_path / "runs.db", a["id"], b["id"]


@pytest.mark.anyio
async def test_run_page_of_an_imported_run(imported):
    db, rid, _ = imported
    app = Host(lambda: RunPage(rid, db, refresh_s=0.1))
    async with app.run_test(size=(120, 40)) as pilot:
        page = app.screen
        await until(pilot, lambda: page.loaded)
        overview = str(page.query_one("#run-overview", Static).render())
        assert "finished" in overview and "6/6" in overview
        assert len(page.query_one("#chart-loss", ChartWidget).series("loss")) == 6
        config = str(page.query_one("#run-config", Static).render())
        assert "gpt2-tui import" in config and "learning_rate" in config


@pytest.mark.anyio
async def test_compare_two_imported_runs(imported):
    db, a, b = imported
    app = Host(lambda: CompareScreen([a, b], db))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.complete)
        # Same script, different names: the diff shows the one field that differs.
        assert screen.query_one(ConfigDiff).fields == ["run_name"]
