"""A PaddleNLP ``Trainer`` output folder: trainer_state.json, checkpoint-N/, *_results.json, training_args.bin.

``trainer_state.json``'s ``log_history`` holds one dict per logged step (``loss``, ``learning_rate``,
``global_step``, ``interval_runtime``, ``interval_samples_per_second``, ``progress_or_epoch``) and one per
evaluation (``eval_*``), with no wall-clock times: each event's time is rebuilt from the runtimes, ending
when trainer_state.json was written. A folder whose training stopped early has no top-level
trainer_state.json; the newest ``checkpoint-N/trainer_state.json`` tells up to that checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.imports.pickled import load_plain
from core.imports.source import Imported, SourceError, assemble, read_json, sha256_files
from core.logparse import LogParser

STATE = "trainer_state.json"
RESULTS = ("all_results.json", "eval_results.json")
ARGS = "training_args.bin"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(p: Path) -> list[tuple[int, Path]]:
    out = []
    for d in p.iterdir():
        m = CHECKPOINT.match(d.name)
        if m and d.is_dir():
            out.append((int(m.group(1)), d))
    return sorted(out)


def is_output_dir(p: Path) -> bool:
    return (p / STATE).is_file() or any((d / STATE).is_file() for _, d in checkpoints(p))


def _numbers(entry: dict[str, Any]) -> dict[str, float | None]:
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            for k, v in entry.items()}


def read_output_dir(p: Path) -> Imported:
    ckpts = checkpoints(p)
    state_path = p / STATE
    if not state_path.is_file():
        state_path = next(d / STATE for _, d in reversed(ckpts) if (d / STATE).is_file())
    state = read_json(state_path)
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise SourceError(f"{state_path}: no log_history list; not a PaddleNLP trainer state")
    results: dict[str, Any] = {}
    result_files = [p / n for n in RESULTS if (p / n).is_file()]
    for f in result_files:
        r = read_json(f)
        if not isinstance(r, dict):
            raise SourceError(f"{f}: expected a JSON object of metrics")
        results.update(r)
    notes: list[str] = []
    args: dict[str, Any] = {}
    args_path = next((d / ARGS for d in [p, *(d for _, d in reversed(ckpts))] if (d / ARGS).is_file()), None)
    if args_path is not None:
        try:
            loaded = load_plain(args_path.read_bytes())
            args = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as e:
            # Optional: the metrics are all in trainer_state.json. Said in the run's log, not fatal.
            notes.append(f"{args_path}: not read ({e}); the configuration is what trainer_state.json tells")

    parser = LogParser()
    train_runtime = next((h["train_runtime"] for h in history if isinstance(h, dict)
                          and isinstance(h.get("train_runtime"), (int, float))), None)
    intervals = sum(h.get("interval_runtime") or 0 for h in history if isinstance(h, dict)
                    and isinstance(h.get("interval_runtime"), (int, float)))
    t_end = state_path.stat().st_mtime
    clock = t_end - float(train_runtime or intervals or 0.0)
    body: list[dict[str, Any]] = []
    skipped = 0
    for h in history:
        if not isinstance(h, dict):
            skipped += 1
            continue
        kv = _numbers(h)
        if kv.get("loss") is not None and ("global_step" in kv or "learning_rate" in kv):
            # interval_runtime runs from the previous logged step: it includes any eval and save between.
            clock += kv.get("interval_runtime") or 0.0
            body.append({**parser.step_event(kv), "t": clock})
        elif any(k.startswith("eval_") for k in kv) and ("eval_loss" in kv or "eval_accuracy" in kv):
            body.append({**parser.eval_event(kv), "t": clock + (kv.get("eval_runtime") or 0.0)})
        elif not any(k.startswith(("train_", "test_")) for k in kv):
            skipped += 1
    if skipped:
        notes.append(f"{state_path}: {skipped} log_history entr{'y' if skipped == 1 else 'ies'} not understood")
    global_step = state.get("global_step") if isinstance(state.get("global_step"), int) else parser.last_step
    final_eval = {k: v for k, v in results.items() if k.startswith("eval_")}
    if final_eval and not any(e["type"] == "eval" and e["step"] == global_step for e in body):
        ev = parser.eval_event({**_numbers(final_eval), "step": float(global_step)})
        body.append({**ev, "t": max([clock, *(e["t"] for e in body)])})
    for step, d in ckpts:
        if step > global_step:
            continue  # saved by a later run into the same folder than the state read here
        # After the events of its step: PaddleNLP evaluates, then saves.
        i = max((n + 1 for n, e in enumerate(body) if (e.get("step") or 0) <= step), default=0)
        t = body[i - 1]["t"] if i else clock
        body.insert(i, {"type": "checkpoint", "step": step, "path": str(d), "t": t})
    body += [{"type": "log", "level": "warning", "text": n, "t": t_end} for n in notes]

    max_steps = state.get("max_steps") if isinstance(state.get("max_steps"), int) else None
    finished = train_runtime is not None or (max_steps is not None and max_steps > 0 and global_step >= max_steps)
    end = {"status": "finished", "reason": "imported"} if finished else {
        "status": "stopped", "reason": f"imported from a folder whose training stopped at step {global_step}"
                                       + (f" of {max_steps}" if max_steps else "")}
    start = {"t": clock, "world_size": None, "nnodes": 1, "devices": [], "versions": {},
             "total_steps": max_steps, "samples_per_epoch": None,
             "num_epochs": state.get("num_train_epochs"), "resumed_from_step": None}
    config = dict(args)
    model_dir = p if (p / "model_state.pdparams").is_file() else (ckpts[-1][1] if ckpts else None)
    if model_dir is not None:
        # The model the run made is a local PaddleNLP model folder: what `eval` and a clone start from.
        config["model_name_or_path"] = str(model_dir)
    # Where the source wrote is not where a clone of it should: run_name, output_dir and logging_dir stay out.
    for k in ("run_name", "output_dir", "logging_dir"):
        config.pop(k, None)
    run_name = args.get("run_name")
    name = run_name if isinstance(run_name, str) and run_name and run_name != args.get("output_dir") else p.name
    fp_files = [f for f in [state_path, *result_files, args_path] if f is not None]
    fingerprint = sha256_files(fp_files) + ":" + ",".join(str(s) for s, _ in ckpts)
    device = args.get("device")
    return Imported(kind="paddlenlp", path=p, fingerprint=fingerprint, events=assemble(start, body, end),
                    config=config, name=f"{name} (PaddleNLP)", output_dir=str(p),
                    devices=device if isinstance(device, str) else None)
