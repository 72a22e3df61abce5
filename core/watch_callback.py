"""The ``TrainerCallback`` that ``gpt2-tui watch`` puts into a watched script's PaddleNLP Trainer.

Imported only inside that script (paddlenlp is loaded by then). Rank 0 writes our events to the file the
watcher names (``trainer_events.jsonl`` in the run folder); the watcher forwards them into the run's
events.jsonl, so events.jsonl keeps one writer. The step and eval fields come from core.logparse: one
mapping of PaddleNLP's log keys to ours, whether they arrive as a dict here or as a printed line.
A stop request (the run folder's ``stop`` file) makes the Trainer save a checkpoint and stop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from paddlenlp.trainer.trainer_callback import TrainerCallback

from core.events import EventWriter
from core.logparse import LogParser


def _numbers(logs: dict[str, Any]) -> dict[str, float | None]:
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in logs.items()}


class EventsCallback(TrainerCallback):  # type: ignore[misc]
    def __init__(self, path: str):
        self.path = Path(path)
        self.stop_file = self.path.parent / "stop"
        self.parser = LogParser()
        self._writer: EventWriter | None = None

    def _emit(self, state: Any, type: str, **fields: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self._writer is None:
            self._writer = EventWriter(self.path)
        self._writer.emit(type, **fields)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        loader = kwargs.get("train_dataloader")
        try:
            samples = len(loader.dataset) if loader is not None else None
        except TypeError:
            samples = None
        self._emit(state, "start", world_size=getattr(args, "world_size", None), nnodes=None, devices=[],
                   versions={}, total_steps=state.max_steps, samples_per_epoch=samples,
                   num_epochs=getattr(args, "num_train_epochs", None), resumed_from_step=state.global_step,
                   pid=os.getpid())

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kv = _numbers(logs or {})
        if kv.get("loss") is not None:
            self.parser.last_step = state.global_step - 1
            ev = self.parser.step_event({**kv, "global_step": float(state.global_step)})
        elif any(k.startswith("eval_") for k in kv):
            self.parser.last_step = state.global_step
            ev = self.parser.eval_event(kv)
        else:
            return
        self._emit(state, ev.pop("type"), **ev)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        self._emit(state, "checkpoint", step=state.global_step, path=os.path.abspath(path))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.stop_file.exists():
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
