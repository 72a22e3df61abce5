"""Tags and notes in the store: schema 4, the migration from a version 3 file, one-transaction edits, and the
runs table's rows (tags, note, a config decoded only when read)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from core.export import LazyJson, public_rows, runs_table, table_text
from core.store import SCHEMA_VERSION, Store
from core.store.runs import KEEP
from core.tags import TagError, merge_tags, split_tags


def make_run(store: Store, rid: str, name: str, **extra):
    store.create_run({"id": rid, "kind": "train", "name": name, "status": "finished", "created_at": time.time(),
                      "config": {"learning_rate": 3e-4, "run_name": name}, "command": ["x"], "run_dir": "/x",
                      "model": "gpt2-tiny", "devices": "cpu:2", **extra})


def test_a_version_3_file_migrates_in_place_and_keeps_its_data(tmp_path):
    p = tmp_path / "runs.db"
    store = Store(p)
    make_run(store, "old", "kept")
    store.ingest("old", 0, 1, [{"v": 1, "seq": 0, "t": 1.0, "type": "step", "step": 1, "loss": 0.5,
                                "samples_per_s": 10.0}])
    store.close()
    # The same file as gpt2-tui with schema 3 wrote it: v4 only appended these two columns to runs.
    c = sqlite3.connect(p)
    c.execute("ALTER TABLE runs DROP COLUMN tags")
    c.execute("ALTER TABLE runs DROP COLUMN note")
    c.execute("PRAGMA user_version = 3")
    c.commit()
    c.close()
    assert "tags" not in {r[1] for r in sqlite3.connect(p).execute("PRAGMA table_info(runs)")}

    store = Store(p)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    run = store.get_run("old")
    assert run["name"] == "kept" and run["config"]["learning_rate"] == 3e-4 and run["status"] == "finished"
    assert run["tags"] == [] and run["note"] is None
    assert store.summary("old")["final_loss"] == 0.5 and [m["step"] for m in store.metrics("old")] == [1]
    assert store.tag_run("old", add=["best"], note="migrated")["tags"] == ["best"]
    # a new file has the columns in the same order as a migrated one (docs/SCHEMA.md lists one order)
    fresh = Store(tmp_path / "new.db")
    cols = [r[1] for r in store.conn.execute("PRAGMA table_info(runs)")]
    assert cols == [r[1] for r in fresh.conn.execute("PRAGMA table_info(runs)")] and cols[-2:] == ["tags", "note"]


def test_tag_run_adds_removes_replaces_and_sets_the_note(tmp_path):
    store = Store(tmp_path / "runs.db")
    make_run(store, "r1", "one")
    assert store.tag_run("r1", add=["best", "sweep"])["tags"] == ["best", "sweep"]
    assert store.tag_run("r1", add=["BEST", "lr"])["tags"] == ["best", "sweep", "lr"]  # any case: once
    assert store.tag_run("r1", remove=["Sweep"])["tags"] == ["best", "lr"]
    run = store.tag_run("r1", note="  the one we ship  ")
    assert run["tags"] == ["best", "lr"] and run["note"] == "the one we ship"
    run = store.tag_run("r1", tags=["final"], add=["x"])  # replace, then add
    assert run["tags"] == ["final", "x"] and run["note"] == "the one we ship"  # KEEP by default
    assert store.tag_run("r1", note=None)["note"] is None
    assert store.tag_run("r1", note="")["note"] is None  # an empty note is no note
    assert store.tag_run("r1", note=KEEP, tags=[])["tags"] == []
    assert store.tag_run("missing", add=["x"]) is None


def test_a_refused_tag_or_note_writes_nothing(tmp_path):
    store = Store(tmp_path / "runs.db")
    make_run(store, "r1", "one")
    store.tag_run("r1", add=["keep"], note="before")
    refused = [(["x" * 41], "after"), (["-neg"], "after"), (['a"b'], "after"), (["new"], "n" * 2001),
               ([f"t{i}" for i in range(20)], "after")]  # too long, '-', '"', a long note, 21 tags
    for add, note in refused:
        with pytest.raises(TagError):
            store.tag_run("r1", add=add, note=note)
        run = store.get_run("r1")
        assert run["tags"] == ["keep"] and run["note"] == "before"
    assert not store.conn.in_transaction


def test_split_and_merge_tags():
    assert split_tags("a, b  c,,d\tA") == ["a", "b", "c", "d"]
    assert split_tags(["x,y", "z"]) == ["x", "y", "z"]
    assert split_tags("") == [] and split_tags("lr:3e-4") == ["lr:3e-4"]
    assert merge_tags(["a", "b"], ["c"], ["A"]) == ["b", "c"]


def test_runs_table_rows_carry_tags_note_and_a_lazy_config(tmp_path):
    store = Store(tmp_path / "runs.db")
    make_run(store, "r1", "one")
    make_run(store, "r2", "two")
    store.tag_run("r2", add=["best", "sweep"], note="ship it")
    rows = {r["id"]: r for r in runs_table(store)}
    assert rows["r1"]["tags"] == [] and rows["r1"]["note"] is None
    assert rows["r2"]["tags"] == ["best", "sweep"] and rows["r2"]["note"] == "ship it"
    cfg = rows["r2"]["config"]
    assert isinstance(cfg, LazyJson) and cfg._value is None  # not decoded by the table read
    assert cfg["learning_rate"] == 3e-4 and dict(cfg) == {"learning_rate": 3e-4, "run_name": "two"}
    assert runs_table(store) == runs_table(store)  # two reads compare equal (the history's "changed?" check)
    assert all("config" not in r for r in public_rows(list(rows.values())))
    csv_text = table_text([rows["r2"]], "csv")
    assert csv_text.splitlines()[0].endswith(",tags,note") and '"best, sweep",ship it' in csv_text
