"""runs.db's tables, its migrations, and opening a file safely (ours, not newer, not corrupt)."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

SCHEMA_VERSION = 4
APP_ID = "gpt2-tui"
DB_ENV = "GPT2_TUI_DB"
STATUSES = ("running", "finished", "failed", "stopped", "lost")
T = TypeVar("T")


class StoreError(RuntimeError):
    """The database cannot be used (corrupt, foreign, newer schema); the message says what to do."""


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or "runs.db")


# The newest schema: what a new file gets.
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
        alerts TEXT, metric_rows INTEGER NOT NULL DEFAULT 0, last_step INTEGER, final_loss REAL,
        sps_sum REAL NOT NULL DEFAULT 0, sps_n INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]', note TEXT)""",
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, loss REAL, lr REAL,
        samples_per_s REAL, tokens_per_s REAL, step_time REAL, t REAL,
        PRIMARY KEY (run_id, step)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS evals (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, source TEXT NOT NULL, step INTEGER,
        checkpoint TEXT, eval_path TEXT, eval_sha TEXT, mode TEXT, accuracy REAL, loss REAL,
        n INTEGER, details TEXT, eval_run_id TEXT, t REAL)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, path TEXT NOT NULL, t REAL, deleted_at REAL,
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

# From version N-1 to N: statements that bring a file written by an older gpt2-tui up to date.
MIGRATIONS: dict[int, list[str]] = {
    # save_total_limit deletes checkpoints: the row stays (its evals keep their folder name), marked gone.
    2: ["ALTER TABLE checkpoints ADD COLUMN deleted_at REAL"],
    # The runs table's numbers kept on the run row by ingest (core.store.ingest), so listing 10,000 runs
    # reads 10,000 rows, not every run's metrics (3 M rows: 1.9 s for `runs --json`, issue 14).
    3: [*(f"ALTER TABLE runs ADD COLUMN {c}" for c in (
            "metric_rows INTEGER NOT NULL DEFAULT 0", "last_step INTEGER", "final_loss REAL",
            "sps_sum REAL NOT NULL DEFAULT 0", "sps_n INTEGER NOT NULL DEFAULT 0")),
        """UPDATE runs SET
            metric_rows = (SELECT COUNT(*) FROM metrics m WHERE m.run_id = runs.id),
            last_step = (SELECT MAX(step) FROM metrics m WHERE m.run_id = runs.id),
            final_loss = (SELECT loss FROM metrics m WHERE m.run_id = runs.id ORDER BY step DESC LIMIT 1),
            sps_sum = IFNULL((SELECT SUM(samples_per_s) FROM metrics m WHERE m.run_id = runs.id), 0),
            sps_n = (SELECT COUNT(samples_per_s) FROM metrics m WHERE m.run_id = runs.id)"""],
    # A run's tags (JSON list of strings) and free-text note, set by `gpt2-tui tag` and the dashboard.
    4: ["ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'", "ALTER TABLE runs ADD COLUMN note TEXT"],
}


def retry_locked(fn: Callable[[], T], timeout: float = 30.0) -> T:
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


def connect(path: Path, create: bool) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, at the newest schema; refuses a file that is not ours."""
    if not path.exists():
        if not create:
            raise StoreError(f"{path}: no such database")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        # Read only until we know the file is ours: switching to WAL rewrites the header.
        tables = {r[0] for r in retry_locked(
            lambda: conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall())}
    except sqlite3.DatabaseError as e:
        if "locked" in str(e):
            raise StoreError(f"{path} stayed locked by another process for 30 s; try again") from None
        raise StoreError(
            f"{path} is not a usable gpt2-tui database ({e}). It was left untouched; "
            f"move it aside or pass --db PATH (or set {DB_ENV}) to use another file."
        ) from None
    check_ours(conn, path, tables)
    retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchall())
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    return conn


def check_ours(conn: sqlite3.Connection, path: Path, tables: set[str]) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if tables and "meta" not in tables:
        raise StoreError(
            f"{path} is an SQLite database of another program (tables: "
            f"{', '.join(sorted(tables))}). It was left untouched; pass --db PATH to use another file."
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this gpt2-tui understands "
            f"({SCHEMA_VERSION}). Upgrade gpt2-tui; the file was left untouched."
        )


def migrate(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    # Migrate (or create) once, under the write lock: a second process waits, then sees the new version.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:  # new, or only our meta table: the newest schema at once
            for stmt in SCHEMA:
                conn.execute(stmt)
        else:
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS.get(v, []):
                    conn.execute(stmt)
        if version < SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('app', ?)", (APP_ID,))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def sqlite_utils_module() -> Any:
    """sqlite_utils, imported without pandas or numpy.

    sqlite_utils imports pandas when it is installed (paddlenlp installs it) only to map ``pd.Timestamp``
    values to TEXT columns, and numpy only to map numpy scalar types to column types; the store declares
    its columns itself and never writes pandas or numpy values, and the imports cost every process that
    opens a store ~0.3 s (pandas) and ~0.07 s (numpy) of CPU (``gpt2-tui runs``, the dashboard's first
    read, ``gpt2-tui train`` before each launch). So both are hidden while sqlite_utils loads, unless
    something already loaded them. Imported on first use, not at module import.
    """
    if "sqlite_utils" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return sqlite_utils


class Tx:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so busy_timeout applies (no deadlock)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class StoreBase:
    """What every part of the Store shares: the path, the connection, rows as dicts, sqlite-utils."""

    path: Path
    conn: sqlite3.Connection
    _db: Any = None

    @property
    def db(self) -> Any:
        """sqlite-utils' view of the connection, for inserting and updating run rows. Made on the first
        write: its import (~0.3-0.7 s here) is what a read-only `gpt2-tui runs --json` would pay most."""
        if self._db is None:
            self._db = sqlite_utils_module().Database(self.conn)
        return self._db

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows as dicts (typed by the caller: RunRow, EvalRow, ...)."""
        cur = self.conn.execute(sql, args)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]
