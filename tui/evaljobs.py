"""Evaluation jobs as the dashboard asks for them: the request, and the door that starts them.

The results pane takes any ``EvalLauncher`` (through ``Services.eval_launcher``); tests pass a fake that
writes canned events instead of starting the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.store import Store

MODES = ("classify", "cloze")


class EvalLauncher(Protocol):
    def prepare_eval(self, store: Store, run: dict[str, Any] | None, runs_root: Path, *, checkpoint: str,
                     mode: str, eval_path: str | None, force: bool) -> tuple[Any, dict[str, Any] | None]: ...

    def spawn(self, store: Store, prep: Any, kind: str = "eval") -> dict[str, Any]: ...


class CoreEvalLauncher:
    """The real thing: core.evaljob.prepare_eval and core.launch.spawn (no paddle in this process)."""

    def prepare_eval(self, store: Store, run: dict[str, Any] | None, runs_root: Path, *, checkpoint: str,
                     mode: str, eval_path: str | None, force: bool) -> tuple[Any, dict[str, Any] | None]:
        from core.evaljob import prepare_eval

        return prepare_eval(store, run, runs_root, checkpoint=checkpoint, mode=mode, eval_path=eval_path,
                            force=force)

    def spawn(self, store: Store, prep: Any, kind: str = "eval") -> dict[str, Any]:
        from core.launch import spawn

        return spawn(store, prep, kind=kind)


@dataclass
class EvalRequest:
    checkpoint: str  # what prepare_eval takes: a step of the run, or a checkpoint folder
    label: str  # how the pane names it: 'step 500'
    mode: str
    eval_path: str
    force: bool = False
