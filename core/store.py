"""runs.db: the index of runs, metrics, evals and checkpoints (sqlite-utils, WAL).

Files under ``runs/<id>/`` are the durable log; this store is rebuilt from them by ingest, which is
idempotent: every row has a natural key (run, step / seq), and a chunk of events is applied only if the
run's stored byte offset still equals the chunk's start, so two followers never count a chunk twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.events import as_float

if TYPE_CHECKING:
    import numpy as np

SCHEMA_VERSION = 1
APP_ID = "gpt2-tui"
DB_ENV = "GPT2_TUI_DB"
STATUSES = ("running", "finished", "failed", "stopped", "lost")


class StoreError(RuntimeError):
    """The database cannot be used (corrupt, foreign, newer schema); the message says what to do."""


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or "runs.db")


SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'train', name TEXT, status TEXT NOT NULL,
        created_at REAL, started_at REAL, ended_at REAL, last_event_at REAL,
        config TEXT, command TEXT, run_dir TEXT, output_dir TEXT, model TEXT, devices TEXT,
        world_size INTEGER, nnodes INTEGER, host TEXT, total_steps INTEGER, samples_per_epoch INTEGER,
        pgid INTEGER, launcher_pid INTEGER, exit_code INTEGER, error TEXT, versions TEXT,
        device_info TEXT, bad_lines INTEGER NOT NULL DEFAULT 0, event_offset INTEGER NOT NULL DEFAULT 0,
        resumed_from TEXT, parent_run TEXT, checkpoint TEXT, eval_path TEXT, eval_sha TEXT, mode TEXT,
        alerts TEXT)""",
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, loss REAL, lr REAL,
        samples_per_s REAL, tokens_per_s REAL, step_time REAL, t REAL,
        PRIMARY KEY (run_id, step)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS evals (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, source TEXT NOT NULL, step INTEGER,
        checkpoint TEXT, eval_path TEXT, eval_sha TEXT, mode TEXT, accuracy REAL, loss REAL,
        n INTEGER, details TEXT, eval_run_id TEXT, t REAL)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, path TEXT NOT NULL, t REAL,
        PRIMARY KEY (run_id, step))""",
    """CREATE TABLE IF NOT EXISTS logs (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL, level TEXT, text TEXT,
        PRIMARY KEY (run_id, seq))""",
    """CREATE TABLE IF NOT EXISTS rank_health (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, rank INTEGER NOT NULL, host TEXT,
        local_rank INTEGER, device TEXT, step_time REAL, samples INTEGER, mem_bytes INTEGER,
        util REAL, t REAL, PRIMARY KEY (run_id, step, rank))""",
    "CREATE INDEX IF NOT EXISTS evals_run ON evals (run_id)",
    "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)",
]

RUN_JSON_FIELDS = ("config", "command", "versions", "device_info", "alerts")


def _retry_locked(fn: Any, timeout: float = 30.0) -> Any:
    """Run ``fn`` again while SQLite says 'database is locked', up to ``timeout`` seconds.

    Switching a database to WAL, and the first read of a WAL database whose -shm another process is
    building, take a lock for which SQLite does not call the busy handler: 5 processes opening one
    runs.db at once got "database is locked" here (tests/faults/test_fault_store.py).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """One connection to runs.db. Cheap to open; open one per thread."""

    def __init__(self, path: str | os.PathLike[str] | None = None, create: bool = True):
        self.path = Path(path) if path is not None else default_db_path()
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: no such database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            # Read only until we know the file is ours: switching to WAL rewrites the header.
            tables = {r[0] for r in _retry_locked(
                lambda: conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall())}
        except sqlite3.DatabaseError as e:
            if "locked" in str(e):
                raise StoreError(f"{self.path} stayed locked by another process for 30 s; try again") from None
            raise StoreError(
                f"{self.path} is not a usable gpt2-tui database ({e}). It was left untouched; "
                f"move it aside or pass --db PATH (or set {DB_ENV}) to use another file."
            ) from None
        self.conn = conn
        self._check_ours(tables)
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchall())
        conn.execute("PRAGMA synchronous = NORMAL")
        self.db = _sqlite_utils().Database(conn)
        self._migrate(tables)

    # ------------------------------------------------------------------ schema
    def _check_ours(self, tables: set[str]) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if tables and "meta" not in tables:
            raise StoreError(
                f"{self.path} is an SQLite database of another program (tables: "
                f"{', '.join(sorted(tables))}). It was left untouched; pass --db PATH to use another file."
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this gpt2-tui understands "
                f"({SCHEMA_VERSION}). Upgrade gpt2-tui; the file was left untouched."
            )

    def _migrate(self, tables: set[str]) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        # Migrate (or create) once, under the write lock: a second process waits, then sees the new version.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                for stmt in SCHEMA:
                    self.conn.execute(stmt)
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('app', ?)", (APP_ID,))
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ runs
    def create_run(self, run: dict[str, Any]) -> None:
        row = {**run}
        for k in RUN_JSON_FIELDS:
            if k in row and not isinstance(row[k], str) and row[k] is not None:
                row[k] = json.dumps(row[k])
        row.setdefault("created_at", time.time())
        row.setdefault("status", "running")
        self.db.table("runs").insert(row)

    def update_run(self, run_id: str, **fields: Any) -> None:
        for k in RUN_JSON_FIELDS:
            if k in fields and not isinstance(fields[k], str) and fields[k] is not None:
                fields[k] = json.dumps(fields[k])
        self.db.table("runs").update(run_id, fields)

    def finish_run(self, run_id: str, status: str, **fields: Any) -> bool:
        """Set a final status unless the run already has one; True when this call set it."""
        assert status in STATUSES and status != "running", status
        sets = ", ".join(f"{k} = ?" for k in ["status", *fields])
        cur = self.conn.execute(
            f"UPDATE runs SET {sets}, ended_at = COALESCE(ended_at, ?) WHERE id = ? AND status = 'running'",
            [status, *fields.values(), time.time(), run_id],
        )
        return cur.rowcount > 0

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        cols = [d[0] for d in self.conn.execute("SELECT * FROM runs LIMIT 0").description]
        return _decode_run(dict(zip(cols, row, strict=True)))

    def find_run(self, ref: str) -> dict[str, Any] | None:
        """A run by id, unique id prefix, or exact name (newest wins); 'last' = newest run."""
        if ref == "last":
            rows = list(self.db.query("SELECT id FROM runs WHERE kind='train' ORDER BY created_at DESC LIMIT 1"))
            return self.get_run(rows[0]["id"]) if rows else None
        run = self.get_run(ref)
        if run:
            return run
        rows = list(self.db.query("SELECT id FROM runs WHERE id LIKE ? ORDER BY created_at DESC",
                                  [ref.replace("%", "") + "%"]))
        if len(rows) == 1:
            return self.get_run(rows[0]["id"])
        rows = list(self.db.query("SELECT id FROM runs WHERE name = ? ORDER BY created_at DESC LIMIT 1", [ref]))
        return self.get_run(rows[0]["id"]) if rows else None

    def list_runs(self, kind: str | None = "train", status: str | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        return [_decode_run(r) for r in self.db.query(sql + " ORDER BY created_at DESC", args)]

    def running_runs(self) -> list[dict[str, Any]]:
        return self.list_runs(kind=None, status="running")

    def eval_jobs(self, run_id: str) -> list[dict[str, Any]]:
        """The evaluation jobs launched on a run's checkpoints (runs of kind 'eval' with it as parent)."""
        return list(self.db.query("SELECT * FROM runs WHERE kind = 'eval' AND parent_run = ? ORDER BY created_at",
                                  [run_id]))

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a run and everything recorded about it, in one transaction: its metrics, checkpoints, logs
        and rank health, every eval of it (its training's and its eval jobs'), and the eval jobs launched on
        its checkpoints; an eval job's own results go with it. Returns the ids of the eval jobs deleted
        with the run (their folders are the caller's to remove)."""
        with _tx(self.conn):
            jobs = [j["id"] for j in self.eval_jobs(run_id)]
            for rid in (run_id, *jobs):
                for table in ("metrics", "checkpoints", "logs", "rank_health"):
                    self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (rid,))
                self.conn.execute("DELETE FROM evals WHERE run_id = ? OR eval_run_id = ?", (rid, rid))
                self.conn.execute("DELETE FROM runs WHERE id = ?", (rid,))
        return jobs

    # ------------------------------------------------------------------ ingest
    def ingest(self, run_id: str, start_offset: int, end_offset: int, events: Iterable[dict[str, Any]],
               bad_lines: int = 0) -> bool:
        """Apply one chunk of a run's event file, atomically; False if another follower already did."""
        with _tx(self.conn):
            row = self.conn.execute(
                "SELECT event_offset, status, kind, parent_run, checkpoint, eval_path, eval_sha, mode, started_at"
                " FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row[0] != start_offset:
                return False
            run_fields: dict[str, Any] = {"event_offset": end_offset}
            metrics: list[tuple[Any, ...]] = []
            logs: list[tuple[Any, ...]] = []
            health: list[tuple[Any, ...]] = []
            last_t = None
            for raw_ev in events:
                ev = well_formed(raw_ev)
                if ev is None:  # parses, but lies about a field a table needs: a bad line, not a crash
                    bad_lines += 1
                    continue
                last_t = ev.get("t", last_t)
                typ = ev["type"]
                if typ == "step":
                    metrics.append((run_id, ev.get("step"), ev.get("epoch"), as_float(ev.get("loss")),
                                    as_float(ev.get("lr")), as_float(ev.get("samples_per_s")),
                                    as_float(ev.get("tokens_per_s")), as_float(ev.get("step_time")), ev["t"]))
                elif typ == "eval":
                    if row[2] == "eval":
                        # The job's own record says what was evaluated; the event carries the numbers.
                        ev = {**ev, "checkpoint": row[4], "eval_path": row[5], "eval_sha": row[6], "mode": row[7]}
                        self._insert_checkpoint_eval(row[3] or run_id, run_id, ev)
                    else:
                        self._insert_train_eval(run_id, ev)
                elif typ == "checkpoint":
                    self.conn.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)",
                                      (run_id, ev.get("step"), ev.get("path"), ev["t"]))
                elif typ == "log":
                    logs.append((run_id, ev["seq"], ev["t"], ev.get("level", "info"), str(ev.get("text", ""))))
                elif typ == "heartbeat":
                    health.append((run_id, ev.get("step", 0), ev.get("rank", 0), ev.get("host"), ev.get("local_rank"),
                                   ev.get("device"), None, None, ev.get("mem_bytes"), None, ev["t"]))
                elif typ == "ranks":
                    for r in ev.get("ranks") or []:
                        if isinstance(r, dict):
                            health.append((run_id, ev.get("step", 0), r.get("rank", 0), r.get("host"),
                                           r.get("local_rank"), r.get("device"), as_float(r.get("step_time")),
                                           r.get("samples"), r.get("mem_bytes"), as_float(r.get("util")), ev["t"]))
                elif typ == "start":
                    run_fields.update(
                        # An elastic restart writes a second start: the run started at the first.
                        started_at=run_fields.get("started_at") or row[8] or ev["t"],
                        world_size=ev.get("world_size"), total_steps=ev.get("total_steps"),
                        samples_per_epoch=ev.get("samples_per_epoch"), nnodes=ev.get("nnodes"),
                        versions=json.dumps(ev.get("versions") or {}),
                        device_info=json.dumps(ev.get("devices") or []),
                    )
                elif typ == "end":
                    status = ev.get("status")
                    if status in ("finished", "failed", "stopped") and row[1] == "running":
                        run_fields["status"] = status
                        run_fields["ended_at"] = ev["t"]
                        if ev.get("reason") and status != "finished":
                            run_fields["error"] = str(ev.get("reason"))
            if metrics:
                self.conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?,?,?,?)", metrics)
            if logs:
                self.conn.executemany("INSERT OR REPLACE INTO logs VALUES (?,?,?,?,?)", logs)
            if health:
                self.conn.executemany("INSERT OR REPLACE INTO rank_health VALUES (?,?,?,?,?,?,?,?,?,?,?)", health)
            if last_t is not None:
                run_fields["last_event_at"] = last_t
            sets = ", ".join(f"{k} = ?" for k in run_fields)
            self.conn.execute(f"UPDATE runs SET {sets}, bad_lines = bad_lines + ? WHERE id = ?",
                              [*run_fields.values(), bad_lines, run_id])
        return True

    def _insert_train_eval(self, run_id: str, ev: dict[str, Any]) -> None:
        details = {k: ev[k] for k in ("precision", "recall", "f1", "confusion", "samples_per_s") if k in ev}
        self.conn.execute(
            "INSERT OR REPLACE INTO evals (id, run_id, source, step, checkpoint, eval_path, eval_sha, mode,"
            " accuracy, loss, n, details, t) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (f"{run_id}:train:{ev.get('step')}", run_id, "train", ev.get("step"), ev.get("checkpoint"),
             ev.get("eval_path"), ev.get("eval_sha"), ev.get("mode", "classify"), as_float(ev.get("accuracy")),
             as_float(ev.get("loss")), ev.get("n"), json.dumps(details), ev["t"]),
        )

    def _insert_checkpoint_eval(self, parent: str, eval_run_id: str, ev: dict[str, Any]) -> None:
        """An evaluation launched on a checkpoint: one row per (checkpoint, file content, mode)."""
        details = {k: ev[k] for k in ("precision", "recall", "f1", "confusion", "samples_per_s") if k in ev}
        key = eval_key(str(ev.get("checkpoint")), str(ev.get("eval_sha")), str(ev.get("mode", "classify")))
        self.conn.execute(
            "INSERT OR REPLACE INTO evals (id, run_id, source, step, checkpoint, eval_path, eval_sha, mode,"
            " accuracy, loss, n, details, eval_run_id, t) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, parent, "eval", ev.get("step"), ev.get("checkpoint"), ev.get("eval_path"), ev.get("eval_sha"),
             ev.get("mode", "classify"), as_float(ev.get("accuracy")), as_float(ev.get("loss")), ev.get("n"),
             json.dumps(details), eval_run_id, ev["t"]),
        )

    def find_eval(self, checkpoint: str, eval_sha: str, mode: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM evals WHERE id = ?", [eval_key(checkpoint, eval_sha, mode)]))
        if not rows:
            return None
        rows[0]["details"] = json.loads(rows[0]["details"]) if rows[0].get("details") else {}
        return rows[0]

    # ------------------------------------------------------------------ queries
    def metrics(self, run_id: str, after_step: int | None = None) -> list[dict[str, Any]]:
        if after_step is None:
            return list(self.db.query("SELECT * FROM metrics WHERE run_id = ? ORDER BY step", [run_id]))
        return list(self.db.query("SELECT * FROM metrics WHERE run_id = ? AND step > ? ORDER BY step",
                                  [run_id, after_step]))

    def metric_arrays(self, run_id: str, after_step: int | None = None) -> dict[str, np.ndarray]:
        """The chart columns of a run's metrics (``METRIC_ARRAY_COLUMNS``) as float64 numpy arrays in step
        order, NULL as NaN: a million rows in well under a second, where ``metrics`` builds a dict per row."""
        import itertools

        import numpy as np

        cols = METRIC_ARRAY_COLUMNS[1:]
        where = "run_id = ?" if after_step is None else "run_id = ? AND step > ?"
        args: tuple[Any, ...] = (run_id,) if after_step is None else (run_id, after_step)
        # np.fromiter stops at a None: NULL is read as -DBL_MAX (never a real loss, rate or throughput) and,
        # only where that value shows up, a second query says which of those cells are NULL (-> NaN).
        fill = -np.finfo(np.float64).max
        cur = self.conn.execute(f"SELECT step, {', '.join(f'IFNULL({c}, ?)' for c in cols)} FROM metrics"
                                f" WHERE {where} ORDER BY step", (*[float(fill)] * len(cols), *args))
        table = np.fromiter(itertools.chain.from_iterable(cur), np.float64).reshape(-1, len(METRIC_ARRAY_COLUMNS))
        if len(table) and (table[:, 1:] == fill).any():
            nulls = self.conn.execute(
                f"SELECT step, {', '.join(f'{c} IS NULL' for c in cols)} FROM metrics WHERE {where} AND step <= ?"
                f" AND ({' OR '.join(f'{c} IS NULL' for c in cols)}) ORDER BY step", (*args, table[-1, 0])).fetchall()
            if nulls:
                flagged = np.array(nulls, dtype=np.float64)
                rows = np.searchsorted(table[:, 0], flagged[:, 0])
                keep = table[rows, 0] == flagged[:, 0]  # a row written between the two reads is not in the table
                rows, flags = rows[keep], flagged[keep, 1:].astype(bool)
                block = table[rows, 1:]
                block[flags] = np.nan
                table[rows, 1:] = block
        return {c: np.ascontiguousarray(table[:, i]) for i, c in enumerate(METRIC_ARRAY_COLUMNS)}

    def metric_span(self, run_id: str) -> tuple[int, int] | None:
        """(first step, last step) of a run's metrics from the primary key alone (no scan); None if none."""
        lo = self.conn.execute("SELECT MIN(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
        if lo is None:
            return None
        return lo, self.conn.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]

    def metric_preview(self, run_id: str, max_points: int) -> tuple[dict[str, np.ndarray], int]:
        """Every k-th step of a run's chart columns (first and last step always in), k chosen so about
        ``max_points`` come back, as ``metric_arrays`` does them; returns (arrays, k).

        SQLite filters the rows, so a million-step run's preview costs one scan without a Python tuple
        per row: a tenth of ``metric_arrays``. A page draws this first and the full curve when it lands.
        """
        import numpy as np

        span = self.metric_span(run_id)
        if span is None:
            return {c: np.empty(0) for c in METRIC_ARRAY_COLUMNS}, 1
        lo, hi = span
        k = max(1, -(-(hi - lo + 1) // max(1, max_points)))
        cols = ", ".join(METRIC_ARRAY_COLUMNS)
        rows = self.conn.execute(
            f"SELECT {cols} FROM metrics WHERE run_id = ? AND ((step - ?) % ? = 0 OR step = ?) ORDER BY step",
            (run_id, lo, k, hi)).fetchall()
        table = np.array(rows, dtype=np.float64).reshape(-1, len(METRIC_ARRAY_COLUMNS))  # None -> NaN
        return {c: np.ascontiguousarray(table[:, i]) for i, c in enumerate(METRIC_ARRAY_COLUMNS)}, k

    def evals(self, run_id: str) -> list[dict[str, Any]]:
        rows = list(self.db.query("SELECT * FROM evals WHERE run_id = ? ORDER BY t, step", [run_id]))
        for r in rows:
            r["details"] = json.loads(r["details"]) if r.get("details") else {}
        return rows

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step", [run_id]))

    def logs(self, run_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = list(self.db.query("SELECT * FROM logs WHERE run_id = ? ORDER BY seq DESC LIMIT ?", [run_id, limit]))
        return rows[::-1]

    def rank_health(self, run_id: str) -> list[dict[str, Any]]:
        """The latest health row of each rank."""
        return list(self.db.query(
            "SELECT h.* FROM rank_health h JOIN (SELECT rank, MAX(step) AS s FROM rank_health WHERE run_id = ?"
            " GROUP BY rank) m ON h.rank = m.rank AND h.step = m.s WHERE h.run_id = ? ORDER BY h.rank",
            [run_id, run_id]))

    def summary(self, run_id: str) -> dict[str, Any]:
        """Aggregates for the runs table: steps done, final loss, best accuracy, mean samples/s."""
        m = self.conn.execute(
            "SELECT COUNT(*), MAX(step), AVG(samples_per_s) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        last = self.conn.execute(
            "SELECT loss FROM metrics WHERE run_id = ? ORDER BY step DESC LIMIT 1", (run_id,)).fetchone()
        best = self.conn.execute("SELECT MAX(accuracy) FROM evals WHERE run_id = ?", (run_id,)).fetchone()
        return {"metric_rows": m[0], "last_step": m[1], "mean_samples_per_s": m[2],
                "final_loss": last[0] if last else None, "best_accuracy": best[0]}

    def scaling(self, run_id: str) -> dict[str, Any] | None:
        """samples/s per rank against the best 1-rank run of the same model (1.0 = perfect scaling)."""
        run = self.conn.execute("SELECT model, world_size FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None or not run[1]:
            return None
        mine = self.conn.execute("SELECT AVG(samples_per_s) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
        best = self.conn.execute(
            "SELECT r.id, AVG(m.samples_per_s) AS sps FROM runs r JOIN metrics m ON m.run_id = r.id"
            " WHERE r.kind = 'train' AND r.model = ? AND r.world_size = 1 AND r.id != ?"
            " GROUP BY r.id ORDER BY sps DESC LIMIT 1", (run[0], run_id)).fetchone()
        per_rank = mine / run[1] if mine else None
        out: dict[str, Any] = {"world_size": run[1], "samples_per_s_per_rank": per_rank,
                               "baseline_run": None, "baseline_samples_per_s": None, "efficiency": None}
        if best and per_rank:
            out.update(baseline_run=best[0], baseline_samples_per_s=best[1], efficiency=per_rank / best[1])
        return out

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _sqlite_utils() -> Any:
    """sqlite_utils, imported without pandas.

    sqlite_utils imports pandas when it is installed (paddlenlp installs it) only to map ``pd.Timestamp``
    values to TEXT columns; the store never writes pandas values, and the import costs every process that
    opens a store ~0.3 s of CPU (``gpt2-tui runs``, the dashboard's first read). So pandas is hidden while
    sqlite_utils loads, unless something already loaded it. Imported on first use, not at module import.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sqlite_utils
    finally:
        if "pandas" in sys.modules and sys.modules["pandas"] is None:
            del sys.modules["pandas"]
    return sqlite_utils


# The columns of Store.metric_arrays, in its arrays' order.
METRIC_ARRAY_COLUMNS = ("step", "loss", "lr", "samples_per_s", "tokens_per_s")

# Event fields that ingest binds to a table column as they are: each must be a scalar (or absent).
_COLUMN_FIELDS = frozenset({"step", "epoch", "path", "level", "rank", "host", "local_rank", "device", "mem_bytes",
                            "samples", "world_size", "total_steps", "samples_per_epoch", "nnodes", "checkpoint",
                            "eval_path", "eval_sha", "mode", "n"})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    """A column field holding a list or an object becomes None (SQLite cannot bind it)."""
    return {k: None if k in _COLUMN_FIELDS and v is not None and not isinstance(v, (int, float, str)) else v
            for k, v in d.items()}


def well_formed(ev: dict[str, Any]) -> dict[str, Any] | None:
    """An event whose fields fit the tables (odd column values made None), or None when it cannot be stored.

    core.events.parse_line checks the envelope (v, seq, t, type); this checks what ingest needs: a step
    number on step and checkpoint events, a path on checkpoints, whole numbers for ranks.
    """
    typ = ev["type"]
    if typ in ("step", "checkpoint") and not _is_int(ev.get("step")):
        return None
    if typ == "checkpoint" and not isinstance(ev.get("path"), str):
        return None
    if typ in ("heartbeat", "ranks") and "step" in ev and not _is_int(ev["step"]):
        return None
    if typ == "eval" and ev.get("step") is not None and not _is_int(ev["step"]):
        return None
    if typ == "heartbeat" and "rank" in ev and not _is_int(ev["rank"]):
        return None
    if typ == "ranks" and not isinstance(ev.get("ranks", []), (list, type(None))):
        return None
    out = _scalars(ev)
    if typ == "ranks":
        out["ranks"] = [_scalars(r) for r in ev.get("ranks") or []
                        if isinstance(r, dict) and _is_int(r.get("rank", 0))]
    return out


def eval_key(checkpoint: str, eval_sha: str, mode: str) -> str:
    """Same checkpoint, same file content, same mode: the same evaluation."""
    import hashlib

    real = os.path.realpath(checkpoint)
    return "eval:" + hashlib.sha256(f"{real}|{eval_sha}|{mode}".encode()).hexdigest()[:20]


class _tx:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so busy_timeout applies (no deadlock)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    for k in RUN_JSON_FIELDS:
        if isinstance(row.get(k), str):
            try:
                row[k] = json.loads(row[k])
            except ValueError:
                pass
    return row
