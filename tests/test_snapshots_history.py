"""SVG snapshots of the history table, a run's page, the comparison and the results pane.

Every timestamp in the store is fixed, the clock is injected, the time zone is UTC and run folders are
rewritten to a fixed path, so the pictures do not depend on when or where the tests run.
Update with ``pytest tests/test_snapshots_history.py --snapshot-update`` and review the report first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_tui_history import RUN_IDS, Host, build_store, until
from test_tui_results import RID, build_results_store

from core.store import Store
from tui.screens.compare import CompareScreen
from tui.screens.history import HistoryScreen
from tui.screens.results import ResultsScreen
from tui.screens.run_page import RunPage


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


FIXED_ROOT = "/srv/gpt2-tui/runs"


def fixed_dirs(db: Path) -> None:
    """Run folders (and the commands naming them) as a reader sees them: the same on every machine."""
    store = Store(db)
    root = str(db.parent / "runs")
    for run in store.list_runs(kind=None):
        command = [str(a).replace(root, FIXED_ROOT) for a in run.get("command") or []]
        store.update_run(run["id"], run_dir=f"{FIXED_ROOT}/{run['id']}", command=command)
    store.close()


def still(app: Host) -> Host:
    """No animations: a tab underline caught mid-slide would differ from run to run."""
    app.animation_level = "none"
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    build_store(path).close()
    fixed_dirs(path)
    return path


def settled(attr: str = "loaded") -> Any:
    """run_before: wait for the screen's first load, then for the charts' redraw tick."""

    async def run_before(pilot: Any) -> None:
        await until(pilot, lambda: getattr(pilot.app.screen, attr, False))
        await pilot.pause(0.4)

    return run_before


def history(db: Path) -> Host:
    return Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=False))


def test_history_table(db, snap_compare):
    """Five runs, newest first: running, failed, finished, stopped; durations up to the injected now."""
    assert snap_compare(still(history(db)), terminal_size=(120, 40), run_before=settled())


def test_history_table_small_terminal(db, snap_compare):
    """The same table in 80x24: the table scrolls sideways, the filter bar and footer stay."""
    assert snap_compare(still(history(db)), terminal_size=(80, 24), run_before=settled())


def test_history_marked_sorted_and_filtered(db, snap_compare):
    """Two runs marked, sorted by name A→Z, filtered to 'tiny'; the info line counts them."""

    async def run_before(pilot: Any) -> None:
        await settled()(pilot)
        await pilot.press("space")  # mark still-going (the cursor starts on the newest run)
        await pilot.press("down", "down", "space")  # mark higher-lr
        await pilot.press("s", "s")  # sort column: started -> status -> name
        await pilot.press("slash", *"tiny", "enter")  # filter, then back to the table
        await pilot.pause(0.1)

    assert snap_compare(still(history(db)), terminal_size=(120, 40), run_before=run_before)


def test_history_tags_wide_terminal(db, snap_compare):
    """160x48: the tags column fits beside the others (clipped to its width); the filter picks tag:sweep."""
    store = Store(db)
    store.tag_run(RUN_IDS["baseline"], add=["best", "sweep"], note="the one we ship")
    store.tag_run(RUN_IDS["higher-lr"], add=["sweep", "lr"])
    store.close()

    async def run_before(pilot: Any) -> None:
        await settled()(pilot)
        await pilot.press("slash", *"tag:sweep", "enter")  # filter, then back to the table
        await pilot.pause(0.1)

    assert snap_compare(still(history(db)), terminal_size=(160, 48), run_before=run_before)


def test_run_page_of_a_failed_run(db, snap_compare):
    """A failed run: loss/lr/samples curves from the store, the overview with versions, devices and error."""
    app = Host(db, lambda s: RunPage(RUN_IDS["medium-gpu"], s, refresh_s=0))
    assert snap_compare(still(app), terminal_size=(120, 40), run_before=settled())


def test_run_page_config_tab(db, snap_compare):
    """A finished run's config tab: every setting and the exact command."""

    async def run_before(pilot: Any) -> None:
        await settled()(pilot)
        pilot.app.screen.query_one("#run-tabs").active = "tab-config"
        await pilot.pause(0.1)

    app = Host(db, lambda s: RunPage(RUN_IDS["higher-lr"], s, refresh_s=0))
    assert snap_compare(still(app), terminal_size=(120, 40), run_before=run_before)


def test_compare_two_runs(db, snap_compare):
    """baseline vs higher-lr: overlaid curves, a summary row each, only the settings that differ."""
    app = Host(db, lambda s: CompareScreen([RUN_IDS["baseline"], RUN_IDS["higher-lr"]], s))
    assert snap_compare(still(app), terminal_size=(120, 40), run_before=settled())


def test_results_pane(tmp_path, snap_compare):
    """Checkpoints 20 and 40 with training evals and a launched cloze eval; the best (step 40) starred."""
    db = tmp_path / "runs.db"
    build_results_store(db).close()
    fixed_dirs(db)
    app = Host(db, lambda s: ResultsScreen(RID, s, refresh_s=0))
    assert snap_compare(still(app), terminal_size=(120, 40), run_before=settled())
