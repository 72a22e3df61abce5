"""RunsReader: the runs table read once, then only what changed (issue 14: a history refresh of 10,000
runs read every row every 2 s). Real Store, real ingest; rows are counted, never timed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.export import runs_table
from core.runs_reader import FULL_EVERY, RunsReader
from core.store import Store

T0 = 1_700_000_000.0


def add_run(store: Store, i: int, status: str = "finished", steps: int = 3) -> str:
    """A run through the store's API: a row from spawn, then a trainer's events ingested."""
    rid = f"20231114-{i:06d}-abcd"
    t = T0 + 60 * i
    store.create_run({"id": rid, "kind": "train", "name": f"run {i}", "status": "running", "created_at": t,
                      "run_dir": f"/nowhere/{rid}", "model": "gpt2-tiny", "devices": "cpu:2", "world_size": 2})
    evs: list[dict[str, Any]] = [{"v": 1, "seq": 0, "t": t, "type": "start", "world_size": 2, "total_steps": steps}]
    evs += [{"v": 1, "seq": s, "t": t + s, "type": "step", "step": s, "epoch": 0.1, "loss": 0.7, "lr": 1e-3,
             "samples_per_s": 100.0, "tokens_per_s": 1000.0, "step_time": 0.1} for s in range(1, steps + 1)]
    if status != "running":
        evs.append({"v": 1, "seq": steps + 1, "t": t + steps + 1, "type": "end", "status": status, "reason": ""})
    store.ingest(rid, 0, 1, evs)
    return rid


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "runs.db")
    for i in range(30):
        add_run(s, i, "running" if i == 29 else "finished")
    return s


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def test_first_read_is_the_whole_table_as_runs_table_prints_it(store):
    reader = RunsReader()
    ch = reader.changes(store, now=T0 + 10_000)
    assert ch.full and not ch.removed
    assert ch.rows == runs_table(store, now=T0 + 10_000)
    assert reader.running == {"20231114-000029-abcd"} and reader.reads == 30


def test_a_refresh_reads_the_running_run_new_runs_and_evaluated_runs_only(store, tmp_path):
    reader = RunsReader()
    reader.changes(store)
    other = Store(tmp_path / "runs.db")  # another process's connection: the follower, an eval job
    other.ingest("20231114-000029-abcd", 1, 2, [{"v": 1, "seq": 4, "t": T0 + 9999, "type": "step", "step": 4,
                                                 "epoch": 0.2, "loss": 0.5, "lr": 1e-3, "samples_per_s": 100.0,
                                                 "tokens_per_s": 1000.0, "step_time": 0.1}])
    reads = reader.reads
    ch = reader.changes(store)
    assert not ch.full and [r["id"] for r in ch.rows] == ["20231114-000029-abcd"] and ch.rows[0]["steps"] == 4
    assert reader.reads == reads + 1
    new = add_run(other, 30, "finished")
    other.ingest("20231114-000003-abcd", 1, 2, [{"v": 1, "seq": 9, "t": T0 + 9999, "type": "eval", "step": 3,
                                                   "accuracy": 0.91, "loss": 0.3, "n": 10}])
    ch = reader.changes(store)
    got = by_id(ch.rows)
    assert set(got) == {"20231114-000029-abcd", new, "20231114-000003-abcd"}
    assert got["20231114-000003-abcd"]["best_accuracy"] == 0.91


def test_a_deleted_run_is_noticed_and_a_finished_run_leaves_the_running_set(store, tmp_path):
    reader = RunsReader()
    reader.changes(store)
    other = Store(tmp_path / "runs.db")
    other.delete_run("20231114-000005-abcd")
    ch = reader.changes(store)
    assert ch.removed == {"20231114-000005-abcd"} and "20231114-000005-abcd" not in reader.raw
    other.finish_run("20231114-000029-abcd", "stopped")
    ch = reader.changes(store)
    assert [r["status"] for r in ch.rows] == ["stopped"] and reader.running == set()


def test_an_edit_of_a_finished_run_is_seen_by_a_full_read_and_at_the_latest_every_full_every_reads(store, tmp_path):
    reader = RunsReader()
    reader.changes(store)
    other = Store(tmp_path / "runs.db")
    other.update_run("20231114-000002-abcd", name="renamed")
    seen = []
    for _ in range(FULL_EVERY):
        seen += [r["name"] for r in reader.changes(store).rows]
    assert "renamed" in seen  # while a run runs: within FULL_EVERY reads
    other.update_run("20231114-000002-abcd", name="renamed again")
    assert [r["name"] for r in reader.changes(store, full=True).rows if not r["status"] == "running"] == \
        ["renamed again"]  # a full read returns only the rows that differ (and the running one)
    other.finish_run("20231114-000029-abcd", "stopped")
    reader.changes(store)
    other.update_run("20231114-000002-abcd", name="third")
    ch = reader.changes(store)  # nothing running: every read is full, so an edit is seen at once
    assert ch.full and [r["name"] for r in ch.rows] == ["third"]
