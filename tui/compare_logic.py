"""The logic behind the history, compare and results screens. Pure: no Textual, no store access.

Rows are the dicts of ``core.export.runs_table``; evals and checkpoints are the store's rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

STATUS_FILTERS = ("all", "running", "finished", "failed", "stopped", "lost")
# Sortable columns of the runs table: key -> header label. "started" is the launch time (created_at).
SORT_COLUMNS = {
    "status": "status", "name": "name", "model": "model", "devices": "devices", "steps": "steps",
    "final_loss": "final loss", "best_accuracy": "best acc", "mean_samples_per_s": "samples/s",
    "duration_s": "duration", "started": "started",
}
_MISSING = object()


# ---------------------------------------------------------------------------- runs table
def sort_value(row: Mapping[str, Any], key: str) -> Any:
    if key == "started":
        return row.get("created_at")
    v = row.get(key)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.lower() if isinstance(v, str) else v


def sort_rows(rows: Iterable[dict[str, Any]], key: str = "started", descending: bool = True) -> list[dict[str, Any]]:
    """Stable sort on one column; rows without a value go last in either direction."""
    if key not in SORT_COLUMNS:
        raise KeyError(key)
    rows = list(rows)
    have = [r for r in rows if sort_value(r, key) is not None]
    missing = [r for r in rows if sort_value(r, key) is None]
    # A column mixing text and numbers (never in practice) still sorts: compare as text then.
    try:
        have.sort(key=lambda r: sort_value(r, key), reverse=descending)
    except TypeError:
        have.sort(key=lambda r: str(sort_value(r, key)), reverse=descending)
    return have + missing


def filter_rows(rows: Iterable[dict[str, Any]], text: str = "", status: str | None = None) -> list[dict[str, Any]]:
    """Rows with ``status`` (None or 'all': any) that the filter ``text`` matches (``core.run_filter``:
    words, "phrases", tag:, status:, settings, lr>1e-4, -term). Raises ``FilterError`` for a malformed one."""
    from core.run_filter import parse

    wanted = parse(text)
    if status and status != "all":
        rows = (r for r in rows if r.get("status") == status)
    return wanted.select(rows)


# ---------------------------------------------------------------------------- compare
def config_diff(configs: Mapping[str, Mapping[str, Any] | None]) -> list[tuple[str, dict[str, Any]]]:
    """The fields whose values are not all equal, in first-seen order: [(field, {run_id: value})].

    A RunConfig field missing from a run's config (the run predates the field) has its default: the run
    ran with it. Any other missing field counts as a difference, shown as None.
    """
    from core.config import RunConfig

    defaults = RunConfig().to_dict()
    fields: dict[str, None] = {}
    for cfg in configs.values():
        for k in cfg or {}:
            fields.setdefault(k, None)
    out = []
    for f in fields:
        values = {rid: cfg.get(f, defaults.get(f, _MISSING)) if cfg else _MISSING for rid, cfg in configs.items()}
        distinct = {_hashable(v) for v in values.values()}
        if len(distinct) > 1:
            out.append((f, {rid: None if v is _MISSING else v for rid, v in values.items()}))
    return out


def _hashable(v: Any) -> Any:
    if v is _MISSING:
        return ("<missing>",)
    if isinstance(v, float) and v.is_integer():
        return int(v)  # 3 and 3.0 epochs are the same setting
    if isinstance(v, (list, dict)):
        return repr(v)
    return v


# ---------------------------------------------------------------------------- curves
class Ema:
    """TensorBoard-style smoothing, debiased so it starts at the data; skips non-finite values.

    Fed in pieces (a running run's new steps) it gives the same numbers as fed all at once.
    """

    def __init__(self, beta: float = 0.9):
        self.beta = beta
        self._raw = 0.0
        self._n = 0

    def feed(self, xs: Iterable[float], ys: Iterable[float | None]) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed curve of the finite ys (NaN, inf and None skipped), as (xs, ys) arrays.

        Vectorised: the recurrence raw_i = b raw_(i-1) + (1 - b) y_i is solved in blocks of ``_BLOCK``
        points with one matrix product (no negative powers of b, so nothing overflows), and only the
        blocks' end values are carried in a Python loop. Equal to the point-by-point loop within ~1e-15.
        """
        x = _floats(xs)
        y = _floats(ys)
        if len(x) != len(y):
            raise ValueError(f"xs and ys differ in length ({len(x)} != {len(y)})")
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
        m = len(y)
        if not m:
            return x, y
        b = self.beta
        n_blocks = -(-m // _BLOCK)
        blocks = np.zeros(n_blocks * _BLOCK)
        blocks[:m] = y
        blocks = blocks.reshape(n_blocks, _BLOCK)
        i = np.arange(_BLOCK)
        lag = i[:, None] - i[None, :]
        decay = np.where(lag >= 0, b ** np.maximum(lag, 0).astype(np.float64), 0.0)  # [i, j] = b^(i-j), j <= i
        part = (1 - b) * (blocks @ decay.T)  # each block's recurrence started from raw = 0
        carry_in = np.empty(n_blocks)  # raw before each block
        raw = self._raw
        b_block = b ** _BLOCK
        for k, end in enumerate(part[:, -1].tolist()):
            carry_in[k] = raw
            raw = b_block * raw + end
        raw_all = (part + carry_in[:, None] * (b ** (i + 1.0))[None, :]).ravel()[:m]
        self._raw = float(raw_all[-1])
        # Debias by 1 - b^n; past the first few hundred points b^n < 2^-60 and the divisor is exactly 1.0.
        cut = m if not 0.0 < b < 1.0 else max(0, min(m, math.ceil(-60 * math.log(2) / math.log(b)) + 1 - self._n))
        divisor = np.ones(m)
        divisor[:cut] = 1 - b ** (self._n + np.arange(1, cut + 1, dtype=np.float64))
        self._n += m
        return x, raw_all / divisor


_BLOCK = 64


def _floats(values: Iterable[float | None]) -> np.ndarray:
    """A float64 array (None -> NaN) without copying an array that already is one."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.asarray(list(values), dtype=np.float64)


def metric_xy(arrays: Mapping[str, np.ndarray], y: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """Two of ``Store.metric_arrays``' columns as (xs, ys), rows whose y is NaN (NULL in the store) dropped.

    The same points as ``column`` over ``Store.metrics``' dicts (SQLite stores no NaN, so NaN here was NULL).
    """
    xs, ys = arrays[x], arrays[y]
    keep = ~(np.isnan(xs) | np.isnan(ys))
    if keep.all():
        return xs, ys
    return xs[keep], ys[keep]


def column(rows: Iterable[Mapping[str, Any]], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Two columns of store rows as float arrays; rows with a None y are dropped (NaN stays: counted)."""
    pairs = [(r[x], r[y]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    if not pairs:
        return np.empty(0), np.empty(0)
    xs, ys = zip(*pairs, strict=True)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


# ---------------------------------------------------------------------------- results
@dataclass
class ResultRow:
    """One line of the results pane: a checkpoint and one of its evaluations (or none yet)."""

    key: str
    step: int | None
    checkpoint: str | None  # the checkpoint folder; None for a training eval at a step with no checkpoint
    mode: str | None = None
    eval_path: str | None = None
    accuracy: float | None = None
    n: int | None = None
    t: float | None = None
    source: str | None = None  # 'train' (during training) or 'eval' (launched on the checkpoint)
    eval_run_id: str | None = None
    best: bool = False


def _real(p: str | None) -> str | None:
    return os.path.realpath(p) if p else None


def results_rows(checkpoints: list[dict[str, Any]], evals: list[dict[str, Any]]) -> list[ResultRow]:
    """Every checkpoint with every eval of it, by step; training evals at steps without a checkpoint too.

    A launched eval (source 'eval') belongs to the checkpoint whose folder it names (or, failing that,
    to the checkpoint at its step); a training eval (source 'train') to the checkpoint at its step.
    The best checkpoint is the one ``--checkpoint best`` picks: the highest accuracy of an eval of a
    checkpoint (ties: the later step); its rows with that accuracy are marked.
    """
    by_step = {c["step"]: c for c in checkpoints}
    by_path = {_real(c["path"]): c for c in checkpoints}
    attached: dict[int, list[dict[str, Any]]] = {c["step"]: [] for c in checkpoints}
    loose: list[dict[str, Any]] = []
    for e in evals:
        c = by_path.get(_real(e.get("checkpoint"))) if e.get("source") == "eval" else None
        if c is None and e.get("step") in by_step:
            c = by_step[e["step"]]
        if c is None:
            loose.append(e)
        else:
            attached[c["step"]].append(e)
    rows: list[ResultRow] = []
    for c in checkpoints:
        evs = attached[c["step"]]
        if not evs:
            rows.append(ResultRow(key=f"ckpt:{c['step']}", step=c["step"], checkpoint=c["path"]))
        for e in evs:
            rows.append(_eval_row(e, c["step"], c["path"]))
    for e in loose:
        rows.append(_eval_row(e, e.get("step"), e.get("checkpoint") if e.get("source") == "eval" else None))
    rows.sort(key=lambda r: (r.step if r.step is not None else -1, r.checkpoint is None, r.t or 0))
    scored = [(r.accuracy, r.step) for r in rows
              if r.checkpoint is not None and r.step in by_step and _finite(r.accuracy)]
    if scored:
        acc, step = max(scored)
        for r in rows:
            r.best = r.step == step and r.checkpoint is not None and r.accuracy == acc
    return rows


def _eval_row(e: dict[str, Any], step: int | None, checkpoint: str | None) -> ResultRow:
    return ResultRow(key=str(e.get("id")), step=step, checkpoint=checkpoint, mode=e.get("mode"),
                     eval_path=e.get("eval_path"), accuracy=e.get("accuracy"), n=e.get("n"), t=e.get("t"),
                     source=e.get("source"), eval_run_id=e.get("eval_run_id"))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def default_eval_file(run: Mapping[str, Any]) -> str:
    """The run's dev.tsv (core.evaljob's rule: never downloads)."""
    from core.evaljob import default_eval_path

    return str(default_eval_path(run))


# ---------------------------------------------------------------------------- engines side by side
@dataclass(frozen=True)
class SpeedFacts:
    """What the speed table needs of one run (read by the compare screen's loader)."""

    label: str
    engine: str  # the config's engine; runs from before the field are ours
    samples_per_s: Iterable[float]  # each logged step's (NaN where unknown)
    first_t: float | None  # the first step event's time, else the run's start
    t_at_step: float | None  # when the run logged the common step
    evals: Iterable[tuple[int | None, float | None]]  # (step, accuracy) of the training evaluations


@dataclass(frozen=True)
class SpeedRow:
    label: str
    engine: str
    samples_per_s: float | None  # the median over the logged steps: startup and eval pauses do not count
    time_to_step: float | None  # seconds from first_t to the common step
    final_accuracy: float | None  # of the last evaluated step
    best_accuracy: float | None
    speed_ratio: float | None  # samples/s over the first run's
    time_ratio: float | None  # time to the common step over the first run's


def common_step(last_steps: Iterable[int | None]) -> int | None:
    """The largest step every run reached; None when a run has no step."""
    steps = list(last_steps)
    if not steps or any(s is None for s in steps):
        return None
    return min(s for s in steps if s is not None)


def speed_rows(facts: list[SpeedFacts]) -> list[SpeedRow]:
    """One row per run; ratios are to the first run (1.0 for itself; None where either side is unknown)."""
    rows: list[SpeedRow] = []
    for f in facts:
        sps = _floats(f.samples_per_s)
        sps = sps[np.isfinite(sps) & (sps > 0)]
        elapsed = f.t_at_step - f.first_t if f.t_at_step is not None and f.first_t is not None else None
        accs = [(s if s is not None else -1, a) for s, a in f.evals if _finite(a)]
        rows.append(SpeedRow(
            label=f.label, engine=f.engine, samples_per_s=float(np.median(sps)) if len(sps) else None,
            time_to_step=elapsed if elapsed is None or elapsed >= 0 else None,
            final_accuracy=max(accs, key=lambda e: e[0])[1] if accs else None,
            best_accuracy=max(a for _, a in accs) if accs else None, speed_ratio=None, time_ratio=None))
    if not rows:
        return rows
    first = rows[0]
    return [replace(r, speed_ratio=_ratio(r.samples_per_s, first.samples_per_s),
                    time_ratio=_ratio(r.time_to_step, first.time_to_step)) for r in rows]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
