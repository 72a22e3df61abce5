"""The compare screen's speed table, with a run of each engine on one config (as the trainers leave them)."""

from __future__ import annotations

import pytest
from test_tui_history import Host, until, write_run

from core.store import Store
from tui.screens.compare import CompareScreen
from tui.widgets.speed_table import SpeedTable

T0 = 1_700_000_000.0


@pytest.fixture
def anyio_backend():
    return "asyncio"


def two_engines(tmp_path):
    db = tmp_path / "runs.db"
    store = Store(db)
    # Same config but the engine; write_run logs samples/s 40 + 10 x scale (+0..2) and a step every 10 s.
    write_run(store, tmp_path / "runs", "20231114-221320-ours", "ours", "finished", T0, 40, 40, {},
              "gpt2-tiny", "cpu:2", 2.0)
    write_run(store, tmp_path / "runs", "20231114-231320-pnlp", "ref", "finished", T0 + 3600, 30, 40,
              {"engine": "paddlenlp"}, "gpt2-tiny", "cpu:2", 0.5)
    store.close()
    return Host(db, lambda s: CompareScreen(["20231114-221320-ours", "20231114-231320-pnlp"], s))


@pytest.mark.anyio
async def test_a_run_of_each_engine_side_by_side(tmp_path):
    app = two_engines(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.complete)
        table = screen.query_one(SpeedTable)
        assert not table.has_class("-empty")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[1] for r in rows] == ["gpt2-tui", "paddlenlp"]
        assert rows[0][2:4] == ["61", "×1.00"] and rows[1][2:4] == ["46", "×0.75"]  # medians 61 and 46
        assert "time to step 30" in str(table.columns["time"].label)  # the last step both reached
        assert rows[0][4] == rows[1][4] == "04:50"  # steps 1 -> 30, 10 s apart
        assert rows[0][6:] == ["0.6500", "0.6500"] and rows[1][6:] == ["0.8000", "0.8000"]  # final, best


@pytest.mark.anyio
async def test_at_24_lines_the_charts_shrink_so_both_speed_rows_show(tmp_path):
    app = two_engines(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.complete)
        await pilot.pause()
        table = screen.query_one(SpeedTable)
        assert screen.has_class("-short")
        assert table.region.height >= 1 + table.row_count  # its header and both rows, none scrolled away
        assert table.region.bottom <= screen.region.bottom - 1  # above the footer
        await pilot.resize_terminal(120, 40)
        await until(pilot, lambda: not screen.has_class("-short"))
