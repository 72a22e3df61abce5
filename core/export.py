"""Runs as records, tables, CSV and JSON: what ``gpt2-tui show/runs/export`` print and the dashboard saves.

One place for the shapes, so a file saved from the history screen and one written by
``gpt2-tui export`` are the same file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.events import finite_or_text
from core.records import Summary
from core.store import Store
from core.store.runs import tag_list

FORMATS = ("csv", "json")
# The runs table, column by column (CSV header order). ``started`` is when the run was launched.
TABLE_FIELDS = ("id", "name", "status", "model", "devices", "steps", "total_steps", "final_loss", "best_accuracy",
                "mean_samples_per_s", "duration_s", "created_at", "started_at", "ended_at", "tags", "note")
RUN_CSV_HEADER = ("run_id", "kind", "step", "epoch", "loss", "lr", "samples_per_s", "tokens_per_s", "accuracy",
                  "n", "path")
RECORD_KEYS = ("id", "name", "kind", "status", "config", "command", "exit_code", "error", "run_dir", "output_dir",
               "model", "devices", "world_size", "nnodes", "total_steps", "created_at", "started_at", "ended_at",
               "last_event_at", "versions", "device_info", "bad_lines", "resumed_from", "parent_run", "pgid", "tags", "note")


class ExportError(ValueError):
    """The export cannot be written where asked; the message says why."""


class LazyJson(Mapping[str, Any]):
    """A JSON object column (a run's config) decoded on first use.

    The runs table carries every run's config for the filter's setting terms (``lr>1e-4``), but most reads
    never look at it: decoding 10,000 configs was a third of `runs --json` (issue 14). Two are equal when
    their texts are, so the history's "did anything change" comparison decodes nothing either.
    """

    __slots__ = ("text", "_value")

    def __init__(self, text: str | None):
        self.text = text
        self._value: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._value is None:
            try:
                v = json.loads(self.text) if self.text else {}
            except ValueError:
                v = {}
            self._value = v if isinstance(v, dict) else {}
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyJson):
            return self.text == other.text
        if isinstance(other, Mapping):
            return self._decoded() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyJson({self.text!r})"


def _json_default(obj: Any) -> Any:
    return dict(obj) if isinstance(obj, LazyJson) else str(obj)


def run_record(store: Store, run: Mapping[str, Any]) -> dict[str, Any]:
    """One run with its steps, evals, checkpoints and summary (what `show --json` prints)."""
    rid = run["id"]
    steps = [{"step": m["step"], "epoch": m["epoch"], "loss": m["loss"], "lr": m["lr"],
              "samples_per_s": m["samples_per_s"], "tokens_per_s": m["tokens_per_s"]}
             for m in store.metrics(rid)]
    evals = [{"step": e["step"], "accuracy": e["accuracy"], "loss": e["loss"], "n": e["n"], "mode": e["mode"],
              "source": e["source"], "checkpoint": e["checkpoint"], "eval_path": e["eval_path"]}
             for e in store.evals(rid)]
    ckpts = [{"step": c["step"], "path": c["path"]} for c in store.checkpoints(rid)]
    rec = {k: run.get(k) for k in RECORD_KEYS}
    rec.update(steps=steps, evals=evals, checkpoints=ckpts, summary=store.summary(rid), scaling=store.scaling(rid),
               ranks=store.rank_health(rid), fast_path=fast_path_of(run))
    return rec


def fast_path_of(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fast path the trainer chose (and any step-downs), from the run's latest ``start`` event."""
    found: dict[str, Any] | None = None
    path = Path(str(run.get("run_dir") or "")) / "events.jsonl"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"type":"start"' in line:
                    with contextlib.suppress(ValueError):
                        fp = json.loads(line).get("fast_path")
                        found = fp if isinstance(fp, dict) else found
    except OSError:
        return None
    return found


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON: a loss of inf (SQLite keeps it) becomes "inf", never the non-standard Infinity."""
    try:  # the common case, no infinity anywhere: no copy of a 10,000-run table to find that out
        return json.dumps(obj, default=_json_default, indent=indent, allow_nan=False)
    except ValueError:
        return json.dumps(finite_or_text(obj), default=_json_default, indent=indent)


def run_csv(rec: dict[str, Any]) -> str:
    """A run record as one CSV: a row per logged step, per eval and per checkpoint."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(RUN_CSV_HEADER)
    for m in rec["steps"]:
        w.writerow([rec["id"], "step", m["step"], m["epoch"], m["loss"], m["lr"], m["samples_per_s"],
                    m["tokens_per_s"], "", "", ""])
    for e in rec["evals"]:
        w.writerow([rec["id"], "eval", e["step"], "", e["loss"], "", "", "", e["accuracy"], e["n"],
                    e["checkpoint"] or ""])
    for c in rec["checkpoints"]:
        w.writerow([rec["id"], "checkpoint", c["step"], "", "", "", "", "", "", "", c["path"]])
    return buf.getvalue()


def run_text(rec: dict[str, Any], fmt: str) -> str:
    return to_json(rec, indent=2) + "\n" if fmt == "json" else run_csv(rec)


def duration_s(run: Mapping[str, Any], now: float | None = None) -> float | None:
    """Wall time from start to end; a running run counts up to ``now``."""
    start = run.get("started_at") or run.get("created_at")
    if start is None:
        return None
    end = run.get("ended_at")
    if end is None:
        end = (time.time() if now is None else now) if run.get("status") == "running" else run.get("last_event_at")
    return None if end is None else max(0.0, float(end) - float(start))


def table_row(store: Store, run: Mapping[str, Any], now: float | None = None,
              summary: Summary | None = None) -> dict[str, Any]:
    s = summary or store.summary(run["id"])
    return {"id": run["id"], "name": run["name"], "status": run["status"], "model": run["model"],
            "devices": run["devices"], "steps": s["last_step"], "total_steps": run["total_steps"],
            "final_loss": s["final_loss"], "best_accuracy": s["best_accuracy"],
            "mean_samples_per_s": s["mean_samples_per_s"], "duration_s": duration_s(run, now),
            "created_at": run["created_at"], "started_at": run["started_at"], "ended_at": run["ended_at"],
            "run_dir": run["run_dir"], "tags": tag_list(run.get("tags")), "note": run.get("note"),
            "config": cfg if isinstance(cfg := run.get("config"), Mapping) else LazyJson(cfg)}


def public_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs table as `runs --json` prints it: without the configs (`show --json` has a run's), which
    the filter reads and the table never shows; printing 10,000 would cost what decoding them did."""
    out = []
    for r in rows:
        r = dict(r)  # a C-level copy: 3 ms for 10,000 rows where a comprehension over the keys took 18 ms
        r.pop("config", None)
        out.append(r)
    return out


def runs_table(store: Store, status: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """Training runs, newest first, one summary row each (what `runs --json` prints)."""
    return [row_of(t, now) for t in store.table_runs(status=status)]


def row_of(t: tuple[Any, ...], now: float | None = None) -> dict[str, Any]:
    """A runs-table row from a ``Store.table_runs`` tuple (the same dict as ``table_row``)."""
    (_, rid, name, status, model, devices, total_steps, created_at, started_at, ended_at, last_event_at, run_dir,
     _, last_step, sps_sum, sps_n, final_loss, tags, note, config, best) = t
    start = started_at or created_at  # duration_s, inline: this runs 10,000 times for `runs --json`
    end = ended_at
    if end is None:
        end = (time.time() if now is None else now) if status == "running" else last_event_at
    duration = None if start is None or end is None else max(0.0, float(end) - float(start))
    return {"id": rid, "name": name, "status": status, "model": model, "devices": devices, "steps": last_step,
            "total_steps": total_steps, "final_loss": final_loss, "best_accuracy": best,
            "mean_samples_per_s": sps_sum / sps_n if sps_n else None, "duration_s": duration,
            "created_at": created_at, "started_at": started_at, "ended_at": ended_at, "run_dir": run_dir,
            "tags": tag_list(tags), "note": note, "config": LazyJson(config)}


def table_text(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return to_json([{k: r.get(k) for k in TABLE_FIELDS} for r in rows], indent=2) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else ", ".join(r[k]) if k == "tags" else r.get(k) for k in TABLE_FIELDS})
    return buf.getvalue()


def format_for(path: str | os.PathLike[str], default: str | None = None) -> str:
    """csv or json from the file's suffix; ``default`` when it has neither."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if default in FORMATS:
        return default
    raise ExportError(f"{path}: name the file .csv or .json")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write whole or not at all: a temp file in the same folder, renamed into place. Returns the path."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ExportError(f"{p} is a folder; give a file name")
    if not p.parent.is_dir():
        raise ExportError(f"{p.parent}: no such folder")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p.resolve()


def export_run(store: Store, run: Mapping[str, Any], path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    return write_text(path, run_text(run_record(store, run), fmt or format_for(path)))


def export_table(rows: list[dict[str, Any]], path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    return write_text(path, table_text(rows, fmt or format_for(path)))
