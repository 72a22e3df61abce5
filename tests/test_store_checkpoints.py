"""checkpoint_deleted: a checkpoint that save_total_limit removed is no longer offered; v1 files migrate."""

import sqlite3

import pytest

from core.evaljob import resolve_checkpoint
from core.launch import LaunchError
from core.store import SCHEMA_VERSION, Store


def ev(seq, typ, **kw):
    return {"v": 1, "seq": seq, "t": 100.0 + seq, "type": typ, **kw}


def test_a_deleted_checkpoint_is_not_offered_and_a_resave_brings_it_back(tmp_path):
    s = Store(tmp_path / "runs.db")
    s.create_run({"id": "r", "status": "running", "run_dir": str(tmp_path), "config": {}})
    ck = {n: tmp_path / f"checkpoint-{n}" for n in (10, 20)}
    for p in ck.values():
        p.mkdir()
        (p / "model_state.pdparams").write_bytes(b"x")
    assert s.ingest("r", 0, 10, [ev(0, "checkpoint", step=10, path=str(ck[10])),
                                 ev(1, "checkpoint", step=20, path=str(ck[20])),
                                 ev(2, "checkpoint_deleted", step=10, path=str(ck[10]))])
    assert [c["step"] for c in s.checkpoints("r")] == [20]
    gone = s.checkpoints("r", include_deleted=True)
    assert [(c["step"], c["deleted_at"]) for c in gone] == [(10, 102.0), (20, None)]
    # `gpt2-tui eval --checkpoint 10` and the results pane read the same list: step 10 is not there.
    run = s.get_run("r")
    with pytest.raises(LaunchError, match="no checkpoint at step 10"):
        resolve_checkpoint(s, run, "10")
    assert resolve_checkpoint(s, run, "latest") == (ck[20].resolve(), 20)
    # An elastic restart that saves step 10 again makes it a checkpoint again.
    assert s.ingest("r", 10, 20, [ev(3, "checkpoint", step=10, path=str(ck[10]))])
    assert [c["step"] for c in s.checkpoints("r")] == [10, 20]
    assert s.get_run("r")["bad_lines"] == 0


def test_a_version_1_file_migrates_and_keeps_its_checkpoints(tmp_path):
    p = tmp_path / "runs.db"
    c = sqlite3.connect(p)
    c.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('app', 'gpt2-tui');
        CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'train', name TEXT, status TEXT NOT NULL,
            created_at REAL, started_at REAL, ended_at REAL, last_event_at REAL, config TEXT, command TEXT,
            run_dir TEXT, output_dir TEXT, model TEXT, devices TEXT, world_size INTEGER, nnodes INTEGER, host TEXT,
            total_steps INTEGER, samples_per_epoch INTEGER, pgid INTEGER, launcher_pid INTEGER, exit_code INTEGER,
            error TEXT, versions TEXT, device_info TEXT, bad_lines INTEGER NOT NULL DEFAULT 0,
            event_offset INTEGER NOT NULL DEFAULT 0, resumed_from TEXT, parent_run TEXT, checkpoint TEXT,
            eval_path TEXT, eval_sha TEXT, mode TEXT, alerts TEXT);
        CREATE TABLE checkpoints (run_id TEXT NOT NULL, step INTEGER NOT NULL, path TEXT NOT NULL, t REAL,
            PRIMARY KEY (run_id, step));
        INSERT INTO runs (id, status, run_dir) VALUES ('old', 'finished', '/x');
        INSERT INTO checkpoints VALUES ('old', 5, '/x/checkpoint-5', 1.0);
        PRAGMA user_version = 1;
    """)
    c.commit()
    c.close()
    s = Store(p)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert s.checkpoints("old") == [{"run_id": "old", "step": 5, "path": "/x/checkpoint-5", "t": 1.0,
                                     "deleted_at": None}]
    assert s.ingest("old", 0, 1, [ev(0, "checkpoint_deleted", step=5, path="/x/checkpoint-5")])
    assert s.checkpoints("old") == []
