"""``gpt2-tui import PATH``: another tool's finished run as one of ours.

A source (a PaddleNLP output folder, a VisualDL log folder, a saved run_glue / Trainer log) is read into
an ``Imported``: its events in order (start, steps, evals, checkpoints, end), its configuration and a
fingerprint. ``import_run`` writes those events to ``runs/<id>/events.jsonl`` with core.events'
writer and records the run the way core.launch does, then ingests the file (core.follow): an imported
run is an ordinary finished run, opened, compared and evaluated like any other.

The run id is derived from the source's resolved path and content, so importing it again finds the run
already there. Nothing is half-written: the source is read whole before anything is created, the event
file is written in a temporary folder and renamed into place, and a failed store write removes it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from core.config import ConfigError, RunConfig
from core.events import EventWriter
from core.imports.source import Imported, SourceError, assemble, read_json, sha256_files
from core.records import RunRow
from core.store import Store

KINDS = ("paddlenlp", "visualdl", "log")


def config_from(values: dict[str, Any], source: str) -> dict[str, Any]:
    """The RunConfig fields among ``values`` that RunConfig accepts, typed; the others dropped one by one.

    TrainingArguments and run_glue share most names with RunConfig; a value RunConfig cannot take (an
    unknown strategy, say) is left out rather than stored as something the run did not use.
    """
    names = set(RunConfig.field_names())
    known = {k: v for k, v in values.items() if k in names and v is not None and not isinstance(v, (dict, list))}
    for _ in range(len(known) + 1):
        try:
            cfg = RunConfig.from_dict(known, source=source)
            return {k: getattr(cfg, k) for k in known}  # typed: "0.0001" from a text log is 0.0001
        except ConfigError as e:
            bad = {where.split(":")[-1].strip() for where, _ in e.problems}
            if not bad & set(known):
                return {}
            known = {k: v for k, v in known.items() if k not in bad}
    return known


def read_source(path: str | os.PathLike[str]) -> Imported:
    """Detect what ``path`` is and read it whole; a SourceError says what was looked for."""
    from core.imports import paddlenlp_dir, textlog, vdl

    p = Path(path).expanduser()
    if not p.exists():
        raise SourceError(f"{p}: no such file or folder")
    p = p.resolve()
    if p.is_file():
        if vdl.is_vdl_file(p):
            return vdl.read_vdl(p)
        return textlog.read_log(p)
    if paddlenlp_dir.is_output_dir(p):
        return paddlenlp_dir.read_output_dir(p)
    if vdl.vdl_files(p):
        return vdl.read_vdl(p)
    logs = textlog.log_files(p)
    if logs:
        return textlog.read_log(logs[0])
    raise SourceError(
        f"{p}: nothing to import here. Expected a PaddleNLP output folder (trainer_state.json, or "
        f"checkpoint-N/trainer_state.json), a VisualDL log folder (vdlrecords.*.log), or a saved training log "
        f"(a text file, or a folder holding workerlog.0 / *.log)")


def import_run(store: Store, path: str | os.PathLike[str], runs_root: Path, name: str | None = None,
               overrides: dict[str, Any] | None = None) -> tuple[RunRow, bool]:
    """Import ``path`` as a finished run; returns (the run, True) or (the run imported before, False)."""
    from core.follow import sync_events

    src = read_source(path)
    done = store.get_run(src.run_id)
    if done is not None:
        return done, False
    cfg_values = {**src.config, **(overrides or {})}
    if name:
        cfg_values["run_name"] = name
    cfg_values = config_from(cfg_values, source=str(src.path))
    # Only what the source told: a default filled in (batch 32, gpt2-medium-en) would be a claim about a run
    # we did not see. RunConfig.from_dict reads the missing fields as defaults where a full config is needed.
    cfg = RunConfig.from_dict(cfg_values, source=str(src.path))
    runs_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir = runs_root / src.run_id
    # A folder already there holds these same events (the id is the source's path and content): one left by
    # a run deleted from the store, or a concurrent import of the same source. It is kept, not replaced, so
    # a concurrent import never loses the file it is about to ingest.
    if not (run_dir / "events.jsonl").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{src.run_id}.", dir=runs_root))
        try:
            write_events(tmp / "events.jsonl", src.events)
            (tmp / "config.json").write_text(json.dumps(cfg_values, indent=2))
            (tmp / "source.json").write_text(json.dumps({"kind": src.kind, "path": str(src.path),
                                                         "fingerprint": src.fingerprint}, indent=2))
            os.replace(tmp, run_dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (run_dir / "events.jsonl").is_file():  # not a concurrent import's folder: a real failure
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    row = {
        "id": src.run_id, "kind": "train", "name": cfg.run_name or src.name, "status": "running",
        "created_at": src.start_t(), "config": cfg_values, "command": ["gpt2-tui", "import", str(src.path)],
        "run_dir": str(run_dir), "output_dir": src.output_dir or str(src.path), "model": cfg_values.get("model_name_or_path"),
        "devices": src.devices, "world_size": src.world_size, "nnodes": 1, "host": None,
    }
    try:
        store.create_run(row)
    except sqlite3.IntegrityError:
        done = store.get_run(src.run_id)
        if done is not None:  # the same import, concurrently: its row and folder are the same as ours
            sync_events(store, src.run_id)  # idempotent: whichever process gets there first ingests
            return store.get_run(src.run_id) or done, False
        raise
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        # The file ends with an end event: ingest makes the run finished (or stopped) in the same pass.
        sync_events(store, src.run_id)
    except BaseException:
        with contextlib.suppress(Exception):
            store.delete_run(src.run_id)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    run = store.get_run(src.run_id)
    assert run is not None
    return run, True


def write_events(path: Path, events: list[dict[str, Any]]) -> None:
    """The events with their own times (``t``): the writer's clock reads the event being written."""
    now = {"t": 0.0}
    with EventWriter(path, clock=lambda: now["t"]) as w:
        for ev in events:
            fields = {k: v for k, v in ev.items() if k not in ("type", "t")}
            now["t"] = float(ev["t"])
            w.emit(ev["type"], **fields)


__all__ = ["KINDS", "Imported", "SourceError", "assemble", "config_from", "import_run", "read_json",
           "read_source", "sha256_files", "write_events"]
