"""Tags and notes in the dashboard: `t` on the history and on a run's page, the tags column, the filter."""

from __future__ import annotations

from typing import Any

import pytest
from test_tui_history import RUN_IDS, Host, cursor_to, history_app, names, open_history, until
from textual.widgets import Input, Static

from core.store import Store
from tui.screens.run_page import RunPage
from tui.screens.tag_dialog import TagDialog
from tui.widgets.runs_table import RunsTable


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def db(tmp_path):
    from test_tui_history import build_store

    path = tmp_path / "runs.db"
    build_store(path).close()
    return path


def info(app: Any) -> str:
    return str(app.screen.query_one("#history-info", Static).render())


async def tag_dialog(pilot: Any) -> TagDialog:
    await pilot.press("t")
    await until(pilot, lambda: isinstance(pilot.app.screen, TagDialog))
    await pilot.pause()
    return pilot.app.screen


@pytest.mark.anyio
async def test_t_saves_a_tag_that_the_filter_then_finds(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        await cursor_to(pilot, "baseline")
        dialog = await tag_dialog(pilot)
        assert dialog.focused is dialog.query_one("#tag-tags", Input) and dialog.focused.value == ""
        await pilot.press(*"foo, keep")  # typed into the focused tags field
        dialog.query_one("#tag-note", Input).value = "the one we ship"
        await pilot.press("enter")
        await until(pilot, lambda: any(r["tags"] for r in screen.rows))  # saved in a worker, then reloaded
        assert Store(db).find_run("baseline")["tags"] == ["foo", "keep"]
        assert Store(db).find_run("baseline")["note"] == "the one we ship"
        await pilot.press("slash", *"tag:foo")
        assert names(app) == ["baseline"] and "1 of 5 runs" in info(app)
        screen.query_one(Input).value = "ship"  # a word of the note
        await pilot.pause()
        assert names(app) == ["baseline"]
        screen.query_one(Input).value = "-tag:foo lr>4e-3"  # settings from the runs' configs
        await pilot.pause()
        assert names(app) == ["higher-lr"]


@pytest.mark.anyio
async def test_a_bad_filter_shows_its_message_and_hides_nothing(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        screen.query_one(Input).value = "lr>abc"
        await pilot.pause()
        assert len(names(app)) == 5
        assert "filter: 'lr>abc': 'abc' is not a number" in info(app)
        screen.query_one(Input).value = "foo:1x"
        await pilot.pause()
        assert "unknown key 'foo'" in info(app) and len(names(app)) == 5
        screen.query_one(Input).value = "status:failed"
        await pilot.pause()
        assert names(app) == ["medium-gpu"] and "1 of 5 runs" in info(app)


@pytest.mark.anyio
async def test_a_refused_tag_is_named_in_the_dialog_and_escape_writes_nothing(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        dialog = await tag_dialog(pilot)
        dialog.query_one("#tag-tags", Input).value = "good -bad"
        await pilot.press("enter")
        assert isinstance(app.screen, TagDialog)
        assert "starts with '-'" in str(dialog.query_one("#tag-error", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TagDialog))
        assert all(r["tags"] == [] for r in Store(db).list_runs())


@pytest.mark.anyio
@pytest.mark.parametrize(("size", "shown"), [((80, 24), False), ((120, 40), False), ((160, 48), True)])
async def test_the_tags_column_shows_when_it_fits(db, size, shown):
    Store(db).tag_run(RUN_IDS["baseline"], add=["best", "a-long-tag-name"])
    app = history_app(db)
    async with app.run_test(size=size) as pilot:
        await open_history(pilot)
        table = app.screen.query_one(RunsTable)
        keys = [c.key.value for c in table.ordered_columns]
        assert ("tags" in keys) is shown
        if shown:
            row = table.get_row(RUN_IDS["baseline"])
            assert str(row[keys.index("tags")]) == "best, a-long-…"  # narrow: clipped
            await pilot.resize_terminal(100, 30)  # smaller: the column goes
            await until(pilot, lambda: "tags" not in [c.key.value for c in table.ordered_columns])


def test_help_on_the_history_lists_t_and_explains_the_filter(db):
    from tui.app import Gpt2App
    from tui.screens.history import HistoryScreen
    from tui.testing import fake_services

    services = fake_services(db)
    keys = Gpt2App(services=services).screen_keys(HistoryScreen(services))  # what ? / f1 shows there
    assert ("t", "Tags") in keys
    notes = " ".join(text for _, text in keys)
    assert all(s in notes for s in ("tag:best", "lr>1e-4", "-term", "any run setting"))


@pytest.mark.anyio
async def test_t_on_a_run_page_saves_and_shows_the_note(db):
    app = Host(db, lambda s: RunPage(RUN_IDS["higher-lr"], s, refresh_s=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: getattr(app.screen, "loaded", False))
        page = app.screen
        dialog = await tag_dialog(pilot)
        dialog.query_one("#tag-tags", Input).value = "lr-sweep"
        dialog.query_one("#tag-note", Input).value = "diverged after warm-up"
        await pilot.click("#tag-save")
        await until(pilot, lambda: "diverged after warm-up" in str(page.query_one("#run-overview", Static).render()))
        assert "lr-sweep" in str(page.query_one("#run-overview", Static).render())
        assert Store(db).find_run("higher-lr")["tags"] == ["lr-sweep"]
