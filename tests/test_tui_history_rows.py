"""The history's table with more runs than fit on screen: the rows drawn are the right ones after
scrolling, sorting, filtering and marking, only the rows drawn get cells built, and a mark rebuilds no
row (issue 14: every sort, mark and keystroke rebuilt all 10,000 rows). Counts, never timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_runs_reader import add_run
from test_tui_history import Host, until
from textual.widgets import Input, Static

from core.store import Store
from tui.screens.history import HistoryScreen
from tui.widgets.runs_table import RunsTable

N = 120  # runs; 30 lines of terminal show about 25


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    store = Store(tmp_path / "runs.db")
    for i in range(N):
        add_run(store, i, "failed" if i % 10 == 3 else "finished", steps=1 + i % 7)
    store.close()
    return tmp_path / "runs.db"


def drawn(table: RunsTable) -> list[str]:
    """The text of the table's lines on screen now (header first), as the terminal would show them."""
    return ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]


def drawn_names(table: RunsTable) -> list[str]:
    return [line.split()[1] + " " + line.split()[2] for line in drawn(table)[1:] if line.strip()]


async def settle(pilot: Any) -> None:
    await pilot.wait_for_scheduled_animations()  # a scroll to the cursor may be animated
    await pilot.pause()


async def opened(pilot: Any) -> tuple[HistoryScreen, RunsTable]:
    screen = pilot.app.screen
    await until(pilot, lambda: screen.loaded)
    await pilot.pause()
    return screen, screen.query_one(RunsTable)


@pytest.mark.anyio
async def test_only_the_rows_in_view_are_built_and_scrolling_draws_the_right_ones(db):
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await opened(pilot)
        assert table.row_count == N
        assert drawn_names(table)[:3] == [f"run {N - 1}", f"run {N - 2}", f"run {N - 3}"]  # newest first
        assert table.cells_made < 40  # the rows on screen, not all 120
        await pilot.press("ctrl+end")  # the cursor to the last row: the table scrolls to the oldest runs
        await settle(pilot)
        names = drawn_names(table)
        assert names[-1] == "run 0" and table.current_id() == screen.shown[-1]["id"]
        assert names == [f"run {i}" for i in range(len(names) - 1, -1, -1)]
        assert table.cells_made < 80


@pytest.mark.anyio
async def test_a_sort_keeps_the_cursor_on_its_run_and_draws_the_new_order(db):
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await opened(pilot)
        table.move_cursor(row=40)
        await pilot.pause()
        rid = table.current_id()
        await pilot.press("s", "s")  # started -> status -> name, A→Z
        await settle(pilot)
        assert screen.sort_key == "name" and table.current_id() == rid
        everyone = sorted(f"run {i}" for i in range(N))
        assert [str(table.get_row_at(i)[2]) for i in range(N)] == everyone
        line = drawn(table)[1 + table.cursor_row - round(table.scroll_y)]  # the cursor's line is on screen
        assert screen.by_id[rid]["name"] in line
        await pilot.press("ctrl+home")
        await settle(pilot)
        assert drawn_names(table)[:3] == everyone[:3]


@pytest.mark.anyio
async def test_filtering_draws_only_matching_rows_and_clearing_brings_all_back(db):
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await opened(pilot)
        await pilot.press("slash", "f", "a", "i", "l")  # status failed: runs 3, 13, ..., 113
        await pilot.pause()
        want = [f"run {i}" for i in range(N - 1, -1, -1) if i % 10 == 3]
        assert table.row_count == len(want) and drawn_names(table) == want
        assert "12 of 120 runs" in str(screen.query_one("#history-info", Static).render())
        screen.query_one(Input).value = ""
        await pilot.pause()
        assert table.row_count == N and drawn_names(table)[:2] == [f"run {N - 1}", f"run {N - 2}"]


@pytest.mark.anyio
async def test_a_mark_redraws_its_cell_only_and_survives_a_refresh(db):
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0.05, reconcile=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await opened(pilot)
        table.move_cursor(row=2)
        await pilot.pause()
        made = table.cells_made
        await pilot.press("space")
        await pilot.pause()
        rid = table.current_id()
        assert screen.marked == {rid} and drawn(table)[3].lstrip().startswith("●")
        assert table.cells_made == made  # no row rebuilt for a mark
        other = Store(db)
        other.update_run(screen.shown[0]["id"], name="renamed")  # another process commits: a refresh
        await until(pilot, lambda: "renamed" in drawn(table)[1])
        assert screen.marked == {rid} and table.current_id() == rid and drawn(table)[3].lstrip().startswith("●")
        other.close()


class DyingLauncher:
    """Reconcile finds every running run's processes gone, slowly (a busy box): it becomes lost."""

    def __init__(self, delay: float = 0.2):
        self.delay = delay
        self.kill = True
        self.inside = 0
        self.most_inside = 0
        self.calls = 0

    def reconcile(self, store: Store, run_id: str) -> dict[str, Any]:
        import time

        self.calls += 1
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        time.sleep(self.delay)
        if self.kill:
            store.finish_run(run_id, "lost")
        self.inside -= 1
        return {}


@pytest.mark.anyio
async def test_the_table_is_painted_before_running_runs_are_reconciled_and_reads_never_overlap(tmp_path):
    from test_tui_history import RUN_IDS, build_store

    db = tmp_path / "runs.db"
    build_store(db).close()  # five runs, one of them running
    launcher = DyingLauncher()
    loaded: list[dict[str, str]] = []

    def hook(message: Any) -> None:
        if isinstance(message, HistoryScreen.RowsLoaded):
            loaded.append({r["id"]: r["status"] for r in message.changes.rows})

    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=True), launcher=launcher)
    async with app.run_test(size=(120, 30), message_hook=hook) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.loaded)
        assert loaded[0][RUN_IDS["still-going"]] == "running"  # painted with what the store said
        await until(pilot, lambda: screen.by_id[RUN_IDS["still-going"]]["status"] == "lost")
        launcher.kill = False  # from now on a running run stays running, and each reconcile takes 0.2 s
        other = Store(db)
        other.update_run(RUN_IDS["baseline"], status="running")
        other.close()
        await until(pilot, lambda: not screen._reading)
        calls = launcher.calls
        for _ in range(5):  # ctrl+r pressed again and again while a read (and its reconcile) runs
            screen.load(full=True)
        await until(pilot, lambda: not screen._reading and screen._again is None)
        assert launcher.calls - calls == 2  # the five asks made one read, then one more after it
        assert screen.by_id[RUN_IDS["baseline"]]["status"] == "running"
    assert launcher.most_inside == 1  # one read at a time: never two reconciles at once


@pytest.mark.anyio
async def test_a_running_runs_new_steps_are_drawn_in_its_line(tmp_path):
    """The refresh of a running run redraws its row in place (no new order, no other row rebuilt)."""
    store = Store(tmp_path / "runs.db")
    for i in range(40):
        add_run(store, i, "running" if i == 38 else "finished", steps=3)
    rid = "20231114-000038-abcd"
    app = Host(tmp_path / "runs.db", lambda s: HistoryScreen(s, refresh_s=0.05, reconcile=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await opened(pilot)
        assert "3/3" in drawn(table)[2] and "run 38" in drawn(table)[2]
        step = {"v": 1, "seq": 4, "t": 1.7e9, "type": "step", "step": 4, "epoch": 0.2, "loss": 0.5, "lr": 1e-3,
                "samples_per_s": 100.0, "tokens_per_s": 1000.0, "step_time": 0.1}
        store.ingest(rid, 1, 2, [step])  # the follower, in another connection
        await until(pilot, lambda: "4/3" in drawn(table)[2])
        assert "run 38" in drawn(table)[2] and "run 39" in drawn(table)[1]  # same places
    store.close()
