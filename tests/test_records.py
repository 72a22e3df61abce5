"""The event schema in code: what each writer emits validates; what breaks a record is a bad line."""

import json

import pytest

from core.events import EventWriter, read_all, read_from
from core.records import SCHEMAS, TYPES, describe, validate
from tui.testing import canned_events

ENV = {"v": 1, "seq": 0, "t": 1.0}

# One of each event as core/train.py and core/evaluate.py emit them (field for field).
EMITTED = [
    {"type": "start", "world_size": 2, "nnodes": 1, "devices": ["cpu:0", "cpu:1"], "versions": {"paddle": "3.3.1"},
     "total_steps": 40, "samples_per_epoch": 640, "num_epochs": 2.0, "resumed_from_step": 0, "pid": 42,
     "fast_path": {"amp": False}, "steps_per_epoch": 20, "global_batch": 32, "dev_rows": 64,
     "output_dir": "/o", "hosts": ["box"], "restart": 0},
    {"type": "start", "world_size": 1, "nnodes": 1, "devices": ["cpu:0"], "versions": {}, "total_steps": 3,
     "samples_per_epoch": 100, "num_epochs": 1, "resumed_from_step": 0, "pid": 7, "max_seq_length": 64,
     "batch_size": 32, "mode": "classify", "checkpoint": "/c", "eval_path": "/d.tsv"},
    {"type": "step", "step": 5, "epoch": 0.25, "loss": 0.69, "lr": 2e-5, "samples_per_s": 100.0,
     "tokens_per_s": 6400.0, "step_time": 0.3},
    {"type": "step", "step": 1, "samples_per_s": None, "step_time": 0.1},  # an eval job's batch, no rate yet
    {"type": "eval", "step": 5, "accuracy": 0.8, "loss": 0.5, "n": 64, "eval_path": "/d.tsv", "mode": "classify",
     "eval_time": 0.2, "samples_per_s": 300.0},
    {"type": "eval", "step": 5, "loss": 0.5, "samples_per_s": 300.0, "eval_sha": "ab", "max_seq_length": 64,
     "accuracy": 0.8, "n": 64, "confusion": [[30, 2], [4, 28]], "precision": [0.9, 0.9], "recall": [0.9, 0.9],
     "f1": [0.9, 0.9], "mode": "cloze", "checkpoint": "/c", "eval_path": "/d.tsv"},
    {"type": "checkpoint", "step": 5, "path": "/o/checkpoint-5"},
    {"type": "checkpoint_deleted", "step": 5, "path": "/o/checkpoint-5"},
    {"type": "heartbeat", "rank": 0, "step": 5, "mem_bytes": 10, "host": "box", "local_rank": 0, "device": "cpu:0"},
    {"type": "ranks", "step": 5, "ranks": [{"rank": 0, "host": "box", "local_rank": 0, "device": "cpu:0",
                                           "step_time": 0.3, "samples": 16, "mem_bytes": 10, "util": 99.0}]},
    {"type": "log", "level": "warning", "text": "truncated"},
    {"type": "end", "status": "finished", "reason": "done"},
]


def test_every_type_has_a_record_and_every_emitted_shape_validates_unchanged():
    assert TYPES == set(SCHEMAS) >= {ev["type"] for ev in EMITTED}
    for ev in EMITTED:
        full = {**ENV, **ev}
        if ev.get("samples_per_s", 0) is None:  # None is not a number: the field is dropped, the step kept
            assert validate(full) == {k: v for k, v in full.items() if k != "samples_per_s"}
        else:
            assert validate(full) is full, ev  # nothing to fix: the same dict, no copy


def test_the_dashboards_canned_events_fit_the_schema():
    for i, ev in enumerate(canned_events(1, 40, nan_at=7)):
        assert validate({"v": 1, "seq": i, **ev}) is not None, ev


@pytest.mark.parametrize("ev", [
    {"type": "step"},  # no step
    {"type": "step", "step": "3"},
    {"type": "step", "step": True},
    {"type": "checkpoint", "step": 3},  # no path
    {"type": "checkpoint_deleted", "path": "/c"},  # no step
    {"type": "end", "status": "exploded"},
    {"type": "end"},
    {"type": "ranks", "step": 2, "ranks": 5},
    {"type": "heartbeat", "rank": "0"},
    {"type": "eval", "step": 1.5, "accuracy": 0.5},
    {"type": "mystery"},
])
def test_an_event_that_breaks_its_record_is_invalid(ev):
    assert validate({**ENV, **ev}) is None


def test_odd_optional_fields_are_dropped_and_bad_rank_records_too():
    ev = validate({**ENV, "type": "step", "step": 3, "loss": "nan", "lr": "fast", "future_field": [1]})
    assert ev == {**ENV, "type": "step", "step": 3, "loss": "nan", "future_field": [1]}
    ev = validate({**ENV, "type": "ranks", "step": 2, "ranks": [{"rank": 0, "host": {"x": 1}}, {"rank": "1"}, 7]})
    assert ev["ranks"] == [{"rank": 0}]


def test_reader_counts_schema_refusals_as_bad_lines(tmp_path):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        w.emit("step", step=1, loss=0.5)
        w.emit("checkpoint_deleted", step=1, path="/c")
    with open(p, "a") as fh:
        fh.write(json.dumps({**ENV, "seq": 2, "type": "end", "status": "exploded"}) + "\n")
    chunk = read_from(p)
    assert [e["type"] for e in chunk.events] == ["step", "checkpoint_deleted"] and chunk.bad_lines == 1
    assert len(list(read_all(p))) == 2


def test_writer_refuses_an_unknown_type(tmp_path):
    with EventWriter(tmp_path / "e.jsonl") as w, pytest.raises(ValueError):
        w.emit("mystery")


def test_describe_documents_every_type_and_its_required_fields():
    text = describe()
    for typ in TYPES:
        assert f"\n{typ}\n" in f"\n{text}\n"
    assert "path               str                    required" in text
