"""History, run page and compare screens in a Pilot app, on a store filled from real event files."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Checkbox, Input, Select, Static

from core.config import RunConfig
from core.events import EventWriter
from core.follow import sync_events
from core.store import Store
from tui.messages import CloneRequested
from tui.navigation import Navigator
from tui.screens.compare import CompareScreen
from tui.screens.dialogs import DeleteDialog, ExportDialog
from tui.screens.history import HistoryScreen
from tui.screens.run_page import RunPage
from tui.services import Services
from tui.widgets.chart import ChartWidget
from tui.widgets.config_diff import ConfigDiff
from tui.widgets.runs_table import RunsTable

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: every timestamp in these stores is fixed
NOW = T0 + 12_000.0
BASE_CONFIG = {
    "model_name_or_path": "gpt2-tiny", "task_name": "sst-2", "data_dir": "sample", "max_seq_length": 64,
    "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64, "learning_rate": 0.003,
    "weight_decay": 0.01, "warmup_ratio": 0.1, "use_amp": False, "seed": 42, "num_train_epochs": 3.0,
    "max_steps": -1, "logging_steps": 1, "save_steps": 20, "eval_steps": 20, "output_dir": "",
    "stop_on_nan": True, "device": "auto", "devices": "cpu:2", "nnodes": 1, "node_rank": 0, "master": "",
    "run_name": "",
}
# id, name, status, created offset, steps done / total, config changes, model, devices, loss scale
RUNS = [
    ("20231114-221320-a1b2", "baseline", "finished", 0, 40, 40, {}, "gpt2-tiny", "cpu:2", 1.0),
    ("20231114-225320-c3d4", "stopped-early", "stopped", 2400, 15, 40, {"seed": 7}, "gpt2-tiny", "cpu:2", 1.1),
    ("20231114-231320-e5f6", "higher-lr", "finished", 3600, 40, 40,
     {"learning_rate": 0.005, "warmup_ratio": 0.2}, "gpt2-tiny", "cpu:2", 0.9),
    ("20231115-001320-a7b8", "medium-gpu", "failed", 7200, 12, 300,
     {"model_name_or_path": "gpt2-medium-en", "data_dir": "glue", "max_seq_length": 128, "devices": "gpu:0,1",
      "learning_rate": 2e-05, "use_amp": True}, "gpt2-medium-en", "gpu:0,1", 1.3),
    ("20231115-011320-c9d0", "still-going", "running", 10800, 25, 100, {"num_train_epochs": 10.0},
     "gpt2-tiny", "cpu:2", 1.2),
]
RUN_IDS = {name: rid for rid, name, *_ in RUNS}
ERROR = ("rank 1 (pid 4242) died first; launcher exit code 1\n--- last lines of workerlog.1 ---\n"
         "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def write_run(store: Store, root: Path, rid: str, name: str, status: str, created: float, steps: int, total: int,
              changes: dict[str, Any], model: str, devices: str, scale: float) -> Path:
    """A run as the trainer leaves it: a row from spawn, then its events.jsonl ingested by sync_events."""
    run_dir = root / rid
    (run_dir / "logs").mkdir(parents=True)
    cfg = {**BASE_CONFIG, **changes, "run_name": name}
    argv = ["python", "-m", "paddle.distributed.launch", "--log_dir", str(run_dir / "logs"), "core/train.py",
            "--run_dir", str(run_dir), "--learning_rate", str(cfg["learning_rate"]), "--run_name", name]
    store.create_run({"id": rid, "kind": "train", "name": name, "status": "running", "created_at": created,
                      "config": cfg, "command": argv, "run_dir": str(run_dir), "output_dir": str(run_dir / "ckpt"),
                      "model": model, "devices": devices, "world_size": 2, "nnodes": 1, "host": "testhost"})
    (run_dir / "logs" / "workerlog.0").write_text("".join(f"[worker 0] step {s} done\n" for s in range(1, steps + 1)))
    clock = Clock(created + 1)
    with EventWriter(run_dir / "events.jsonl", clock=clock) as w:
        w.emit("start", world_size=2, nnodes=1, devices=["gpu:0", "gpu:1"] if "gpu" in devices else ["cpu", "cpu"],
               versions={"python": "3.11.9", "paddle": "3.3.1", "paddlenlp": "2.8.1"}, total_steps=total,
               samples_per_epoch=400)
        w.emit("log", level="info", text=f"training {name}")
        for s in range(1, steps + 1):
            clock.t = created + 1 + 10 * s
            loss = scale * (0.3 + 0.4 * 0.93 ** s) + 0.02 * ((s * 7) % 5 - 2)
            w.emit("step", step=s, epoch=round(3 * s / total, 3), loss=round(loss, 5), lr=cfg["learning_rate"],
                   samples_per_s=40.0 + 10 * scale + (s % 3), tokens_per_s=2560.0, step_time=0.4)
            if s % 20 == 0:
                w.emit("eval", step=s, accuracy=round(0.5 + 0.3 * s / 40 / scale, 4), loss=0.5, n=200)
                w.emit("checkpoint", step=s, path=str(run_dir / "ckpt" / f"checkpoint-{s}"))
        if status in ("finished", "stopped"):
            w.emit("end", status=status, reason="stop requested" if status == "stopped" else "")
        elif status == "failed":
            w.emit("log", level="error", text="rank 1 died")
    sync_events(store, rid)
    if status == "failed":
        store.finish_run(rid, "failed", exit_code=1, error=ERROR)
        store.update_run(rid, ended_at=created + 10 * steps + 30)  # when reconcile noticed, fixed here
    return run_dir


def build_store(db: Path) -> Store:
    store = Store(db)
    root = db.parent / "runs"
    for rid, name, status, offset, steps, total, changes, model, devices, scale in RUNS:
        write_run(store, root, rid, name, status, T0 + offset, steps, total, changes, model, devices, scale)
    return store


class Host(Navigator):
    """A bare app that shows one screen, opens what it asks for, and records clones that bubble up.

    ``make_screen`` takes the host's Services: the real ones around ``db``, on a fixed clock."""

    TITLE = "gpt2-tui"

    def __init__(self, db: Path, make_screen: Any, **services: Any):
        super().__init__(Services.for_store(db, **{"clock": Clock(NOW), **services}))
        self.make_screen = make_screen
        self.clones: list[CloneRequested] = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self.services))

    def on_clone_requested(self, message: CloneRequested) -> None:
        self.clones.append(message)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    build_store(path).close()
    return path


def history_app(db: Path, **kw: Any) -> Host:
    return Host(db, lambda s: HistoryScreen(s, refresh_s=0, reconcile=False, **kw))


async def until(pilot: Any, cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def names(app: App[Any]) -> list[str]:
    table = app.screen.query_one(RunsTable)
    return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]


async def open_history(pilot: Any) -> HistoryScreen:
    screen = pilot.app.screen
    assert isinstance(screen, HistoryScreen)
    await until(pilot, lambda: screen.loaded)
    await pilot.pause()
    return screen


async def delete_dialog_for(pilot: Any, name: str) -> DeleteDialog:
    """Open the history, put the cursor on run ``name``, press d: the delete dialog."""
    await open_history(pilot)
    await cursor_to(pilot, name)
    await pilot.press("d")
    await until(pilot, lambda: isinstance(pilot.app.screen, DeleteDialog))
    return pilot.app.screen


async def cursor_to(pilot: Any, name: str) -> None:
    table = pilot.app.screen.query_one(RunsTable)
    table.move_cursor(row=names(pilot.app).index(name))
    await pilot.pause()


# ---------------------------------------------------------------------------- table
@pytest.mark.anyio
async def test_newest_first_then_sorted_by_key_and_header_click(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        assert names(app) == ["still-going", "medium-gpu", "higher-lr", "stopped-early", "baseline"]
        table = screen.query_one(RunsTable)
        row = table.get_row_at(0)
        assert str(row[1]) == "running" and str(row[5]) == "25/100" and str(row[9]) == "19:59"  # running: start to now
        # s cycles the sort column: started -> status -> name (text sorts A→Z first)
        await pilot.press("s", "s")
        assert screen.sort_key == "name"
        assert names(app) == ["baseline", "higher-lr", "medium-gpu", "still-going", "stopped-early"]
        await pilot.press("S")  # reverse
        assert names(app)[0] == "stopped-early"
        # A click on the 'final loss' header sorts by it (biggest first), a second click flips it.
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:6]) + 2
        await pilot.click(RunsTable, offset=(x, 0))
        await pilot.pause()
        assert screen.sort_key == "final_loss" and screen.descending
        losses = [screen.shown[i]["final_loss"] for i in range(5)]
        assert losses == sorted(losses, reverse=True)
        await pilot.click(RunsTable, offset=(x, 0))
        await pilot.pause()
        assert [r["final_loss"] for r in screen.shown] == sorted(losses)
        assert "▲" in str(table.columns[table.ordered_columns[6].key].label)


@pytest.mark.anyio
async def test_filter_by_text_and_status(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        await pilot.press("slash")
        assert isinstance(screen.focused, Input)
        await pilot.press(*"gpu")  # matches devices gpu:0,1 and the name medium-gpu
        assert names(app) == ["medium-gpu"]
        await pilot.press(*"dn s")  # keys bound on the table (delete, clone, sort) are text in the filter
        assert isinstance(app.screen, HistoryScreen) and not app.clones and screen.sort_key == "started"
        assert screen.query_one(Input).value == "gpudn s" and names(app) == []
        screen.query_one(Input).value = "tiny cpu"  # every word must match
        await pilot.pause()
        assert len(names(app)) == 4 and "medium-gpu" not in names(app)
        await pilot.press("escape")  # back to the table; the filter stays
        assert isinstance(screen.focused, RunsTable)
        screen.query_one(Input).value = ""
        screen.query_one(Select).value = "finished"
        await pilot.pause()
        assert names(app) == ["higher-lr", "baseline"]
        await pilot.press("f")  # next status: failed
        assert screen.query_one(Select).value == "failed" and names(app) == ["medium-gpu"]
        assert "1 of 5 runs" in str(screen.query_one("#history-info", Static).render())


@pytest.mark.anyio
async def test_running_runs_refresh_on_the_timer(db, tmp_path):
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0.1, reconcile=False))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        rid = RUN_IDS["still-going"]
        store = Store(db)
        run_dir = Path(store.get_run(rid)["run_dir"])
        with EventWriter(run_dir / "events.jsonl", clock=Clock(T0 + 11_500)) as w:
            for s in range(26, 31):
                w.emit("step", step=s, loss=0.5, lr=0.003, samples_per_s=50.0)
        sync_events(store, rid)
        await until(pilot, lambda: str(screen.query_one(RunsTable).get_row_at(0)[5]) == "30/100")
        store.close()


@pytest.mark.anyio
async def test_an_idle_history_reads_nothing_until_the_store_changes(db, monkeypatch):
    """No run running and no commit: the timer reads nothing (a 10,000-run table costs seconds a read)."""
    reads: list[float] = []  # every read of run rows from the store, by anyone
    real = Store.table_runs
    monkeypatch.setattr(Store, "table_runs", lambda *a, **k: reads.append(time.monotonic()) or real(*a, **k))
    store = Store(db)
    for r in store.running_runs():  # the fixture has a running run: end it, so the table is idle
        store.finish_run(r["id"], "stopped")
    app = Host(db, lambda s: HistoryScreen(s, refresh_s=0.05, reconcile=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await pilot.pause(0.5)
        idle = len(reads)
        await pilot.pause(0.5)  # ten timer ticks
        assert len(reads) == idle
        store.update_run(RUN_IDS["still-going"], name="renamed")  # another connection commits
        await until(pilot, lambda: len(reads) > idle)
        await until(pilot, lambda: "renamed" in names(app))
    store.close()


# ---------------------------------------------------------------------------- compare, clone
@pytest.mark.anyio
async def test_compare_two_marked_runs_shows_only_changed_fields(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await pilot.press("c")  # nothing marked: refused
        assert isinstance(app.screen, HistoryScreen)
        await cursor_to(pilot, "baseline")
        await pilot.press("space")
        await cursor_to(pilot, "higher-lr")
        await pilot.press("space")
        assert str(app.screen.query_one(RunsTable).get_row_at(names(app).index("baseline"))[0]) == "●"
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: screen.loaded)
        assert [f for f, _ in screen.diff] == ["learning_rate", "warmup_ratio", "run_name"]
        diff = dict(screen.diff)
        assert diff["learning_rate"] == {RUN_IDS["higher-lr"]: 0.005, RUN_IDS["baseline"]: 0.003}
        table = screen.query_one(ConfigDiff)
        assert table.fields == ["learning_rate", "warmup_ratio", "run_name"] and table.row_count == 3
        loss = screen.query_one("#compare-loss", ChartWidget)
        assert sorted(len(loss.series(t)) for t in loss._tracks) == [40, 40]
        acc = screen.query_one("#compare-acc", ChartWidget)
        assert [len(acc.series(t)) for t in acc._tracks] == [2, 2]
        await pilot.press("escape")
        assert isinstance(app.screen, HistoryScreen)


@pytest.mark.anyio
async def test_clone_carries_the_runs_config(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "higher-lr")
        await pilot.press("n")
        await until(pilot, lambda: app.clones)
        msg = app.clones[0]
        assert msg.run_id == RUN_IDS["higher-lr"]
        # Fields newer than the stored config (max_restart, the TrainingArguments ones) take their defaults.
        assert msg.config.to_dict() == {**RunConfig().to_dict(), **BASE_CONFIG, "learning_rate": 0.005,
                                        "warmup_ratio": 0.2, "run_name": "higher-lr", "max_restart": 0}


class ResumeRecorder:
    """Stands in for the app's launcher: resume() is what the real one does, minus starting paddle."""

    def __init__(self):
        self.resumed: list[str] = []

    def resume(self, store: Store, run_id: str) -> dict[str, Any]:
        self.resumed.append(run_id)
        run = store.get_run(run_id)
        assert run is not None
        return {**run, "id": run_id + "-resumed", "resumed_from": "checkpoint", "parent_run": run_id}


@pytest.mark.anyio
async def test_resume_a_stopped_run_opens_its_continuation_and_refuses_a_finished_one(db):
    app = history_app(db)
    app.services.launcher = ResumeRecorder()  # type: ignore[assignment]
    opened: list[dict[str, Any]] = []
    app.open_live = opened.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "baseline")  # finished: nothing to resume
        await pilot.press("u")
        await pilot.pause()
        assert app.services.launcher.resumed == []
        assert any("only a stopped, failed or lost run" in n.message for n in app._notifications)
        await cursor_to(pilot, "stopped-early")
        await pilot.press("u")
        await until(pilot, lambda: opened)
        assert app.services.launcher.resumed == [RUN_IDS["stopped-early"]]
        assert opened[0]["parent_run"] == RUN_IDS["stopped-early"]


# ---------------------------------------------------------------------------- delete
@pytest.mark.anyio
async def test_a_running_run_cannot_be_deleted(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "still-going")
        await pilot.press("d")
        assert isinstance(app.screen, HistoryScreen)  # no confirmation: refused outright
        assert any("running" in n.message for n in app._notifications)
        store = Store(db)
        assert store.get_run(RUN_IDS["still-going"]) is not None


@pytest.mark.anyio
@pytest.mark.parametrize("with_files", [False, True])
async def test_delete_removes_the_row_and_the_folder_only_when_asked(db, with_files):
    app = history_app(db)
    rid = RUN_IDS["baseline"]
    run_dir = db.parent / "runs" / rid
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_history(pilot)
        await cursor_to(pilot, "baseline")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeleteDialog))
        dialog = app.screen
        assert not dialog.query_one(Checkbox).disabled
        if with_files:
            dialog.query_one(Checkbox).value = True
        await pilot.click("#delete-confirm")
        await until(pilot, lambda: "baseline" not in names(app))
        assert isinstance(app.screen, HistoryScreen) and len(screen.rows) == 4
    store = Store(db)
    assert store.get_run(rid) is None and store.metrics(rid) == [] and store.checkpoints(rid) == []
    assert run_dir.exists() is not with_files
    assert (db.parent / "runs" / RUN_IDS["higher-lr"]).exists()


@pytest.mark.anyio
async def test_delete_never_removes_a_folder_outside_the_runs_root(db, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    store = Store(db)
    rid = RUN_IDS["baseline"]
    store.update_run(rid, run_dir=str(outside))
    store.close()
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await delete_dialog_for(pilot, "baseline")
        assert app.screen.query_one(Checkbox).disabled
        app.screen.query_one(Checkbox).value = True  # even forced on, the folder is not removed
        await pilot.click("#delete-confirm")
        await until(pilot, lambda: "baseline" not in names(app))
    assert (outside / "precious.txt").read_text() == "keep me"
    assert Store(db).get_run(rid) is None


@pytest.mark.anyio
async def test_cancelled_delete_changes_nothing(db):
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "baseline")
        await pilot.press("d")
        await pilot.press("escape")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.pause(0.1)
        assert "baseline" in names(app)
    assert Store(db).get_run(RUN_IDS["baseline"]) is not None


# ---------------------------------------------------------------------------- export
@pytest.mark.anyio
async def test_export_a_run_as_csv_and_the_table_as_json(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = history_app(db)
    rid = RUN_IDS["higher-lr"]
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "higher-lr")
        await pilot.press("x")
        assert isinstance(app.screen, ExportDialog)
        assert app.screen.query_one(Input).value == f"./{rid}.csv"
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / f"{rid}.csv").exists())
        await until(pilot, lambda: any("Wrote" in n.message for n in app._notifications))

        await pilot.press("X")
        field = app.screen.query_one(Input)
        field.value = "table.txt"  # not .csv or .json: refused in the dialog
        await pilot.press("enter")
        assert isinstance(app.screen, ExportDialog)
        assert "csv or .json" in str(app.screen.query_one("#export-error", Static).render())
        field.value = str(tmp_path / "table.json")
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "table.json").exists())
    with open(tmp_path / f"{rid}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows if r["kind"] == "step"] == [str(s) for s in range(1, 41)]
    assert [(r["step"], r["accuracy"]) for r in rows if r["kind"] == "eval"] == [("20", "0.6667"), ("40", "0.8333")]
    assert len([r for r in rows if r["kind"] == "checkpoint"]) == 2
    table = json.loads((tmp_path / "table.json").read_text())
    assert [r["name"] for r in table] == ["still-going", "medium-gpu", "higher-lr", "stopped-early", "baseline"]
    assert table[2]["steps"] == 40 and table[2]["best_accuracy"] == 0.8333


# ---------------------------------------------------------------------------- run page
@pytest.mark.anyio
async def test_run_page_shows_curves_config_command_versions_logs_and_error(db):
    app = history_app(db)
    rid = RUN_IDS["medium-gpu"]
    async with app.run_test(size=(120, 40)) as pilot:
        await open_history(pilot)
        await cursor_to(pilot, "medium-gpu")
        await pilot.press("enter")
        page = app.screen
        assert isinstance(page, RunPage) and page.run_id == rid
        await until(pilot, lambda: page.loaded)
        overview = str(page.query_one("#run-overview", Static).render())
        assert "failed" in overview and "exit code 1" in overview and "CUDA out of memory" in overview
        assert "paddle 3.3.1" in overview and "gpu:0, gpu:1" in overview and "12/300" in overview
        config = str(page.query_one("#run-config", Static).render())
        assert "learning_rate" in config and "2e-05" in config
        assert f"--run_dir {db.parent / 'runs' / rid}" in config and "--run_name medium-gpu" in config
        logs = str(page.query_one("#run-log", Static).render())
        assert "training medium-gpu" in logs and "[worker 0] step 12 done" in logs
        loss = page.query_one("#chart-loss", ChartWidget)
        assert len(loss.series("loss")) == 12 and len(loss.series("loss (EMA)")) == 12
        assert len(page.query_one("#chart-lr", ChartWidget).series("learning rate")) == 12
        assert len(page.query_one("#chart-throughput", ChartWidget).series("tokens/s")) == 12
        await pilot.press("n")
        await until(pilot, lambda: app.clones)
        assert app.clones[0].config.model_name_or_path == "gpt2-medium-en"
        await pilot.press("escape")
        assert isinstance(app.screen, HistoryScreen)


@pytest.mark.anyio
async def test_run_page_of_a_running_run_adds_new_steps(db):
    rid = RUN_IDS["still-going"]
    app = Host(db, lambda s: RunPage(rid, s, refresh_s=0.1))
    async with app.run_test(size=(120, 40)) as pilot:
        page = app.screen
        await until(pilot, lambda: page.loaded)
        loss = page.query_one("#chart-loss", ChartWidget)
        assert len(loss.series("loss")) == 25 and list(loss.series("eval accuracy").xs) == [20]
        store = Store(db)
        with EventWriter(db.parent / "runs" / rid / "events.jsonl", clock=Clock(T0 + 11_500)) as w:
            for s in range(26, 31):
                w.emit("step", step=s, loss=0.5, lr=0.003, samples_per_s=50.0)
        sync_events(store, rid)
        await until(pilot, lambda: len(loss.series("loss")) == 30)
        assert len(loss.series("loss (EMA)")) == 30
        store.close()


@pytest.mark.anyio
async def test_a_long_run_page_draws_a_preview_first_then_every_step_then_keeps_up(tmp_path, monkeypatch):
    import tui.screens.run_page as run_page

    monkeypatch.setattr(run_page, "PREVIEW_ABOVE", 500)  # a 1,200-step run is "long" here
    monkeypatch.setattr(run_page, "PREVIEW_POINTS", 100)
    db = tmp_path / "runs.db"
    store = Store(db)
    rid = "20231114-221320-long"
    write_run(store, tmp_path / "runs", rid, "long", "running", T0, 1200, 2000, {}, "gpt2-tiny", "cpu:2", 1.0)
    seen: list[tuple[int, int, str]] = []  # (preview k, loss points, title) after each Loaded
    handler = RunPage.on_run_page_loaded

    def spy(self: RunPage, message: RunPage.Loaded) -> None:
        handler(self, message)
        seen.append((message.data.preview_every, len(self.query_one("#chart-loss", ChartWidget).series("loss")),
                     str(self.query_one("#run-title", Static).render())))

    monkeypatch.setattr(RunPage, "on_run_page_loaded", spy)
    app = Host(db, lambda s: RunPage(rid, s, refresh_s=0.1))
    async with app.run_test(size=(120, 40)) as pilot:
        page = app.screen
        await until(pilot, lambda: page.complete)
        assert seen[0][0] == 12 and seen[0][1] == 101  # ceil(1200 / 100) = 12: steps 1, 13, ... and 1200
        assert "drawn from 1 step in 12; loading all 1,200" in seen[0][2]
        assert seen[1][:2] == (0, 1200), seen  # the full read replaced the preview: no point twice
        assert "loading" not in seen[1][2]
        loss = page.query_one("#chart-loss", ChartWidget)
        assert list(loss.series("loss").xs) == list(range(1, 1201))
        assert len(loss.series("loss (EMA)")) == 1200
        with EventWriter(tmp_path / "runs" / rid / "events.jsonl", clock=Clock(NOW)) as w:
            for s in range(1201, 1206):
                w.emit("step", step=s, loss=0.5, lr=0.003, samples_per_s=50.0)
        sync_events(store, rid)
        await until(pilot, lambda: len(loss.series("loss")) == 1205)  # refreshes read only the new steps
        assert list(loss.series("loss").xs)[-6:] == list(range(1200, 1206))
        assert all(k == 0 for k, _, _ in seen[1:])  # one preview, on the first read only
    store.close()


@pytest.mark.anyio
async def test_compare_draws_long_runs_from_previews_then_in_full(tmp_path, monkeypatch):
    import tui.screens.compare as compare

    monkeypatch.setattr(compare, "PREVIEW_ABOVE", 500)
    monkeypatch.setattr(compare, "PREVIEW_POINTS", 100)
    db = tmp_path / "runs.db"
    store = Store(db)
    write_run(store, tmp_path / "runs", "20231114-221320-long", "long", "finished", T0, 1200, 1200, {},
              "gpt2-tiny", "cpu:2", 1.0)
    write_run(store, tmp_path / "runs", "20231114-231320-short", "short", "finished", T0 + 3600, 40, 40,
              {"seed": 7}, "gpt2-tiny", "cpu:2", 1.1)
    store.close()
    seen: list[tuple[bool, dict[str, int], str]] = []
    handler = CompareScreen.on_compare_screen_loaded

    def spy(self: CompareScreen, message: CompareScreen.Loaded) -> None:
        handler(self, message)
        loss = self.query_one("#compare-loss", ChartWidget)
        seen.append((message.preview, {t: len(loss.series(t)) for t in loss._tracks},
                     str(self.query_one("#compare-title", Static).render())))

    monkeypatch.setattr(CompareScreen, "on_compare_screen_loaded", spy)
    app = Host(db, lambda s: CompareScreen(["20231114-221320-long", "20231114-231320-short"], s))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.complete)
        (p0, lens0, title0), (p1, lens1, title1) = seen
        assert p0 and sorted(lens0.values()) == [40, 101]  # the short run is read in full from the start
        assert "loading every step" in title0
        assert not p1 and sorted(lens1.values()) == [40, 1200]  # replaced, not appended
        assert "loading" not in title1
        assert screen.query_one(ConfigDiff).fields == ["seed", "run_name"]


def add_eval_job(db: Path, parent: str, job: str, status: str) -> Path:
    """An eval job on the parent's checkpoint-20, as core.evaljob records one: a run of kind 'eval' whose
    events carry the accuracy, ingested by sync_events into an evals row of the parent."""
    store = Store(db)
    job_dir = db.parent / "runs" / job
    job_dir.mkdir(parents=True)
    ckpt = str(db.parent / "runs" / parent / "ckpt" / "checkpoint-20")
    store.create_run({"id": job, "kind": "eval", "name": "eval classify checkpoint-20", "status": "running",
                      "created_at": NOW, "run_dir": str(job_dir), "parent_run": parent, "checkpoint": ckpt,
                      "eval_path": "dev.tsv", "eval_sha": "abc123", "mode": "classify", "world_size": 1})
    with EventWriter(job_dir / "events.jsonl", clock=Clock(NOW)) as w:
        w.emit("start", world_size=1, nnodes=1, devices=["cpu"], total_steps=None)
        w.emit("eval", step=20, checkpoint=ckpt, eval_path="dev.tsv", eval_sha="abc123", mode="classify",
               accuracy=0.75, loss=0.5, n=200)
        if status != "running":
            w.emit("end", status=status, reason="")
    sync_events(store, job)
    store.close()
    return job_dir


def test_deleting_a_run_deletes_its_eval_jobs_and_every_eval_of_it(db):
    parent, job = RUN_IDS["baseline"], "20231115-020000-ev01"
    add_eval_job(db, parent, job, "finished")
    store = Store(db)
    assert {e["source"] for e in store.evals(parent)} == {"train", "eval"}
    assert [j["id"] for j in store.eval_jobs(parent)] == [job]
    assert store.delete_run(parent) == [job]
    assert store.get_run(parent) is None and store.get_run(job) is None
    left = store.conn.execute("SELECT COUNT(*) FROM evals WHERE run_id IN (?, ?) OR eval_run_id IN (?, ?)",
                              (parent, job, parent, job)).fetchone()[0]
    assert left == 0
    assert len(store.evals(RUN_IDS["higher-lr"])) == 2  # other runs keep theirs
    store.close()


@pytest.mark.anyio
async def test_delete_dialog_names_the_eval_jobs_and_removes_their_folders_or_refuses_while_one_runs(db):
    parent = RUN_IDS["baseline"]
    done_dir = add_eval_job(db, parent, "20231115-020000-ev01", "finished")
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await delete_dialog_for(pilot, "baseline")
        help_text = " ".join(str(s.render()) for s in app.screen.query(".dialog-help"))
        assert "the 1 evaluation job run on its checkpoints" in help_text
        app.screen.query_one(Checkbox).value = True
        await pilot.click("#delete-confirm")
        await until(pilot, lambda: "baseline" not in names(app))
    assert not done_dir.exists() and not (db.parent / "runs" / parent).exists()
    # A running eval job keeps its parent: the delete is refused with the reason, and nothing is removed.
    parent2 = RUN_IDS["higher-lr"]
    busy_dir = add_eval_job(db, parent2, "20231115-030000-ev02", "running")
    app = history_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await delete_dialog_for(pilot, "higher-lr")
        await pilot.click("#delete-confirm")
        await until(pilot, lambda: any("evaluation of run" in n.message for n in app._notifications))
        msg = next(n.message for n in app._notifications if "evaluation of run" in n.message)
        assert "20231115-030000-ev02" in msg and "let it finish or stop it first" in msg
    store = Store(db)
    assert store.get_run(parent2) is not None and busy_dir.exists()
    store.close()
