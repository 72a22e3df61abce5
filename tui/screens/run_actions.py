"""What can be done to one run from the history screen and from its page: clone, resume, delete, export,
tag, open its results. ``RunActions`` is the screen base both share; every store access runs in a thread
worker with that thread's own Store.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.config import RunConfig
from core.control import DeleteRefused, delete, inside_runs_root
from core.export import export_run
from tui.messages import CloneRequested, LiveRequested, ResultsRequested, RunDeleted, RunTagged
from tui.screens.dialogs import DeleteDialog, ExportDialog
from tui.screens.tag_dialog import TagDialog, TagEdit
from tui.services import Services


class RunActions(Screen[None]):
    """Clone, resume, delete, export, tag and results for one run. Subclasses set ``services``.

    Posts ``CloneRequested``, ``LiveRequested`` (a resumed run), ``ResultsRequested`` (for the app),
    ``RunDeleted`` (to itself, after a delete) and ``RunTagged`` (to itself, after its tags were saved).
    """

    services: Services

    def clone_run(self, run_id: str) -> None:
        self.run_worker(lambda: self._clone(run_id), thread=True, group="run-action", exit_on_error=False)

    def _clone(self, run_id: str) -> None:
        with self.services.store() as store:
            run = store.get_run(run_id)
        if run is None:
            raise DeleteRefused(f"run {run_id} is not in the store any more")
        # Keys of an older schema are dropped, not fatal: the configure screen validates the rest.
        known = set(RunConfig.field_names())
        cfg = RunConfig.from_dict({k: v for k, v in (run.get("config") or {}).items() if k in known})
        self.post_message(CloneRequested(cfg, run_id))

    def resume_run(self, run: dict[str, Any]) -> None:
        """Continue a stopped, failed or lost run from its latest checkpoint, as a new linked run."""
        if run["status"] in ("running", "finished"):
            self.notify(f"Run {run['id']} is {run['status']}: only a stopped, failed or lost run resumes.",
                        severity="warning")
            return
        self.run_worker(lambda: self._resume(run["id"]), thread=True, group="run-action", exit_on_error=False)

    def _resume(self, run_id: str) -> None:
        with self.services.store() as store:
            new = self.services.launcher.resume(store, run_id)
        self.post_message(LiveRequested(new))

    def delete_run_asked(self, run: dict[str, Any]) -> None:
        if run["status"] == "running":
            self.notify(f"Run {run['id']} is running: stop it before deleting it.", severity="warning")
            return
        allowed = inside_runs_root(run.get("run_dir"), self.services.runs_root)

        def done(files: bool | None) -> None:
            if files is not None:
                self.run_worker(lambda: self._delete(run["id"], files), thread=True, group="run-action",
                                exit_on_error=False)

        def ask() -> None:  # the dialog names the eval jobs that go with the run: count them off the UI thread
            with self.services.store() as store:
                jobs = len(store.eval_jobs(run["id"]))
            self.app.call_from_thread(self.app.push_screen, DeleteDialog(
                run["id"], run.get("name") or run["id"], run.get("run_dir"), allowed, jobs), done)

        self.run_worker(ask, thread=True, group="run-action", exit_on_error=False)

    def _delete(self, run_id: str, files: bool) -> None:
        with self.services.store() as store:
            removed = delete(store, run_id, files=files, runs_root=self.services.runs_root)
        self.post_message(RunDeleted(run_id, removed))

    def export_run_asked(self, run_id: str) -> None:
        def done(path: str | None) -> None:
            if path:
                self.run_worker(lambda: self._export_run(run_id, path), thread=True, group="run-action",
                                exit_on_error=False)

        self.app.push_screen(ExportDialog(f"Export run {run_id}", f"./{run_id}.csv"), done)

    def _export_run(self, run_id: str, path: str) -> None:
        with self.services.store() as store:
            run = store.get_run(run_id)
            if run is None:
                raise DeleteRefused(f"run {run_id} is not in the store any more")
            written = export_run(store, run, path)
        self.app.call_from_thread(self.notify, f"Wrote {written}", title="Export")

    def edit_tags_asked(self, run_id: str) -> None:
        """The tag dialog with the run's tags and note as the store has them now (read off the UI thread)."""

        def done(edit: TagEdit | None) -> None:
            if edit is not None:
                self.run_worker(lambda: self._save_tags(run_id, edit), thread=True, group="run-action",
                                exit_on_error=False)

        def ask() -> None:
            with self.services.store() as store:
                run = store.get_run(run_id)
            if run is None:
                raise DeleteRefused(f"run {run_id} is not in the store any more")
            self.app.call_from_thread(self.app.push_screen, TagDialog(
                run_id, run.get("name") or run_id, list(run.get("tags") or []), run.get("note")), done)

        self.run_worker(ask, thread=True, group="run-action", exit_on_error=False)

    def _save_tags(self, run_id: str, edit: TagEdit) -> None:
        tags, note = edit
        with self.services.store() as store:
            run = store.tag_run(run_id, tags=tags, note=note)  # one transaction; TagError is shown as a notice
        if run is None:
            raise DeleteRefused(f"run {run_id} is not in the store any more")
        self.post_message(RunTagged(run_id, list(run.get("tags") or []), run.get("note")))

    def open_results(self, run_id: str) -> None:
        self.post_message(ResultsRequested(run_id))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(str(err) or type(err).__name__, severity="error", markup=False)
            event.stop()  # said here, in the user's words; the app need not say it again
