"""Alerts on a live run: a NaN/inf loss, a stalled step, a throughput collapse, an elastic restart.
Pure, no Textual.

Each alert fires once and re-arms when the condition clears (a finite loss, a new step, throughput
back above half the median), so a long stall rings the bell once, not every poll. Throughput is judged
on the median of the last few readings against the running median of the last 500.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.events import as_float

# A step may legitimately take a minute (GPT-2 Medium on CPU: ~25 s a step, docs/ARCHITECTURE.md); below 60 s a
# "stall" would mostly be an evaluation or a checkpoint save.
STALL_MIN_S = 60.0
STALL_FACTOR = 10.0
COLLAPSE_RATIO = 0.30
RECOVER_RATIO = 0.50
# The first few steps warm up (allocation, compilation): no collapse verdict before this many readings.
MIN_HISTORY = 5
WINDOW = 500
# A collapse is judged on the median of the last few readings, not on one: per-step samples/s on a
# shared 2-core box swings 200-4,000 (measured with the offline preset), and single dips are noise.
SHORT = 5


@dataclass(frozen=True)
class Alert:
    kind: str  # 'nan' | 'stall' | 'throughput' | 'restart' | 'fast-path'
    message: str
    step: int | None
    t: float  # when it was raised (the monitor's clock)
    level: str = "error"


class AlertMonitor:
    def __init__(self) -> None:
        self.last_step: int | None = None
        self.last_step_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=200)
        self._sps: deque[float] = deque(maxlen=WINDOW)
        self._recent: deque[float] = deque(maxlen=SHORT)
        self._nan = self._stalled = self._collapsed = False

    def observe(self, events: Sequence[Mapping[str, Any]], now: float) -> list[Alert]:
        """Fold new events in; returns the alerts they raise."""
        out: list[Alert] = []
        for ev in events:
            fallbacks = (ev.get("fast_path") or {}).get("fallbacks") if ev.get("type") == "start" else None
            if isinstance(fallbacks, list) and fallbacks:
                out.append(Alert("fast-path", "the fast path stepped down before step 1: " + "; ".join(map(str, fallbacks)),
                                 None, now, level="warning"))
            restart = ev.get("restart") if ev.get("type") == "start" else None
            if isinstance(restart, int) and not isinstance(restart, bool) and restart > 0:
                resumed = ev.get("resumed_from_step")
                where = f"continuing from step {resumed}" if resumed else "starting again at step 1"
                out.append(Alert("restart", f"a rank failed and the elastic launcher restarted the job (restart "
                                            f"{restart}); {where}", resumed, now, level="warning"))
        steps = [ev for ev in events if ev.get("type") == "step"]
        # One median per batch: live batches hold a few steps, a replayed run's history is judged in
        # chunks against the median before each chunk (a per-event median would cost minutes at 1 M steps).
        median = float(np.median(self._sps)) if len(self._sps) >= MIN_HISTORY else None
        for ev in steps:
            step = ev.get("step")
            loss = as_float(ev.get("loss"))
            if loss is not None and not math.isfinite(loss):
                if not self._nan:
                    self._nan = True
                    out.append(Alert("nan", f"loss is {loss} at step {step}", step, now))
            elif loss is not None:
                self._nan = False
            t = float(ev["t"])
            if self.last_step_t is not None and t >= self.last_step_t:
                self._intervals.append(t - self.last_step_t)
            self.last_step, self.last_step_t = step, t
            self._stalled = False
            sps = as_float(ev.get("samples_per_s"))
            if sps is None or not math.isfinite(sps):
                continue
            self._recent.append(sps)
            if median is not None and median > 0 and len(self._recent) == SHORT:
                recent = sorted(self._recent)[SHORT // 2]
                if recent < COLLAPSE_RATIO * median and not self._collapsed:
                    self._collapsed = True
                    out.append(Alert(
                        "throughput", f"throughput fell to {recent:.3g} samples/s by step {step} "
                        f"({100 * recent / median:.0f}% of the running median {median:.3g})", step, now,
                        level="warning"))
                elif recent >= RECOVER_RATIO * median:
                    self._collapsed = False
            self._sps.append(sps)
        return out

    def stall_limit(self) -> float:
        """Seconds without a new step before a live run counts as stalled."""
        if not self._intervals:
            return STALL_MIN_S
        return max(STALL_MIN_S, STALL_FACTOR * float(np.median(self._intervals)))

    def check(self, now: float, alive: bool) -> list[Alert]:
        """The time-based alert: call every poll with whether the run's processes are alive."""
        if not alive or self.last_step_t is None or self._stalled:
            return []
        quiet = now - self.last_step_t
        limit = self.stall_limit()
        if quiet <= limit:
            return []
        self._stalled = True
        return [Alert("stall", f"no new step for {quiet:.0f} s (limit {limit:.0f} s); last step "
                               f"{self.last_step}", self.last_step, now)]
