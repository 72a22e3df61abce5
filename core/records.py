"""Typed records: the events of ``events.jsonl`` (the protocol, in code) and the store's rows.

Each event type is a TypedDict: the one definition that mypy checks callers against, that documents
the protocol (``describe()`` prints it as a table) and that ingest validates every line with
(``validate``). Annotation rules, read by ``_compile``:

- ``Required[...]``: the field must be there with that type, or the event is invalid;
- ``Annotated[T, KEY, ...]``: a key field (a step number, a rank, a path a row is keyed on): when it is
  there it must have type T, or the event is invalid;
- any other field with a value of the wrong type is dropped (read back as absent): a newer trainer's
  odd field never costs the step it came with;
- fields not named here are kept as they are (a newer writer may add some; an incompatible change
  bumps the schema version ``v`` instead).

An invalid event is counted as a bad line, like a torn one, and skipped: never a crash.
"""

from __future__ import annotations

import types
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

SCHEMA_VERSION = 1
KEY = "key"  # Annotated marker: a wrong type invalidates the event instead of dropping the field


class NonFinite(str):
    """A float that JSON cannot hold, written as 'nan', 'inf' or '-inf' (``core.events.finite_or_text``)."""


Num = float | NonFinite  # a number in an event: an int or float, or a non-finite one as text
Status = Literal["finished", "failed", "stopped"]


class Envelope(TypedDict):
    v: int  # the schema version, SCHEMA_VERSION
    seq: int  # per-file sequence number, from 0
    t: float  # unix time of the write


class StartEvent(Envelope, total=False):
    type: Required[Literal["start"]]
    world_size: Annotated[int, "ranks in the job"]
    nnodes: Annotated[int, "nodes in the job"]
    devices: Annotated[list[str], "one device label per rank"]
    versions: Annotated[dict[str, str], "package versions"]
    total_steps: Annotated[int, "optimizer steps of the whole run (an eval job: batches)"]
    samples_per_epoch: Annotated[int, "training rows (an eval job: rows evaluated)"]
    num_epochs: Annotated[Num, "epochs the steps add up to"]
    resumed_from_step: Annotated[int, "the step this incarnation continues from"]
    restart: Annotated[int, "elastic restarts before this start (0 = the first)"]
    pid: Annotated[int, "rank 0's pid"]
    fast_path: Annotated[dict[str, Any], "what makes a GPU run fast, as decided"]
    steps_per_epoch: int
    global_batch: int
    dev_rows: int
    output_dir: str
    hosts: list[str]
    # an evaluation job's start also says what it evaluates
    checkpoint: str
    eval_path: str
    mode: str
    max_seq_length: int
    batch_size: int


class StepEvent(Envelope, total=False):
    type: Required[Literal["step"]]
    step: Required[Annotated[int, "the last optimizer step of the logging window (an eval job: batch)"]]
    epoch: Annotated[Num, "epochs done, fractional"]
    loss: Annotated[Num, "mean training loss over the window"]
    lr: Annotated[Num, "learning rate"]
    samples_per_s: Annotated[Num, "samples/s of the whole job over the window"]
    tokens_per_s: Annotated[Num, "tokens/s of the whole job"]
    step_time: Annotated[Num, "seconds per step"]


class EvalEvent(Envelope, total=False):
    type: Required[Literal["eval"]]
    step: Annotated[int | None, KEY, "the step evaluated (the checkpoint's, for an eval job)"]
    accuracy: Num
    loss: Num
    n: Annotated[int, "rows evaluated"]
    mode: Annotated[str, "classify | cloze"]
    precision: Annotated[list[Any], "per class"]
    recall: list[Any]
    f1: list[Any]
    confusion: Annotated[list[Any], "[[tn, fp], [fn, tp]], rows = true label"]
    samples_per_s: Num
    eval_time: Num
    eval_path: str
    eval_sha: Annotated[str, "sha256 of the evaluated file"]
    checkpoint: str
    max_seq_length: int


class CheckpointEvent(Envelope, total=False):
    type: Required[Literal["checkpoint"]]
    step: Required[int]
    path: Required[Annotated[str, "the complete checkpoint folder"]]


class CheckpointDeletedEvent(Envelope, total=False):
    """``save_total_limit`` removed a checkpoint: the store stops offering it."""

    type: Required[Literal["checkpoint_deleted"]]
    step: Required[int]
    path: Required[str]


class HeartbeatEvent(Envelope, total=False):
    type: Required[Literal["heartbeat"]]
    rank: Annotated[int, KEY]
    step: Annotated[int, KEY]
    mem_bytes: int
    host: str
    local_rank: int
    device: str


class RankRecord(TypedDict, total=False):
    rank: Annotated[int, KEY]
    host: str
    local_rank: int
    device: str
    step_time: Num
    samples: int
    mem_bytes: int
    util: Annotated[Num, "GPU % (CPU: the process's CPU %)"]


class RanksEvent(Envelope, total=False):
    type: Required[Literal["ranks"]]
    step: Annotated[int, KEY]
    ranks: Annotated[list[RankRecord], KEY, "one health record per rank (bad records dropped)"]


class LogEvent(Envelope, total=False):
    type: Required[Literal["log"]]
    level: Annotated[str, "info | warning | error"]
    text: str


class EndEvent(Envelope, total=False):
    type: Required[Literal["end"]]
    status: Required[Status]
    reason: str


Event = (StartEvent | StepEvent | EvalEvent | CheckpointEvent | CheckpointDeletedEvent | HeartbeatEvent
         | RanksEvent | LogEvent | EndEvent)
EVENT_CLASSES: dict[str, type] = {
    "start": StartEvent, "step": StepEvent, "eval": EvalEvent, "checkpoint": CheckpointEvent,
    "checkpoint_deleted": CheckpointDeletedEvent, "heartbeat": HeartbeatEvent, "ranks": RanksEvent,
    "log": LogEvent, "end": EndEvent,
}
TYPES = frozenset(EVENT_CLASSES)
END_STATUSES = frozenset(get_args(Status))


# ---------------------------------------------------------------------------- validation
# Checks are exact-type lookups (``type(v) in types``), not isinstance calls: ingest validates every line
# of a million-step file, and a bool is an int to isinstance but never a step number.
NON_FINITE = frozenset({"nan", "inf", "-inf"})


def _accepts(tp: Any) -> tuple[frozenset[type], frozenset[str], Any]:
    """(exact types accepted, str values accepted besides, item schema of a list of records or None)."""
    origin = get_origin(tp)
    if tp is Any:
        return frozenset({int, float, str, bool, list, dict, type(None)}), frozenset(), None
    if tp is NonFinite:
        return frozenset(), NON_FINITE, None
    if tp is float:
        return frozenset({int, float}), frozenset(), None
    if tp in (int, str, bool, type(None)):
        return frozenset({tp}), frozenset(), None
    if origin is Literal:
        return frozenset(), frozenset(get_args(tp)), None
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        return frozenset({list}), frozenset(), (_compile(item) if _is_typeddict(item) else None)
    if origin is dict:
        return frozenset({dict}), frozenset(), None
    if origin in (Union, types.UnionType):
        parts = [_accepts(a) for a in get_args(tp)]
        return (frozenset().union(*(p[0] for p in parts)), frozenset().union(*(p[1] for p in parts)),
                next((p[2] for p in parts if p[2] is not None), None))
    raise TypeError(f"no check for {tp!r}")


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__required_keys__")


class _Field:
    __slots__ = ("name", "types", "values", "items", "required", "key", "doc", "tp")

    def __init__(self, name: str, tp: Any, required: bool):
        meta: tuple[Any, ...] = ()
        while get_origin(tp) in (Required, NotRequired, Annotated):
            if get_origin(tp) is Annotated:
                meta += tp.__metadata__
                tp = tp.__origin__
            else:
                # Under postponed annotations Python 3.11 does not see Required in __required_keys__.
                required = required or get_origin(tp) is Required
                tp = get_args(tp)[0]
        self.name, self.tp, self.required = name, tp, required
        self.key = required or KEY in meta
        self.doc = " ".join(m for m in meta if isinstance(m, str) and m != KEY)
        self.types, self.values, self.items = _accepts(tp)

    def accepts(self, v: Any) -> bool:
        return type(v) in self.types or (type(v) is str and v in self.values)


class _Schema:
    def __init__(self, cls: Any):
        hints = get_type_hints(cls, include_extras=True)
        self.fields = {n: _Field(n, tp, n in cls.__required_keys__) for n, tp in hints.items()}
        self.required = tuple(n for n, f in self.fields.items() if f.required)


def _compile(cls: Any) -> _Schema:
    return _Schema(cls)


SCHEMAS: dict[str, _Schema] = {t: _compile(c) for t, c in EVENT_CLASSES.items()}


def _validate(schema: _Schema, d: dict[str, Any]) -> dict[str, Any] | None:
    for name in schema.required:
        if name not in d:
            return None
    fields = schema.fields
    drop: list[str] | None = None
    fixed: dict[str, Any] | None = None
    for k, v in d.items():
        f = fields.get(k)
        if f is None:  # a field this version does not know: kept as it is
            continue
        if type(v) in f.types or (type(v) is str and v in f.values):
            if f.items is not None:
                kept = [r for r in (_validate(f.items, x) if type(x) is dict else None for x in v) if r is not None]
                if len(kept) != len(v) or any(a is not b for a, b in zip(kept, v, strict=False)):
                    fixed = {**(fixed or {}), k: kept}
        elif f.key:
            return None
        else:
            drop = [*(drop or []), k]
    if drop is None and fixed is None:
        return d  # the common case: the same dict, no copy
    out = {k: v for k, v in d.items() if not drop or k not in drop}
    out.update(fixed or {})
    return out


def validate(ev: Any) -> Event | None:
    """The event as the schema allows it (odd optional fields dropped), or None when it is invalid."""
    if type(ev) is not dict:
        return None
    schema = SCHEMAS.get(ev.get("type"))  # type: ignore[arg-type]
    if schema is None:
        return None
    return _validate(schema, ev)  # type: ignore[return-value]


def describe() -> str:
    """The protocol as text: one line per field (``python -c 'from core.records import describe; ...'``)."""
    lines = []
    for typ, schema in SCHEMAS.items():
        lines.append(typ)
        for f in schema.fields.values():
            if f.name in ("v", "seq", "t", "type"):
                continue
            tag = "required" if f.required else ("key" if f.key else "optional")
            lines.append(f"  {f.name:<18} {_type_name(f.tp):<22} {tag:<8} {f.doc}".rstrip())
    return "\n".join(lines)


def _type_name(tp: Any) -> str:
    if tp == Num:
        return "number"
    if get_origin(tp) is None:
        return str(getattr(tp, "__name__", tp))
    return str(tp).replace("typing.", "").replace("core.records.", "")


# ---------------------------------------------------------------------------- store rows
class RunRow(TypedDict):
    """A row of ``runs`` as the store's getters return it (JSON columns decoded)."""

    id: str
    kind: str  # 'train' | 'eval'
    name: str | None
    status: str  # running | finished | failed | stopped | lost
    created_at: float | None
    started_at: float | None
    ended_at: float | None
    last_event_at: float | None
    config: Any
    command: Any
    run_dir: str
    output_dir: str | None
    model: str | None
    devices: str | None
    world_size: int | None
    nnodes: int | None
    host: str | None
    total_steps: int | None
    samples_per_epoch: int | None
    pgid: int | None
    launcher_pid: int | None
    exit_code: int | None
    error: str | None
    versions: Any
    device_info: Any
    bad_lines: int
    event_offset: int
    resumed_from: str | None
    parent_run: str | None
    checkpoint: str | None
    eval_path: str | None
    eval_sha: str | None
    mode: str | None
    alerts: Any
    # kept by ingest for the runs table (Store.summary): metrics rows, the last step and its loss, and the
    # sum and count of the non-NULL samples/s (their mean is the table's)
    metric_rows: int
    last_step: int | None
    final_loss: float | None
    sps_sum: float
    sps_n: int
    tags: Any  # JSON list of strings (decoded by the getters)
    note: str | None


class CheckpointRow(TypedDict):
    run_id: str
    step: int
    path: str
    t: float | None
    deleted_at: float | None  # set when a checkpoint_deleted event said the folder is gone


class MetricRow(TypedDict):
    run_id: str
    step: int
    epoch: float | None
    loss: float | None
    lr: float | None
    samples_per_s: float | None
    tokens_per_s: float | None
    step_time: float | None
    t: float | None


class EvalRow(TypedDict):
    id: str
    run_id: str
    source: str  # 'train' (the trainer's dev eval) | 'eval' (a job on a checkpoint)
    step: int | None
    checkpoint: str | None
    eval_path: str | None
    eval_sha: str | None
    mode: str | None
    accuracy: float | None
    loss: float | None
    n: int | None
    details: dict[str, Any]
    eval_run_id: str | None
    t: float | None


class Summary(TypedDict):
    metric_rows: int
    last_step: int | None
    mean_samples_per_s: float | None
    final_loss: float | None
    best_accuracy: float | None
