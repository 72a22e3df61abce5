"""The results pane: checkpoints × evals, and evaluations launched from it (fake and real evaluator)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_tui_history import BASE_CONFIG, T0, Clock, Host, until, write_run
from textual.widgets import Input, Label, ProgressBar, Static

from core.config import SAMPLE_DATA_DIR, RunConfig
from core.evaljob import prepare_eval
from core.events import EventWriter
from core.follow import sync_events
from core.launch import Prepared, make_run_dir, runs_root_for
from core.store import Store
from tui.screens.confirm import ConfirmScreen
from tui.screens.eval_dialogs import EvalDialog, RepeatDialog
from tui.screens.results import ResultsScreen
from tui.widgets.eval_table import EvalTable

ROOT = Path(__file__).resolve().parent.parent
RID = "20231114-221320-a1b2"
DEV = str(SAMPLE_DATA_DIR / "dev.tsv")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_checkpoint(path: Path) -> None:
    """A folder prepare_eval accepts: weights and tokenizer files (contents do not matter to a fake)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("model_state.pdparams", "config.json", "vocab.json", "merges.txt"):
        (path / name).write_text("{}")


def add_eval_job(store: Store, root: Path, parent: str, ckpt: str, step: int, mode: str, eval_path: str,
                 accuracy: float, t: float, job_id: str) -> None:
    """An evaluation launched earlier, as its job leaves it: a runs row (kind eval) and its events."""
    from core.data import sha256_file

    run_dir = root / job_id
    (run_dir / "logs").mkdir(parents=True)
    store.create_run({"id": job_id, "kind": "eval", "name": f"eval {mode}", "status": "running", "created_at": t,
                      "run_dir": str(run_dir), "parent_run": parent, "checkpoint": ckpt, "eval_path": eval_path,
                      "eval_sha": sha256_file(eval_path), "mode": mode})
    with EventWriter(run_dir / "events.jsonl", clock=Clock(t + 5)) as w:
        w.emit("start", total_steps=5)
        w.emit("eval", step=step, accuracy=accuracy, loss=0.4, n=300, mode=mode)
        w.emit("end", status="finished")
    sync_events(store, job_id)


def build_results_store(db: Path, with_eval_job: bool = True) -> Store:
    """One finished run with checkpoints at steps 20 and 40 (real folders) and two training evals."""
    store = Store(db)
    root = runs_root_for(db)
    run_dir = write_run(store, root, RID, "baseline", "finished", T0, 40, 40, {}, "gpt2-tiny", "cpu:2", 1.0)
    for step in (20, 40):
        make_checkpoint(run_dir / "ckpt" / f"checkpoint-{step}")
    if with_eval_job:
        add_eval_job(store, root, RID, str(run_dir / "ckpt" / "checkpoint-40"), 40, "cloze", DEV, 0.6133,
                     T0 + 900, "20231114-222820-e1e1")
    return store


class FakeEvalLauncher:
    """The real prepare_eval (checks, repeat detection); a spawn that starts no evaluator.

    spawn creates the eval job's row as core.launch.spawn does and writes the events an evaluator
    would: start (total_steps = batches), a step per batch, eval, end. With ``hold`` it writes the
    first half only, and ``release()`` the rest; meanwhile a real ``sleep`` in its own session stands in
    for the job's process group, so the follower's liveness check sees a live job.
    """

    def __init__(self, accuracy: float = 0.8125, batches: int = 4, fail: str | None = None, hold: bool = False):
        self.accuracy, self.batches, self.fail, self.hold = accuracy, batches, fail, hold
        self.prepared: list[dict[str, Any]] = []
        self.spawned: list[str] = []
        self._held: list[tuple[Path, int, dict[str, Any], subprocess.Popen[bytes]]] = []

    def prepare_eval(self, store: Store, run: dict[str, Any] | None, runs_root: Path, **kw: Any) -> Any:
        self.prepared.append(kw)
        return prepare_eval(store, run, runs_root, device="cpu", **kw)

    def spawn(self, store: Store, prep: Prepared, kind: str = "eval") -> dict[str, Any]:
        assert kind == "eval"
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True) if self.hold else None
        store.create_run({"id": prep.run_id, "kind": kind, "name": prep.cfg.run_name, "status": "running",
                          "created_at": time.time() - 1, "run_dir": str(prep.run_dir), "parent_run": prep.parent_run,
                          "pgid": proc.pid if proc else None, "config": prep.cfg.to_dict(), "command": prep.argv,
                          **prep.extra})
        self.spawned.append(prep.run_id)
        w = EventWriter(prep.run_dir / "events.jsonl")
        w.emit("start", total_steps=self.batches, samples_per_epoch=300)
        first = self.batches // 2 if self.hold else self.batches
        for b in range(1, first + 1):
            w.emit("step", step=b)
        if proc is not None:
            self._held.append((prep.run_dir, first, prep.extra, proc))
            w.close()
        else:
            self._finish(w, first)
        run = store.get_run(prep.run_id)
        assert run is not None
        return run

    def _finish(self, w: EventWriter, done: int) -> None:
        if self.fail:
            w.emit("log", level="error", text=self.fail)
            w.emit("end", status="failed", reason=self.fail)
        else:
            for b in range(done + 1, self.batches + 1):
                w.emit("step", step=b)
            w.emit("eval", accuracy=self.accuracy, loss=0.41, n=300)
            w.emit("end", status="finished")
        w.close()

    def release(self) -> None:
        for run_dir, done, _, proc in self._held:
            self._finish(EventWriter(run_dir / "events.jsonl"), done)
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        self._held.clear()


def results_app(db: Path, launcher: Any) -> Host:
    return Host(db, lambda s: ResultsScreen(RID, s, refresh_s=0), eval_launcher=launcher)


async def opened_results(pilot: Any) -> ResultsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ResultsScreen)
    await until(pilot, lambda: screen.loaded)
    await pilot.pause()
    return screen


def table_rows(screen: ResultsScreen) -> list[tuple[str, ...]]:
    t = screen.query_one(EvalTable)
    return [tuple(str(c) for c in t.get_row_at(i)) for i in range(t.row_count)]


async def select_step(pilot: Any, screen: ResultsScreen, step: int) -> None:
    t = screen.query_one(EvalTable)
    t.move_cursor(row=next(i for i, r in enumerate(t.results) if r.step == step and r.checkpoint))
    await pilot.pause()


async def ask_eval(pilot: Any, mode: str = "classify", path: str | None = None) -> None:
    await pilot.press("e")
    dialog = pilot.app.screen
    assert isinstance(dialog, EvalDialog)
    assert dialog.query_one(Input).value == DEV  # the run's dev.tsv by default
    dialog.query_one("#eval-mode").value = mode
    if path is not None:
        dialog.query_one(Input).value = path
    await pilot.click("#eval-go")


def label_text(screen: ResultsScreen) -> str:
    return str(screen.query_one("#eval-job-label", Label).render())


# ---------------------------------------------------------------------------- the table
@pytest.mark.anyio
async def test_checkpoints_with_every_eval_and_the_best_starred(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db).close()
    app = results_app(db, FakeEvalLauncher())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        rows = table_rows(screen)
        # best, step, checkpoint, mode, file, accuracy, n, when, source
        assert [(r[0], r[1], r[2], r[3], r[5], r[8]) for r in rows] == [
            ("", "20", "checkpoint-20", "classify", "0.6500", "train"),
            ("★", "40", "checkpoint-40", "classify", "0.8000", "train"),
            ("", "40", "checkpoint-40", "cloze", "0.6133", "eval"),
        ]
        assert rows[2][4] == "dev.tsv" and rows[2][6] == "300"
        assert "2 checkpoint(s)" in str(screen.query_one("#results-title", Static).render())


# ---------------------------------------------------------------------------- launching
@pytest.mark.anyio
async def test_evaluate_a_checkpoint_shows_progress_then_the_accuracy(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db).close()
    fake = FakeEvalLauncher(hold=True)
    app = results_app(db, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 20)
        await ask_eval(pilot)
        assert isinstance(app.screen, ResultsScreen)
        bar = screen.query_one("#eval-progress", ProgressBar)
        await until(pilot, lambda: bar.total == 4 and bar.progress == 2)  # half the batches written
        assert bar.display and "Evaluating step 20" in label_text(screen)
        assert fake.prepared[0] == {"checkpoint": "20", "mode": "classify", "eval_path": DEV, "force": False}
        fake.release()
        await until(pilot, lambda: screen.last_result is not None)
        assert bar.progress == 4
        assert "accuracy 0.8125" in label_text(screen)
        await until(pilot, lambda: any(r[5] == "0.8125" for r in table_rows(screen)))
        row = next(r for r in table_rows(screen) if r[5] == "0.8125")
        assert row[1:4] == ("20", "checkpoint-20", "classify") and row[8] == "eval"
    store = Store(db)
    evals = [e for e in store.evals(RID) if e["source"] == "eval" and e["mode"] == "classify"]
    assert len(evals) == 1 and evals[0]["accuracy"] == 0.8125 and evals[0]["eval_run_id"] == fake.spawned[0]
    job = store.get_run(fake.spawned[0])
    assert job["kind"] == "eval" and job["parent_run"] == RID and job["status"] == "finished"


@pytest.mark.anyio
async def test_a_repeat_shows_the_stored_result_and_can_run_again(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db).close()
    fake = FakeEvalLauncher(accuracy=0.7)
    app = results_app(db, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 40)
        await ask_eval(pilot, mode="cloze")  # the stored cloze eval of checkpoint-40: a repeat
        await until(pilot, lambda: isinstance(app.screen, RepeatDialog))
        assert fake.spawned == []
        assert "0.6133" in str(app.screen.query_one("#repeat-text", Static).render())
        await pilot.click("#repeat-again")
        await until(pilot, lambda: screen.last_result is not None)
        assert fake.prepared[-1]["force"] is True and len(fake.spawned) == 1
        await until(pilot, lambda: any(r[3] == "cloze" and r[5] == "0.7000" for r in table_rows(screen)))
        assert not any(r[5] == "0.6133" for r in table_rows(screen))  # replaced, not duplicated


@pytest.mark.anyio
async def test_queued_evals_run_one_after_another(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db, with_eval_job=False).close()
    fake = FakeEvalLauncher(hold=True)
    app = results_app(db, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 20)
        await ask_eval(pilot)
        await until(pilot, lambda: len(fake.spawned) == 1)
        await select_step(pilot, screen, 40)
        await ask_eval(pilot, mode="cloze")
        await pilot.pause(0.3)
        assert len(fake.spawned) == 1  # the second waits for the first
        assert "1 queued: step 40 (cloze)" in str(screen.query_one("#eval-queue", Label).render())
        await pilot.press("down", "up")  # the UI is not blocked meanwhile
        fake.release()
        await until(pilot, lambda: len(fake.spawned) == 2)
        fake.release()
        await until(pilot, lambda: sum(r[8] == "eval" for r in table_rows(screen)) == 2)
        assert [p["mode"] for p in fake.prepared] == ["classify", "cloze"]
        assert str(screen.query_one("#eval-queue", Label).render()) == ""


@pytest.mark.anyio
async def test_a_failed_eval_shows_its_error_and_stores_no_result(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db, with_eval_job=False).close()
    fake = FakeEvalLauncher(fail="evaluator crashed: RuntimeError: shape mismatch in score.weight")
    app = results_app(db, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 20)
        await ask_eval(pilot)
        await until(pilot, lambda: screen.last_error is not None)
        assert "shape mismatch" in str(screen.query_one("#eval-error", Static).render())
        assert "failed" in label_text(screen)
        assert not screen.query_one("#eval-progress").display
    store = Store(db)
    assert [e for e in store.evals(RID) if e["source"] == "eval"] == []
    assert store.get_run(fake.spawned[0])["status"] == "failed"


@pytest.mark.anyio
async def test_a_bad_eval_file_is_refused_before_anything_starts(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db, with_eval_job=False).close()
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t7\n")
    fake = FakeEvalLauncher()
    app = results_app(db, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 20)
        await ask_eval(pilot, path=str(bad))
        await until(pilot, lambda: screen.last_error is not None)
        assert "bad.tsv" in screen.last_error and fake.spawned == []


# ---------------------------------------------------------------------------- the real evaluator
@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.skipif(not (ROOT / "core" / "evaluate.py").exists(), reason="core/evaluate.py is not there yet")
async def test_the_real_evaluator_runs_and_its_accuracy_shows(tmp_path):
    db = tmp_path / "runs.db"
    store = Store(db)
    root = runs_root_for(db)
    ckpt = tmp_path / "checkpoint-1"
    shutil.copytree(ROOT / "assets" / "gpt2-tiny", ckpt)
    run_dir = make_run_dir(root, RID)
    cfg = RunConfig.from_dict({**BASE_CONFIG, "run_name": "tiny"})
    store.create_run({"id": RID, "kind": "train", "name": "tiny", "status": "running", "created_at": T0,
                      "config": cfg.to_dict(), "command": [sys.executable], "run_dir": str(run_dir),
                      "model": "gpt2-tiny", "devices": "cpu:1"})
    with EventWriter(run_dir / "events.jsonl", clock=Clock(T0 + 1)) as w:
        w.emit("start", total_steps=1)
        w.emit("checkpoint", step=1, path=str(ckpt))
        w.emit("end", status="finished")
    sync_events(store, RID)
    store.close()
    paddle_before = "paddle" in sys.modules  # other tests in this process may have imported it already
    app = Host(db, lambda s: ResultsScreen(RID, s, refresh_s=0))  # the real launcher: a subprocess, no paddle here
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await select_step(pilot, screen, 1)
        await ask_eval(pilot)
        await until(pilot, lambda: screen.last_result is not None or screen.last_error is not None, timeout=240)
        assert screen.last_error is None, screen.last_error
        acc = screen.last_result["accuracy"]
        assert 0.0 <= acc <= 1.0 and screen.last_result["n"] == 300
        await until(pilot, lambda: any(r[8] == "eval" and r[5] == f"{acc:.4f}" for r in table_rows(screen)))
    assert ("paddle" in sys.modules) == paddle_before  # the eval ran in its own process


@pytest.mark.anyio
async def test_leaving_with_queued_evals_asks_first_and_says_what_is_dropped(tmp_path):
    db = tmp_path / "runs.db"
    build_results_store(db, with_eval_job=False).close()
    fake = FakeEvalLauncher(hold=True)
    app = results_app(db, fake)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await opened_results(pilot)
            await select_step(pilot, screen, 20)
            await ask_eval(pilot)
            await until(pilot, lambda: len(fake.spawned) == 1 and screen.current is not None)
            await select_step(pilot, screen, 40)
            await ask_eval(pilot, mode="cloze")
            await until(pilot, lambda: len(screen.pending) == 1)
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = str(app.screen.query_one("#confirm-question", Static).render())
            assert "1 queued evaluation (step 40) will not be run" in question
            assert "The running evaluation (step 20) goes on" in question
            await pilot.press("n")  # stay: nothing changes
            await until(pilot, lambda: app.screen is screen)
            assert len(screen.pending) == 1
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, ResultsScreen)))
            await pilot.pause(0.3)
            assert len(fake.spawned) == 1  # the queued one was not started
    finally:
        fake.release()
