"""Results: a run's checkpoints with every evaluation of each, and evaluations launched from here.

``e`` on a checkpoint asks for a mode and a labelled file, then queues the evaluation. One thread worker
takes the queue in order: ``prepare_eval`` (a repeat of a stored evaluation is shown, not run, unless
asked again), ``spawn`` (the job runs in its own process group, like training), then it follows the
job's events.jsonl for the progress bar while ingesting them into the store. The accuracy lands in the
store from the job's own events, so it stays there whether or not this screen is still open.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core.store import Store
from tui.compare_logic import ResultRow, default_eval_file, results_rows
from tui.evaljobs import EvalLauncher, EvalRequest
from tui.format import fmt_float
from tui.screens.confirm import ConfirmScreen
from tui.screens.eval_dialogs import EvalDialog, RepeatDialog
from tui.services import Services, as_services
from tui.styles import HISTORY_TCSS
from tui.widgets.eval_table import EvalTable
from tui.widgets.runs_table import STATUS_STYLE

POLL_S = 0.2
# The queue worker blocks on the queue; this bounds how long it outlives a screen that went away
# without its wake-up (on_unmount puts one), at one wake-up every 5 s instead of 5 a second.
QUEUE_WAIT_S = 5.0
# How often a job that has not ended is checked for a dead process (exit.json, supervisor gone).
LIVENESS_S = 1.0


# ---------------------------------------------------------------------------- the screen
class ResultsScreen(Screen[None]):
    """Checkpoints × evaluations of one run. Keys: e evaluate, escape back.

    Posts ``EvalFinished`` (an accuracy landed) and ``EvalFailed``; both bubble to the app.
    """

    CSS_PATH = HISTORY_TCSS
    SUB_TITLE = "results"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    class Loaded(Message):
        def __init__(self, run: dict[str, Any] | None, rows: list[ResultRow], steps: dict[int, str],
                     default_file: str):
            super().__init__()
            self.run, self.rows, self.steps, self.default_file = run, rows, steps, default_file

    class EvalStarted(Message):
        def __init__(self, req: EvalRequest, job_id: str):
            super().__init__()
            self.req, self.job_id = req, job_id

    class EvalProgress(Message):
        def __init__(self, job_id: str, done: int, total: int | None):
            super().__init__()
            self.job_id, self.done, self.total = job_id, done, total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ResultsScreen.EvalProgress) and message.job_id == self.job_id

    class EvalFinished(Message):
        """An evaluation ended and its result is in the store."""

        def __init__(self, req: EvalRequest, job_id: str, result: dict[str, Any]):
            super().__init__()
            self.req, self.job_id, self.result = req, job_id, result

    class EvalFailed(Message):
        """An evaluation could not start, or ended without a result; ``error`` says why."""

        def __init__(self, req: EvalRequest, job_id: str | None, error: str):
            super().__init__()
            self.req, self.job_id, self.error = req, job_id, error

    class EvalRepeat(Message):
        def __init__(self, req: EvalRequest, done: dict[str, Any]):
            super().__init__()
            self.req, self.done = req, done

    def __init__(self, run_id: str, services: Services | str | Path, *, refresh_s: float = 2.0):
        super().__init__()
        self.run_id = run_id
        self.services = as_services(services)
        # What the eval worker uses from its thread.
        self.store_path = self.services.store_path
        self.runs_root = self.services.runs_root
        self.launcher: EvalLauncher = self.services.eval_launcher
        self.refresh_s = refresh_s
        self.run: dict[str, Any] | None = None
        self.default_file = ""
        self.checkpoint_steps: dict[int, str] = {}
        self.loaded = False
        self.pending: list[EvalRequest] = []  # asked for, not yet taken by the worker
        self.current: EvalRequest | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._queue: queue.Queue[EvalRequest | None] = queue.Queue()  # None: wake up, the screen is gone

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"Results of run {self.run_id}", id="results-title", classes="screen-title")
        yield EvalTable(id="results-table")
        with Vertical(id="eval-job"):
            yield Label("No evaluation running. e evaluates the selected checkpoint.", id="eval-job-label")
            # A total, not None: an indeterminate bar animates at 15 Hz even while hidden (1.4 % of a core).
            yield ProgressBar(total=1, show_eta=False, id="eval-progress")
            yield Label("", id="eval-queue")
            yield Static("", id="eval-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(EvalTable).focus()
        self.query_one("#eval-progress").display = False
        self.load()
        self._eval_worker()
        if self.refresh_s:
            self.set_interval(self.refresh_s, self._tick)

    def _tick(self) -> None:
        if self.is_current and self.run is not None and self.run["status"] == "running":
            self.load()

    # ------------------------------------------------------------------ the table
    @work(thread=True, exclusive=True, group="results-load", exit_on_error=False)
    def load(self) -> None:
        with self.services.store() as store:
            run = store.get_run(self.run_id)
            ckpts = store.checkpoints(self.run_id) if run else []
            rows = results_rows(ckpts, store.evals(self.run_id)) if run else []
        steps = {c["step"]: c["path"] for c in ckpts}
        self.post_message(self.Loaded(run, rows, steps, default_eval_file(run) if run else ""))

    def on_results_screen_loaded(self, message: Loaded) -> None:
        self.run, self.default_file, self.checkpoint_steps = message.run, message.default_file, message.steps
        title = Text(f"Results of run {self.run_id}", style="bold")
        if self.run is None:
            title.append("  (not in the store)", style="red")
        else:
            title.append(f"  {self.run.get('name') or ''}  ")
            title.append(self.run["status"], style=STATUS_STYLE.get(self.run["status"], ""))
            title.append(f"  · {len(message.steps)} checkpoint(s)", style="dim")
        self.query_one("#results-title", Static).update(title)
        self.query_one(EvalTable).show(message.rows)
        self.loaded = True

    # ------------------------------------------------------------------ asking
    def action_evaluate(self) -> None:
        row = self.query_one(EvalTable).current()
        if row is None or row.checkpoint is None:
            self.notify("Select a checkpoint: this row is a training eval at a step without one.",
                        severity="warning")
            return
        # A checkpoint of this run by its step (prepare_eval checks it is whole); any other folder by path.
        mine = row.step is not None and self.checkpoint_steps.get(row.step) == row.checkpoint
        spec = str(row.step) if mine else row.checkpoint
        label = f"step {row.step}" if row.step is not None else Path(row.checkpoint).name

        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.enqueue(EvalRequest(spec, label, choice[0], choice[1]))

        self.app.push_screen(EvalDialog(label, self.default_file, row.mode or "classify"), chosen)

    def enqueue(self, req: EvalRequest) -> None:
        self.pending.append(req)
        self._queue.put(req)
        self._show_queue()

    def _show_queue(self) -> None:
        q = self.query_one("#eval-queue", Label)
        q.update(f"{len(self.pending)} queued: " + ", ".join(f"{r.label} ({r.mode})" for r in self.pending)
                 if self.pending else "")

    def _taken(self, req: EvalRequest) -> None:
        if req in self.pending:
            self.pending.remove(req)
        self._show_queue()

    # ------------------------------------------------------------------ the queue worker
    @work(thread=True, exclusive=True, group="results-evals", exit_on_error=False)
    def _eval_worker(self) -> None:
        worker = get_current_worker()
        store: Store | None = None
        try:
            while not worker.is_cancelled:
                try:
                    req = self._queue.get(timeout=QUEUE_WAIT_S)
                except queue.Empty:
                    continue
                if req is None:
                    continue  # is_cancelled says whether to stop
                store = store or Store(self.store_path)
                try:
                    self._run_one(store, req, lambda: worker.is_cancelled)
                except Exception as e:  # a user error (bad file, missing checkpoint) or a launch failure
                    self.post_message(self.EvalFailed(req, None, str(e) or type(e).__name__))
        finally:
            if store is not None:
                store.close()

    def _run_one(self, store: Store, req: EvalRequest, cancelled: Callable[[], bool]) -> None:
        run = store.get_run(self.run_id)
        if run is None:
            raise RuntimeError(f"run {self.run_id} is not in the store any more")
        prep, done = self.launcher.prepare_eval(store, run, self.runs_root, checkpoint=req.checkpoint,
                                                mode=req.mode, eval_path=req.eval_path, force=req.force)
        if prep is None:
            self.post_message(self.EvalRepeat(req, done or {}))
            return
        job = self.launcher.spawn(store, prep, kind="eval")
        self.post_message(self.EvalStarted(req, job["id"]))

        def progress(batches: int, total: int | None) -> None:
            self.post_message(self.EvalProgress(job["id"], batches, total))

        job = follow_job(store, job, progress, cancelled)
        if cancelled():
            return  # the screen went away; the job runs on and its result lands in the store
        extra = getattr(prep, "extra", {}) or {}
        result = store.find_eval(extra.get("checkpoint", ""), extra.get("eval_sha", ""), extra.get("mode", req.mode))
        if job["status"] == "finished" and result is not None and result.get("eval_run_id") == job["id"]:
            self.post_message(self.EvalFinished(req, job["id"], result))
        else:
            error = job.get("error") or (f"the evaluation ended {job['status']} without a result")
            self.post_message(self.EvalFailed(req, job["id"], error))

    # ------------------------------------------------------------------ what the worker says
    def on_results_screen_eval_started(self, message: EvalStarted) -> None:
        self._taken(message.req)
        self.current = message.req
        self.query_one("#eval-job-label", Label).update(
            f"Evaluating {message.req.label} · {message.req.mode} on {Path(message.req.eval_path).name} "
            f"(job {message.job_id})")
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)

    def on_results_screen_eval_progress(self, message: EvalProgress) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.update(total=message.total, progress=message.done)

    def on_results_screen_eval_finished(self, message: EvalFinished) -> None:
        self._taken(message.req)
        self.current = None
        self.last_result = message.result
        r = message.result
        text = (f"{message.req.label}: accuracy {fmt_float(r.get('accuracy'))} (n={r.get('n')}, {r.get('mode')} on "
                f"{Path(str(r.get('eval_path'))).name})")
        self.query_one("#eval-job-label", Label).update(Text(text, style="bold green"))
        self.query_one("#eval-error", Static).update("")
        self.notify(text, title="Evaluation done", markup=False)
        self.load()

    def _hide_bar(self) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = False
        bar.update(total=1, progress=0)  # determinate: no animation timer behind a hidden bar

    def on_unmount(self) -> None:
        self._queue.put(None)  # the queue worker is cancelled with the screen: wake it to see that

    def on_results_screen_eval_failed(self, message: EvalFailed) -> None:
        self._taken(message.req)
        self.current = None
        self.last_error = message.error
        self._hide_bar()
        self.query_one("#eval-job-label", Label).update(
            Text(f"Evaluation of {message.req.label} failed" + (f" (job {message.job_id})" if message.job_id else ""),
                 style="bold red"))
        self.query_one("#eval-error", Static).update(Text(message.error, style="red"))
        self.notify(message.error.splitlines()[0] if message.error else "failed", title="Evaluation failed",
                    severity="error", markup=False)
        self.load()

    def on_results_screen_eval_repeat(self, message: EvalRepeat) -> None:
        self._taken(message.req)
        d = message.done
        self.query_one("#eval-job-label", Label).update(
            f"{message.req.label}: already evaluated, accuracy {fmt_float(d.get('accuracy'))} (n={d.get('n')})")

        def answer(again: bool | None) -> None:
            if again:
                req = message.req
                self.enqueue(EvalRequest(req.checkpoint, req.label, req.mode, req.eval_path, force=True))

        self.app.push_screen(RepeatDialog(message.req, d), answer)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), severity="error", markup=False)
            event.stop()

    # ------------------------------------------------------------------ actions
    def action_back(self) -> None:
        if len(self.app.screen_stack) <= 1:
            return
        if not self.pending:
            self.app.pop_screen()
            return
        # The queue lives with this screen: leaving drops what has not started (the running job goes on).
        n = len(self.pending)

        def answer(yes: bool | None) -> None:
            if yes and self.is_current:
                self.app.pop_screen()

        running = f" The running evaluation ({self.current.label}) goes on." if self.current else ""
        self.app.push_screen(ConfirmScreen(
            f"Leave the results of run {self.run_id}?\n\n{n} queued evaluation{'s' if n != 1 else ''} "
            f"({', '.join(r.label for r in self.pending)}) will not be run.{running}", yes="Leave", no="Stay"),
            answer)

    def action_refresh(self) -> None:
        self.load()


def follow_job(store: Store, job: dict[str, Any], progress: Callable[[int, int | None], None],
               cancelled: Callable[[], bool], poll_s: float = POLL_S) -> dict[str, Any]:
    """Follow an eval job to its end: ingest its events, report batches done; returns its final row.

    ``start`` carries the number of batches (total_steps), a ``step`` comes per batch, then ``eval``
    and ``end``. A job whose process is gone without an ``end`` is settled by reconcile (failed/lost).
    """
    from core.progress import RunProgress
    from core.reconcile import reconcile
    from core.watch import Watcher

    watcher = Watcher(store, job["id"])
    prog = RunProgress()
    last_check = time.monotonic()
    while not cancelled():
        batch = watcher.poll()
        for ev in batch.events:
            prog.update(ev)
        if any(ev["type"] in ("start", "step") for ev in batch.events):
            progress(prog.step, prog.total_steps)
        if prog.end is not None:
            break
        if batch.behind:
            continue
        if time.monotonic() - last_check >= LIVENESS_S:
            last_check = time.monotonic()
            if batch.run["status"] != "running":
                break
            if watcher.exited(batch.run) and reconcile(store, job["id"])["status"] != "running":
                break
        time.sleep(poll_s)
    if cancelled():
        return store.get_run(job["id"]) or job
    return reconcile(store, job["id"])
