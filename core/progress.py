"""Plain-text progress for the headless CLI (core/ uses no Rich): a bar with loss, samples/s and ETA."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from core.events import as_float


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@dataclass
class RunProgress:
    """What a run's events add up to for a progress line: the one fold every follower shares.

    The CLI shows ``line()``, the results pane's evaluation jobs ``step`` of ``total_steps`` batches, and
    the live screen's ``tui.runstate.RunState`` extends it with chart series and rank health. Rates and
    the ETA are measured in event time, so a follower that attaches late (or a fake clock) cannot skew them.
    """

    total_steps: int | None = None
    world_size: int | None = None
    samples_per_epoch: int | None = None
    num_epochs: float | None = None
    devices: list[Any] = field(default_factory=list)
    started_t: float | None = None
    step: int = 0
    steps_logged: int = 0
    first_step: int | None = None
    first_step_t: float | None = None
    last_step_t: float | None = None
    epoch: float = 0.0
    loss: float | None = None
    lr: float | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    step_time: float | None = None
    best_accuracy: float | None = None
    last_eval: Mapping[str, Any] | None = None
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    end: Mapping[str, Any] | None = None
    events_seen: int = 0

    def update(self, ev: Mapping[str, Any]) -> None:
        """Fold one event in (a typed event from ``core.watch``; a plain dict of the same shape will do)."""
        self.events_seen += 1
        typ = ev.get("type")
        if typ == "step":
            step = to_int(ev.get("step"))
            if step is None:
                return
            t = float(ev["t"])
            self.step, self.last_step_t = step, t
            self.steps_logged += 1
            if self.first_step is None:
                self.first_step, self.first_step_t = step, t
            if self.started_t is None:
                self.started_t = t
            self.epoch = as_float(ev.get("epoch")) or self.epoch
            self.loss = as_float(ev.get("loss"))
            self.lr = as_float(ev.get("lr"))
            self.samples_per_s = as_float(ev.get("samples_per_s"))
            self.tokens_per_s = as_float(ev.get("tokens_per_s"))
            self.step_time = as_float(ev.get("step_time"))
        elif typ == "eval":
            self.last_eval = ev
            acc = as_float(ev.get("accuracy"))
            if acc is not None and math.isfinite(acc) and (self.best_accuracy is None or acc > self.best_accuracy):
                self.best_accuracy = acc
        elif typ == "start":
            self.total_steps = to_int(ev.get("total_steps")) or self.total_steps
            self.world_size = to_int(ev.get("world_size")) or self.world_size
            self.samples_per_epoch = to_int(ev.get("samples_per_epoch")) or self.samples_per_epoch
            self.num_epochs = as_float(ev.get("num_epochs")) or self.num_epochs
            self.devices = list(ev.get("devices") or self.devices)
            if self.started_t is None:
                self.started_t = float(ev["t"])
        elif typ == "checkpoint":
            self.checkpoints.append((to_int(ev.get("step")) or 0, str(ev.get("path", ""))))
        elif typ == "checkpoint_deleted":
            self.checkpoints = [c for c in self.checkpoints if c[0] != ev.get("step")]
        elif typ == "end":
            self.end = ev

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def seconds_per_step(self) -> float | None:
        """Measured over the whole run so far, in event time."""
        if self.first_step is None or self.last_step_t is None or self.first_step_t is None:
            return None
        steps = self.step - self.first_step
        if steps <= 0 or self.last_step_t <= self.first_step_t:
            return self.step_time
        return (self.last_step_t - self.first_step_t) / steps

    def eta(self) -> float | None:
        sps = self.seconds_per_step()
        if sps is None or not self.total_steps or self.end is not None:
            return None
        return max(0, self.total_steps - self.step) * sps

    def elapsed(self, now: float) -> float | None:
        if self.started_t is None:
            return None
        until = float(self.end["t"]) if self.end is not None else now
        return max(0.0, until - self.started_t)

    def line(self, width: int = 24) -> str:
        total = self.total_steps or 0
        frac = self.fraction
        filled = int(frac * width)
        bar = "#" * filled + "." * (width - filled)
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        sps = f"{self.samples_per_s:.1f}" if self.samples_per_s is not None else "-"
        acc = f" | acc {self.best_accuracy:.4f}" if self.best_accuracy is not None else ""
        return (f"[{bar}] step {self.step}/{total or '?'} {frac * 100:3.0f}% | epoch {self.epoch:.2f} | "
                f"loss {loss} | {sps} samples/s{acc} | ETA {fmt_duration(self.eta())}")


def to_int(v: Any) -> int | None:
    """An event's whole number (a finite float is cut); a bool or anything else is None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return int(v)
    return None


def terminal_columns(stream: IO[str] = sys.stderr) -> int:
    """The width of the terminal the stream writes to (stderr may be one while stdout is piped)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size(fallback=(80, 24)).columns


class ProgressPrinter:
    """On a terminal: one line redrawn in place. Elsewhere (CI, a pipe): a line every few seconds when it
    changed, and once a minute when it did not (so a log shows the run is still alive, without repeats)."""

    def __init__(self, stream: IO[str] = sys.stderr, every_s: float = 5.0,
                 columns: Callable[[], int] | None = None):
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self.columns = columns or (lambda: terminal_columns(stream))
        self._last = 0.0
        self._last_text = ""
        self._drawn = False

    def fit(self, text: str) -> str:
        """The line cut to the terminal's width less one column: a line that fills the last column wraps
        on some terminals, and `\r` then returns to the wrapped half, leaving the first half behind."""
        width = max(10, self.columns() - 1)
        return text if len(text) <= width else text[:width - 1] + "…"

    def show(self, text: str, force: bool = False) -> None:
        if self.tty:
            # Asked on every redraw: the user may resize the terminal during a run.
            self.stream.write("\r\x1b[2K" + self.fit(text))
            self._drawn = True
            self.stream.flush()
        else:
            age = time.monotonic() - self._last
            # force: the final line, unless it is the line printed last (a log ended with it twice).
            if (force and text != self._last_text) or (age >= self.every_s and text != self._last_text) or age >= 60.0:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._last, self._last_text = time.monotonic(), text

    def message(self, text: str) -> None:
        """A line that stays (an eval result, a warning), printed above the bar."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
