"""What a checkpoint records about the run (pure: no paddle).

``trainer_state.json`` is PaddleNLP's ``TrainerState`` (its ``load_from_json`` does ``cls(**json)``, so
only its own keys may appear), with ``log_history`` entries shaped like its Trainer's logs.
``gpt2tui_state.json`` holds what gpt2-tui itself needs to resume and evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from core import checkpoint_files as files


@dataclasses.dataclass
class RunRecord:
    """The run's history and bests, carried from checkpoint to checkpoint (and across a resume)."""

    log_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_accuracy: float | None = None  # the best dev accuracy seen, at a checkpoint or not
    best_metric: float | None = None  # PaddleNLP's: the best eval_accuracy at a saved checkpoint ...
    best_model_checkpoint: str | None = None  # ... and that checkpoint's folder
    last_eval: tuple[int, float] | None = None  # (step, accuracy) of the latest evaluation

    def logged_step(self, step: int, epoch: float, loss: float, lr: float, runtime: float,
                    samples_per_s: float | None) -> None:
        entry: dict[str, Any] = {"loss": round(loss, 8), "learning_rate": float(f"{lr:.3e}"), "global_step": step,
                                 "interval_runtime": round(runtime, 4)}
        if samples_per_s is not None:
            entry["interval_samples_per_second"] = round(samples_per_s, 4)
            entry["interval_steps_per_second"] = round(1.0 / runtime, 4) if runtime > 0 else None
        self.log_history.append({**entry, "progress_or_epoch": round(epoch, 4), "step": step})

    def evaluated(self, step: int, epoch: float, accuracy: float, loss: float | None, runtime: float,
                  samples_per_s: float | None) -> None:
        if self.best_accuracy is None or accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
        self.last_eval = (step, accuracy)
        self.log_history.append({"eval_accuracy": accuracy, "eval_loss": loss, "eval_runtime": round(runtime, 4),
                                 "eval_samples_per_second": samples_per_s, "progress_or_epoch": round(epoch, 4),
                                 "step": step})

    def saving(self, step: int, folder: Path) -> None:
        """A checkpoint at ``step`` is being saved: it is the best when this step's evaluation beats the rest."""
        if self.last_eval is not None and self.last_eval[0] == step and (
                self.best_metric is None or self.last_eval[1] > self.best_metric):
            self.best_metric = self.last_eval[1]
            self.best_model_checkpoint = str(folder)

    def resumed(self, ours: dict[str, Any], paddlenlp: dict[str, Any], start_step: int) -> None:
        """Continue the record of the checkpoint a run resumes from (entries after it are dropped)."""
        self.best_accuracy = ours.get("best_accuracy")
        history = paddlenlp.get("log_history")
        if isinstance(history, list):
            self.log_history = [e for e in history if isinstance(e, dict) and int(e.get("step", 0)) <= start_step]
        self.best_metric = paddlenlp.get("best_metric")
        self.best_model_checkpoint = paddlenlp.get("best_model_checkpoint")

    def paddlenlp_state(self, global_step: int, epoch: float, max_steps: int, steps_per_epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "global_step": global_step, "max_steps": max_steps,
                "num_train_epochs": math.ceil(max_steps / max(1, steps_per_epoch)), "total_flos": 0,
                "log_history": list(self.log_history), "best_metric": self.best_metric,
                "best_model_checkpoint": self.best_model_checkpoint, "is_local_process_zero": True,
                "is_world_process_zero": True, "trial_name": None, "trial_params": None}


def state_files(record: RunRecord, ours: dict[str, Any], max_steps: int) -> dict[str, dict[str, Any]]:
    """Both state files of a checkpoint; ``ours`` holds global_step, epoch, steps_per_epoch and the rest."""
    nlp = record.paddlenlp_state(ours["global_step"], ours["epoch"], max_steps, ours["steps_per_epoch"])
    return {files.PADDLENLP_STATE: nlp, files.OUR_STATE: {**ours, "best_accuracy": record.best_accuracy}}


def read_paddlenlp_state(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's trainer_state.json when it is PaddleNLP's format (it has a log_history), else {}."""
    try:
        state = json.loads((ckpt / files.PADDLENLP_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and "log_history" in state else {}
