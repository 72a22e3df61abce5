"""runs.db: idempotent ingest, final statuses, foreign/corrupt/newer files refused untouched."""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.events import EventWriter
from core.follow import sync_events
from core.store import SCHEMA_VERSION, Store, StoreError


def make_run(store, tmp_path, rid="r1"):
    run_dir = tmp_path / rid
    run_dir.mkdir()
    store.create_run({"id": rid, "status": "running", "run_dir": str(run_dir), "config": {"a": 1}})
    return run_dir


def test_db_file_is_private(tmp_path):
    Store(tmp_path / "runs.db")
    assert stat.S_IMODE(os.stat(tmp_path / "runs.db").st_mode) == 0o600


def test_ingest_is_exactly_once_across_followers(tmp_path):
    a = Store(tmp_path / "runs.db")
    b = Store(tmp_path / "runs.db")
    run_dir = make_run(a, tmp_path)
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("start", world_size=2, total_steps=30)
        for s in range(1, 21):
            w.emit("step", step=s, loss=1.0 / s)
        with open(run_dir / "events.jsonl", "a") as fh:
            fh.write("garbage\n")
        for s in range(21, 31):
            w.emit("step", step=s, loss=1.0 / s)
        w.emit("eval", step=30, accuracy=0.9, n=10)
        w.emit("checkpoint", step=30, path="/x/checkpoint-30")
        w.emit("end", status="finished")
    n1 = sync_events(a, "r1")
    n2 = sync_events(b, "r1")
    assert n1 == 34 and n2 == 0
    run = a.get_run("r1")
    assert run["status"] == "finished" and run["total_steps"] == 30 and run["bad_lines"] == 1
    assert [m["step"] for m in a.metrics("r1")] == list(range(1, 31))
    assert a.evals("r1")[0]["accuracy"] == 0.9
    assert a.checkpoints("r1")[0]["path"] == "/x/checkpoint-30"
    assert a.integrity_ok()


def test_stale_chunk_is_refused(tmp_path):
    s = Store(tmp_path / "runs.db")
    make_run(s, tmp_path)
    ev = {"v": 1, "seq": 0, "t": 1.0, "type": "step", "step": 1, "loss": 0.1}
    assert s.ingest("r1", 0, 50, [ev], bad_lines=1)
    assert not s.ingest("r1", 0, 50, [ev], bad_lines=1)
    assert s.get_run("r1")["bad_lines"] == 1


def test_finish_run_sets_a_final_status_once(tmp_path):
    s = Store(tmp_path / "runs.db")
    make_run(s, tmp_path)
    assert s.finish_run("r1", "failed", error="x")
    assert not s.finish_run("r1", "lost")
    assert s.get_run("r1")["status"] == "failed"


def test_foreign_database_is_refused_untouched(tmp_path):
    p = tmp_path / "other.db"
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE customers (id INTEGER)")
    c.commit()
    c.close()
    before = p.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        Store(p)
    assert p.read_bytes() == before


def test_corrupt_file_is_refused_untouched(tmp_path):
    p = tmp_path / "runs.db"
    p.write_bytes(b"this is not sqlite at all" * 100)
    before = p.read_bytes()
    with pytest.raises(StoreError, match="not a usable"):
        Store(p)
    assert p.read_bytes() == before


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "runs.db"
    Store(p).close()
    c = sqlite3.connect(p)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="newer"):
        Store(p)


def test_find_run_by_prefix_and_name(tmp_path):
    s = Store(tmp_path / "runs.db")
    s.create_run({"id": "20260101-000000-abcd", "name": "my run", "status": "running", "created_at": 1})
    s.create_run({"id": "20260102-000000-ef01", "name": "other", "status": "running", "created_at": 2})
    assert s.find_run("20260101")["id"] == "20260101-000000-abcd"
    assert s.find_run("my run")["id"] == "20260101-000000-abcd"
    assert s.find_run("last")["id"] == "20260102-000000-ef01"
    assert s.find_run("2026") is None  # ambiguous prefix


def test_opening_a_store_does_not_load_pandas_and_pandas_still_imports_after(tmp_path):
    code = ("import sys; from core.store import Store; s = Store(sys.argv[1]); s.close(); "
            "print('pandas' in sys.modules); import pandas; print(hasattr(pandas, 'DataFrame'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs.db")], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
