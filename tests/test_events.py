"""The event protocol: writer sequence numbers, torn and garbage lines skipped and counted."""

import json

from core.events import EventWriter, as_float, read_all, read_from


def test_writer_numbers_events_and_continues_after_reopen(tmp_path):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        w.emit("start", world_size=2)
        w.emit("step", step=1, loss=0.5)
    with EventWriter(p) as w:
        w.emit("end", status="finished")
    evs = list(read_all(p))
    assert [e["seq"] for e in evs] == [0, 1, 2]
    assert [e["type"] for e in evs] == ["start", "step", "end"]


def test_non_finite_values_survive_as_strings(tmp_path):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        w.emit("step", step=1, loss=float("nan"), lr=float("inf"))
    ev = next(read_all(p))
    assert as_float(ev["loss"]) != as_float(ev["loss"])  # NaN
    assert as_float(ev["lr"]) == float("inf")


def test_torn_last_line_waits_and_garbage_is_counted(tmp_path):
    p = tmp_path / "events.jsonl"
    good = json.dumps({"v": 1, "seq": 0, "t": 1.0, "type": "step", "step": 1})
    p.write_bytes((good + "\n" + "not json\n" + '{"v":1,"seq":1,"t":1,"type":"bogus"}\n'
                   + "\xff\xfe garbage\n").encode("latin-1") + b'{"v":1,"seq":2,"t":1.0,"ty')
    c = read_from(p, 0)
    assert [e["step"] for e in c.events] == [1]
    assert c.bad_lines == 3
    # the torn line is left for later, and completes when its writer finishes it
    with open(p, "ab") as fh:
        fh.write(b'pe":"step","step":2}\n')
    c2 = read_from(p, c.offset)
    assert [e["step"] for e in c2.events] == [2] and c2.bad_lines == 0


def test_missing_file_reads_as_empty(tmp_path):
    c = read_from(tmp_path / "nope.jsonl", 0)
    assert c.events == [] and c.offset == 0
