"""What a run's events add up to: progress numbers, rank health and new chart points. Pure, no Textual.

The follower thread owns one RunState and folds every event into it; the live screen gets a
``snapshot()`` (a copy it may keep) plus the new points of each series, so the UI thread never loops
over a million events itself.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.events import as_float
from core.progress import RunProgress
from core.progress import to_int as _int

# Chart series, by name. The live screen registers these with the chart widgets.
LOSS, LOSS_EMA, EVAL_ACC, LR, SAMPLES, TOKENS = (
    "loss", "loss (EMA)", "eval accuracy", "learning rate", "samples/s", "tokens/s")
SERIES_NAMES = (LOSS, LOSS_EMA, EVAL_ACC, LR, SAMPLES, TOKENS)
# TensorBoard's default smoothing: the EMA follows ~10 logged steps, debiased so it starts at the data.
EMA_BETA = 0.9
# A run with more steps than this is drawn first from about PREVIEW_POINTS of them (Store.metric_preview),
# then in full (run page, compare screen): a 160-column chart has 300-odd braille dots across.
PREVIEW_ABOVE = 50_000
PREVIEW_POINTS = 4_000


@dataclass
class RankInfo:
    rank: int
    step: int | None = None
    heard_t: float | None = None  # event time of the last heartbeat or ranks record
    mem_bytes: int | None = None
    step_time: float | None = None
    util: float | None = None
    host: str | None = None
    device: str | None = None


@dataclass
class EvalPoint:
    step: int
    accuracy: float | None
    loss: float | None
    n: int | None


class SeriesDelta(dict[str, tuple[np.ndarray, np.ndarray]]):
    """New chart points per series: name -> (steps, values). Deltas concatenate in order.

    ``truncate_after``: drop every point already drawn beyond this step before adding these (an elastic
    restart went back to a checkpoint and redoes the steps after it); None: nothing to drop.
    """

    truncate_after: float | None = None

    @classmethod
    def from_lists(cls, lists: dict[str, tuple[list[float], list[float]]],
                   truncate_after: float | None = None) -> SeriesDelta:
        out = cls()
        out.truncate_after = truncate_after
        for name, (xs, ys) in lists.items():
            if xs:
                out[name] = (np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))
        return out

    def merged(self, newer: SeriesDelta) -> SeriesDelta:
        out = SeriesDelta(self)
        out.truncate_after = self.truncate_after
        if newer.truncate_after is not None:  # the newer delta's cut applies to this one's points too
            cut = newer.truncate_after
            out.truncate_after = cut if self.truncate_after is None else min(self.truncate_after, cut)
            for name, (xs, ys) in list(out.items()):
                keep = xs <= cut
                out[name] = (xs[keep], ys[keep])
        for name, (xs, ys) in newer.items():
            if name in out:
                ox, oy = out[name]
                out[name] = (np.concatenate([ox, xs]), np.concatenate([oy, ys]))
            else:
                out[name] = (xs, ys)
        return out

    def points(self) -> int:
        return sum(len(xs) for xs, _ in self.values())


@dataclass
class RunState(RunProgress):
    """The live screen's fold: ``core.progress.RunProgress`` (the numbers every follower shares), plus
    the chart series, the evals, the smoothed loss and rank health."""

    loss_ema: float | None = None
    evals: list[EvalPoint] = field(default_factory=list)
    ranks: dict[int, RankInfo] = field(default_factory=dict)
    restarts: int = 0  # elastic restarts seen (the latest start event's count)
    _ema_raw: float = 0.0
    _ema_n: int = 0

    # ------------------------------------------------------------------ folding
    def apply(self, events: Iterable[Mapping[str, Any]]) -> SeriesDelta:
        lists: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in SERIES_NAMES}
        truncate_after: float | None = None
        for ev in events:
            self.update(ev)
            typ = ev.get("type")
            if typ == "step":
                self._step(ev, lists)
            elif typ == "eval":
                self._eval(ev, lists)
            elif typ in ("heartbeat", "ranks"):
                self._health(ev)
            elif typ == "start":
                restart = _int(ev.get("restart"))
                if restart:  # an elastic restart: the steps after the checkpoint it resumed from are redone
                    cut = float(_int(ev.get("resumed_from_step")) or 0)
                    truncate_after = cut if truncate_after is None else min(truncate_after, cut)
                    for xs, ys in lists.values():  # this batch's points beyond the cut go too
                        keep = [i for i, x in enumerate(xs) if x <= cut]
                        xs[:], ys[:] = [xs[i] for i in keep], [ys[i] for i in keep]
                    self.restarts = restart
                    self.evals = [e for e in self.evals if e.step <= cut]
                    self._ema_raw, self._ema_n = 0.0, 0  # the smoothed loss restarts with the curve
        return SeriesDelta.from_lists(lists, truncate_after)

    def _step(self, ev: Mapping[str, Any], lists: dict[str, tuple[list[float], list[float]]]) -> None:
        step = _int(ev.get("step"))
        if step is None:
            return
        if self.loss is not None and math.isfinite(self.loss):
            self._ema_raw = EMA_BETA * self._ema_raw + (1 - EMA_BETA) * self.loss
            self._ema_n += 1
            self.loss_ema = self._ema_raw / (1 - EMA_BETA ** self._ema_n)
        for name, v in ((LOSS, self.loss), (LR, self.lr), (SAMPLES, self.samples_per_s),
                        (TOKENS, self.tokens_per_s)):
            if v is not None:
                lists[name][0].append(step)
                lists[name][1].append(v)  # NaN goes in too: the chart counts it as skipped
        if self.loss_ema is not None and self.loss is not None and math.isfinite(self.loss):
            lists[LOSS_EMA][0].append(step)
            lists[LOSS_EMA][1].append(self.loss_ema)

    def _eval(self, ev: Mapping[str, Any], lists: dict[str, tuple[list[float], list[float]]]) -> None:
        step = _int(ev.get("step")) or self.step
        acc = as_float(ev.get("accuracy"))
        self.evals.append(EvalPoint(step, acc, as_float(ev.get("loss")), _int(ev.get("n"))))
        if acc is not None and math.isfinite(acc):
            lists[EVAL_ACC][0].append(step)
            lists[EVAL_ACC][1].append(acc)

    def _health(self, ev: Mapping[str, Any]) -> None:
        t = float(ev["t"])
        records = ev.get("ranks") if ev.get("type") == "ranks" else [ev]
        for r in records or []:
            if not isinstance(r, dict):
                continue
            rank = _int(r.get("rank")) or 0
            info = self.ranks.setdefault(rank, RankInfo(rank))
            info.heard_t = t
            info.step = _int(r.get("step")) if r.get("step") is not None else _int(ev.get("step"))
            info.mem_bytes = _int(r.get("mem_bytes")) if r.get("mem_bytes") is not None else info.mem_bytes
            info.step_time = as_float(r.get("step_time")) or info.step_time
            info.util = as_float(r.get("util")) if r.get("util") is not None else info.util
            info.host = r.get("host") or info.host
            info.device = r.get("device") or info.device

    def snapshot(self) -> RunState:
        """A copy the UI thread may keep while this one goes on folding."""
        snap = copy.copy(self)
        snap.evals = list(self.evals)
        snap.checkpoints = list(self.checkpoints)
        snap.ranks = {k: copy.copy(v) for k, v in self.ranks.items()}
        snap.devices = list(self.devices)
        return snap
