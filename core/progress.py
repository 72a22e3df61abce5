"""Plain-text progress for the headless CLI (core/ uses no Rich): a bar with loss, samples/s and ETA."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from core.events import as_float


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class RunProgress:
    """Folds events into the numbers a progress line shows."""

    def __init__(self, clock: Any = time.monotonic):
        self.clock = clock
        self.total_steps: int | None = None
        self.step = 0
        self.first_step: int | None = None
        self.first_step_at: float | None = None
        self.epoch = 0.0
        self.loss: float | None = None
        self.samples_per_s: float | None = None
        self.best_accuracy: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None

    def update(self, ev: dict[str, Any]) -> None:
        t = ev["type"]
        if t == "start":
            self.total_steps = ev.get("total_steps")
        elif t == "step":
            self.step = int(ev.get("step") or 0)
            if self.first_step is None:
                self.first_step, self.first_step_at = self.step, self.clock()
            self.epoch = float(ev.get("epoch") or 0.0)
            self.loss = as_float(ev.get("loss"))
            self.samples_per_s = as_float(ev.get("samples_per_s"))
        elif t == "eval":
            self.last_eval = ev
            acc = as_float(ev.get("accuracy"))
            if acc is not None and (self.best_accuracy is None or acc > self.best_accuracy):
                self.best_accuracy = acc
        elif t == "end":
            self.end = ev

    def eta(self) -> float | None:
        if not self.total_steps or self.first_step is None or self.first_step_at is None:
            return None
        done = self.step - self.first_step
        if done <= 0:
            return None
        rate = done / max(1e-9, self.clock() - self.first_step_at)
        return (self.total_steps - self.step) / rate

    def line(self, width: int = 24) -> str:
        total = self.total_steps or 0
        frac = min(1.0, self.step / total) if total else 0.0
        filled = int(frac * width)
        bar = "#" * filled + "." * (width - filled)
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        sps = f"{self.samples_per_s:.1f}" if self.samples_per_s is not None else "-"
        acc = f" | acc {self.best_accuracy:.4f}" if self.best_accuracy is not None else ""
        return (f"[{bar}] step {self.step}/{total or '?'} {frac * 100:3.0f}% | epoch {self.epoch:.2f} | "
                f"loss {loss} | {sps} samples/s{acc} | ETA {fmt_duration(self.eta())}")


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
            if force or (age >= self.every_s and text != self._last_text) or age >= 60.0:
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
