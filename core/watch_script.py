"""``python -m core.watch_script RUN_DIR --cwd DIR -- COMMAND...``: any training command, recorded as a run.

Started by ``gpt2-tui watch`` under core.supervise (own process group, exit.json), like our trainer.
It runs COMMAND with its output going to the run's launcher.log (a file: the command never waits on
a reader) and is the only writer of the run's events.jsonl:

- a script that uses PaddleNLP's Trainer gets core.watch_callback's callback (core/watch_hook's
  sitecustomize.py, first on its PYTHONPATH); the callback's events (trainer_events.jsonl) are forwarded;
- otherwise step, eval and checkpoint events come from the output's lines (core.logparse); from the first
  callback event on, the lines only give log events, so nothing is counted twice;
- the end: ``finished`` on exit code 0, ``stopped`` when a stop was asked for, else ``failed`` with the
  exit status and the output's last lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.events import EventWriter, read_from
from core.logparse import LogParser

PKG_DIR = Path(__file__).resolve().parent
HOOK_DIR = PKG_DIR / "watch_hook"
POLL_S = 0.2
TAIL_LINES = 20


def child_env(run_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the log as they are printed, not at exit
    env["GPT2_TUI_WATCH_EVENTS"] = str(run_dir / "trainer_events.jsonl")
    # The hook first (its sitecustomize), then our package (the callback imports core.*), then the user's.
    parts = [str(HOOK_DIR), str(PKG_DIR.parent)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


class Forwarder:
    """Turns the command's output file and the callback's event file into events.jsonl, incrementally."""

    def __init__(self, run_dir: Path, log_path: Path, log_offset: int):
        self.writer = EventWriter(run_dir / "events.jsonl")
        self.log_path = log_path
        self.log_offset = log_offset
        self.cb_path = run_dir / "trainer_events.jsonl"
        self.cb_offset = 0
        self.parser = LogParser()
        self.callback_seen = False
        self.tail: list[str] = []
        self.start: dict[str, Any] = {}

    def emit_start(self, **fields: Any) -> None:
        """A start event, again when a later source knows more (total steps): ingest keeps the first start
        time and takes the newest totals, as for an elastic restart."""
        merged = {**self.start, **{k: v for k, v in fields.items() if v is not None}}
        if merged != self.start or not self.start:
            self.start = merged
            self.writer.emit("start", **merged)

    def poll(self, final: bool = False) -> None:
        chunk = read_from(self.cb_path, self.cb_offset)
        self.cb_offset = chunk.offset
        for ev in chunk.events:
            self.callback_seen = True
            if ev["type"] == "start":
                self.emit_start(**{k: v for k, v in ev.items() if k not in ("v", "seq", "t", "type", "pid")})
                continue
            if ev["type"] == "end":
                continue  # ours, at exit: the script may go on after training
            self.writer.emit(ev["type"], **{k: v for k, v in ev.items() if k not in ("v", "seq", "t", "type")})
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.log_offset)
                data = fh.read(16 << 20)
        except OSError:
            return
        end = len(data) if final else data.rfind(b"\n") + 1
        if end == 0 and len(data) >= 16 << 20:
            end = len(data)  # 16 MB without a newline (a progress bar redrawn with \r): never wait forever
        self.log_offset += end
        for raw in data[:end].splitlines():
            line = raw.decode("utf-8", "replace")
            if line.strip():
                self.tail = (self.tail + [line])[-TAIL_LINES:]
            parsed = self.parser.feed(line)
            if parsed is None or (self.callback_seen and parsed["type"] != "log"):
                continue
            self.writer.emit(parsed.pop("type"), **parsed)
        if not self.callback_seen:
            self.emit_start(total_steps=self.parser.total_steps, samples_per_epoch=self.parser.samples_per_epoch)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m core.watch_script")
    ap.add_argument("run_dir")
    ap.add_argument("--cwd", default=None)
    # Everything after the first "--" is the command, flags and all.
    split = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:split])
    cmd = argv[split + 1:]
    if not cmd:
        ap.error("no command after --")
    run_dir = Path(a.run_dir).resolve()
    log_path = run_dir / "launcher.log"
    stop_signal: dict[str, Any] = {}
    # SIGTERM reaches the whole group (gpt2-tui stop): the command ends on its own; this records how.
    signal.signal(signal.SIGTERM, lambda sig, _f: stop_signal.setdefault("sig", sig))
    signal.signal(signal.SIGINT, lambda sig, _f: stop_signal.setdefault("sig", sig))
    fwd = Forwarder(run_dir, log_path, log_path.stat().st_size if log_path.exists() else 0)
    fwd.emit_start(world_size=None, nnodes=1, devices=[], versions={}, total_steps=None, samples_per_epoch=None,
                   num_epochs=None, resumed_from_step=None, pid=os.getpid(), command=cmd)
    try:
        proc = subprocess.Popen(cmd, cwd=a.cwd or None, env=child_env(run_dir), stdin=subprocess.DEVNULL)
    except OSError as e:
        fwd.writer.emit("end", status="failed", reason=f"could not start {cmd[0]!r}: {e.strerror or e}")
        return 127
    while True:
        try:
            code = proc.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            fwd.poll()
    fwd.poll(final=True)
    asked = (run_dir / "stop").exists() or "sig" in stop_signal
    if code == 0:
        status, reason = ("stopped", "stop requested") if asked and (run_dir / "stop").exists() else ("finished", "")
    elif asked:
        status, reason = "stopped", f"stopped (exit status {code})"
    else:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        status, reason = "failed", f"the command failed ({how})" + (
            "\n--- last lines of its output ---\n" + "\n".join(fwd.tail) if fwd.tail else "")
    fwd.writer.emit("end", status=status, reason=reason)
    fwd.writer.close()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
