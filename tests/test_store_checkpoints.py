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
        (p / "config.json").write_text("{}")
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


def test_a_version_1_file_migrates_and_keeps_its_checkpoints_and_numbers(tmp_path):
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
    c = sqlite3.connect(p)
    c.executescript("""
        CREATE TABLE metrics (run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, loss REAL, lr REAL,
            samples_per_s REAL, tokens_per_s REAL, step_time REAL, t REAL, PRIMARY KEY (run_id, step)) WITHOUT ROWID;
        INSERT INTO metrics VALUES ('old', 1, 0, 0.9, 0, 10.0, 0, 0, 0), ('old', 2, 0, 0.8, 0, NULL, 0, 0, 0),
                                   ('old', 3, 0, 0.7, 0, 20.0, 0, 0, 0);
        CREATE TABLE evals (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, source TEXT NOT NULL, step INTEGER,
            checkpoint TEXT, eval_path TEXT, eval_sha TEXT, mode TEXT, accuracy REAL, loss REAL,
            n INTEGER, details TEXT, eval_run_id TEXT, t REAL);
    """)
    c.commit()
    c.close()
    s = Store(p)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert s.get_run("old")["tags"] == [] and s.get_run("old")["note"] is None  # v4's columns, empty
    # the runs table's numbers, filled in from the metrics already there
    assert s.summary("old") == {"metric_rows": 3, "last_step": 3, "mean_samples_per_s": 15.0, "final_loss": 0.7,
                                "best_accuracy": None}
    assert s.checkpoints("old") == [{"run_id": "old", "step": 5, "path": "/x/checkpoint-5", "t": 1.0,
                                     "deleted_at": None}]
    assert s.ingest("old", 0, 1, [ev(0, "checkpoint_deleted", step=5, path="/x/checkpoint-5")])
    assert s.checkpoints("old") == []


def _aggregate(s, rid):
    """What the runs table's numbers were before ingest kept them: aggregates over the metrics rows."""
    n, last, mean = s.conn.execute(
        "SELECT COUNT(*), MAX(step), AVG(samples_per_s) FROM metrics WHERE run_id = ?", (rid,)).fetchone()
    loss = s.conn.execute("SELECT loss FROM metrics WHERE run_id = ? ORDER BY step DESC LIMIT 1", (rid,)).fetchone()
    return n, last, mean, loss[0] if loss else None


def test_the_summary_kept_at_ingest_equals_the_aggregate_through_replays_and_restarts(tmp_path):
    s = Store(tmp_path / "runs.db")
    s.create_run({"id": "r", "status": "running", "run_dir": str(tmp_path), "config": {}})
    s.create_run({"id": "empty", "status": "running", "run_dir": str(tmp_path), "config": {}})
    assert s.summary("empty") == {"metric_rows": 0, "last_step": None, "mean_samples_per_s": None,
                                  "final_loss": None, "best_accuracy": None}
    seq = iter(range(10_000))

    def steps(a, b, sps=100.0, **kw):
        return [ev(next(seq), "step", step=i, loss=1.0 / i, samples_per_s=sps if isinstance(sps, str) else sps + i, **kw) for i in range(a, b + 1)]

    batches = [steps(1, 10), steps(11, 20, sps="nan"),  # NaN samples/s: NULL in SQLite, not in the mean
               steps(6, 15, sps=50.0),  # an elastic restart redoes 6..15 from its checkpoint at 5
               [*steps(21, 22), *steps(22, 22, sps=7.0)],  # the same step twice in one chunk: the last wins
               [ev(next(seq), "eval", step=22, accuracy=0.75, n=10)]]
    off = 0
    for b in batches:
        assert s.ingest("r", off, off + 1, b)
        off += 1
        got = s.summary("r")
        n, last, mean, loss = _aggregate(s, "r")
        assert (got["metric_rows"], got["last_step"], got["final_loss"]) == (n, last, loss)
        assert got["mean_samples_per_s"] == pytest.approx(mean)
    assert s.summary("r")["best_accuracy"] == 0.75 and s.summary("r")["metric_rows"] == 22
    assert set(s.summaries()) == {"r", "empty"}


def test_data_version_moves_when_another_connection_writes(tmp_path):
    a, b = Store(tmp_path / "runs.db"), Store(tmp_path / "runs.db")
    v = a.data_version()
    assert a.data_version() == v  # nothing happened
    b.create_run({"id": "r", "status": "running", "run_dir": str(tmp_path), "config": {}})
    assert a.data_version() != v
