"""A saved training log: PaddleNLP Trainer's output, a run_glue log, paddle's ``workerlog.0``.

Read with core.logparse. Times come from the Trainer logger's ``[YYYY-mm-dd HH:MM:SS,mmm]`` prefixes;
a log without them (run_glue's print lines) gets times rebuilt backwards from the file's modification
time by each step's measured speed. Every line that is not a metric is kept as a log event (debug
lines, the Trainer's argument banner, are left out: they would bury the rest).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from core.imports.source import Imported, SourceError, assemble, sha256_files
from core.logparse import LogParser

ENUM_REPR = re.compile(r"^[A-Z]\w*\.([A-Z][A-Z0-9_]*)$")
MAX_LOG_LINES = 5000
SUFFIXES = (".log", ".txt", ".out")


def log_files(p: Path) -> list[Path]:
    """The log to read in a folder: paddle's workerlog.0 (rank 0 prints the metrics), else the only *.log."""
    # paddle.distributed.launch writes log/ by default; gpt2-tui runs keep theirs in logs/.
    for cand in (p / "workerlog.0", p / "log" / "workerlog.0", p / "logs" / "workerlog.0"):
        if cand.is_file():
            return [cand]
    found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUFFIXES)
    return found if len(found) == 1 else []


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        base, _, ms = text.partition(",")
        return time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + (int(ms) / 1000.0 if ms.isdigit() else 0.0)
    except ValueError:
        return None


def read_log(f: Path, batch_size: int | None = None) -> Imported:
    try:
        raw = f.read_bytes()
    except OSError as err:
        raise SourceError(f"{f}: cannot read it ({err.strerror or err})") from None
    if b"\0" in raw[:4096]:
        raise SourceError(f"{f}: a binary file, not a text log")
    parser = LogParser(batch_size=batch_size)
    body: list[dict[str, Any]] = []
    stamped = False
    kept_logs = dropped = 0
    for line in raw.decode("utf-8", "replace").splitlines():
        ev = parser.feed(line)
        if ev is None:
            continue
        t = _stamp(parser.last_time)
        stamped = stamped or t is not None
        if ev["type"] == "log":
            if ev["level"] == "debug":
                continue
            if kept_logs >= MAX_LOG_LINES:
                dropped += 1
                continue
            kept_logs += 1
        body.append({**ev, "t": t})
    if not any(e["type"] in ("step", "eval") for e in body):
        raise SourceError(f"{f}: no training steps or evaluations in it (looked for PaddleNLP Trainer's "
                          f"'loss: ..., global_step: ...' lines and run_glue's 'global step N/M, ...' lines)")
    if stamped:
        prev = next(e["t"] for e in body if e["t"] is not None)  # lines before the first stamp take its time
        for e in body:
            prev = e["t"] = e["t"] if e["t"] is not None else prev
    else:
        # Each logged step took step_time times the steps since the one before; the last line was written
        # when the file was last modified.
        clock, prev_step = 0.0, 0
        for e in body:
            if e["type"] == "step":
                clock += (e.get("step_time") or 0.0) * max(0, e["step"] - prev_step)
                prev_step = e["step"]
            e["t"] = clock
        for e in body:
            e["t"] += f.stat().st_mtime - clock
    if dropped:
        body.append({"type": "log", "level": "warning", "t": body[-1]["t"],
                     "text": f"import kept the first {MAX_LOG_LINES} log lines of {f}; {dropped} more left out"})
    start = {"t": body[0]["t"], "world_size": None, "nnodes": 1, "devices": [], "versions": {},
             "total_steps": parser.total_steps, "samples_per_epoch": parser.samples_per_epoch, "num_epochs": None,
             "resumed_from_step": None}
    end = ({"t": body[-1]["t"], "status": "finished", "reason": "imported"} if parser.completed else
           {"t": body[-1]["t"], "status": "stopped",
            "reason": f"imported from a log that ends at step {parser.last_step}"
                      + (f" of {parser.total_steps}" if parser.total_steps else "")})
    # The banner prints enum members as their repr: IntervalStrategy.STEPS is "steps".
    config: dict[str, Any] = {k: (ENUM_REPR.sub(lambda m: m.group(1).lower(), v)) for k, v in parser.args.items()}
    if parser.model_dir and "model_name_or_path" not in config:
        config["model_name_or_path"] = parser.model_dir
    for k in ("run_name", "output_dir", "logging_dir"):
        config.pop(k, None)
    return Imported(kind="log", path=f, fingerprint=sha256_files([f]), events=assemble(start, body, end),
                    config=config, name=f"{f.stem} (log)", output_dir=str(f.parent))
