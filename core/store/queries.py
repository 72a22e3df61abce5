"""Reading the store: a run's metrics (as rows or numpy arrays), evals, checkpoints, logs and aggregates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from core.records import CheckpointRow, EvalRow, MetricRow, Summary
from core.store.schema import StoreBase

if TYPE_CHECKING:
    import numpy as np

# The columns of Store.metric_arrays, in its arrays' order.
METRIC_ARRAY_COLUMNS = ("step", "loss", "lr", "samples_per_s", "tokens_per_s")
# What the runs table needs of a run row (Store.table_runs): not the JSON columns (config, command,
# versions), which are most of a row's bytes and were half of reading 10,000 runs.
TABLE_RUN_COLUMNS = ("rowid", "id", "name", "status", "model", "devices", "total_steps", "created_at", "started_at",
                     "ended_at", "last_event_at", "run_dir", "metric_rows", "last_step", "sps_sum", "sps_n",
                     "final_loss", "tags", "note", "config")


class QueriesPart(StoreBase):
    def metrics(self, run_id: str, after_step: int | None = None) -> list[MetricRow]:
        if after_step is None:
            return self.rows("SELECT * FROM metrics WHERE run_id = ? ORDER BY step", [run_id])
        return self.rows("SELECT * FROM metrics WHERE run_id = ? AND step > ? ORDER BY step",
                                  [run_id, after_step])

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

    def step_times(self, run_id: str, steps: list[int]) -> dict[int, float]:
        """When the run logged each of ``steps`` (the step event's time), by primary key: no scan."""
        out: dict[int, float] = {}
        for step in steps:
            row = self.conn.execute("SELECT t FROM metrics WHERE run_id = ? AND step = ?", (run_id, step)).fetchone()
            if row is not None and row[0] is not None:
                out[step] = float(row[0])
        return out

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

    def evals(self, run_id: str) -> list[EvalRow]:
        rows = self.rows("SELECT * FROM evals WHERE run_id = ? ORDER BY t, step", [run_id])
        for r in rows:
            r["details"] = json.loads(r["details"]) if r.get("details") else {}
        return rows

    def checkpoints(self, run_id: str, include_deleted: bool = False) -> list[CheckpointRow]:
        """A run's checkpoints by step; those a checkpoint_deleted event removed only when asked."""
        gone = "" if include_deleted else " AND deleted_at IS NULL"
        return self.rows(f"SELECT * FROM checkpoints WHERE run_id = ?{gone} ORDER BY step", [run_id])

    def logs(self, run_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.rows("SELECT * FROM logs WHERE run_id = ? ORDER BY seq DESC LIMIT ?", [run_id, limit])
        return rows[::-1]

    def rank_health(self, run_id: str) -> list[dict[str, Any]]:
        """The latest health row of each rank."""
        return self.rows(
            "SELECT h.* FROM rank_health h JOIN (SELECT rank, MAX(step) AS s FROM rank_health WHERE run_id = ?"
            " GROUP BY rank) m ON h.rank = m.rank AND h.step = m.s WHERE h.run_id = ? ORDER BY h.rank",
            [run_id, run_id])

    def summary(self, run_id: str) -> Summary:
        """Aggregates for the runs table: steps done, final loss, best accuracy, mean samples/s."""
        return self.summaries([run_id]).get(run_id) or Summary(
            metric_rows=0, last_step=None, mean_samples_per_s=None, final_loss=None, best_accuracy=None)

    def summaries(self, run_ids: list[str] | None = None) -> dict[str, Summary]:
        """``summary`` of many runs (all when None) in one query: the metric numbers are kept on the run
        rows by ingest, the best accuracy comes from the (small) evals table."""
        where, args = "", []
        if run_ids is not None:
            where = f" WHERE r.id IN ({','.join('?' * len(run_ids))})"
            args = list(run_ids)
        rows = self.conn.execute(
            "SELECT r.id, r.metric_rows, r.last_step, r.sps_sum, r.sps_n, r.final_loss, e.best FROM runs r"
            " LEFT JOIN (SELECT run_id, MAX(accuracy) AS best FROM evals GROUP BY run_id) e ON e.run_id = r.id"
            + where, args)
        return {rid: Summary(metric_rows=n, last_step=last, mean_samples_per_s=total / k if k else None,
                             final_loss=loss, best_accuracy=best)
                for rid, n, last, total, k, loss, best in rows}

    def table_runs(self, ids: list[str] | None = None, after_rowid: int | None = None,
                   status: str | None = None) -> list[tuple[Any, ...]]:
        """Training runs for the runs table, newest first, as tuples: ``TABLE_RUN_COLUMNS`` then the best
        accuracy. ``ids`` / ``after_rowid`` read only those runs / runs added after that rowid (what a
        refresh needs). 10,000 runs: ~55 ms, where ``list_runs`` + ``summaries`` took ~250 ms."""
        where: list[str] = ["r.kind = 'train'"]
        args: list[Any] = []
        if ids is not None:
            where.append(f"r.id IN ({','.join('?' * len(ids))})")
            args += ids
        if after_rowid is not None:
            where.append("r.rowid > ?")
            args.append(after_rowid)
        if status:
            where.append("r.status = ?")
            args.append(status)
        cols = ", ".join(f"r.{c}" for c in TABLE_RUN_COLUMNS)
        return self.conn.execute(
            f"SELECT {cols}, (SELECT MAX(accuracy) FROM evals e WHERE e.run_id = r.id) FROM runs r"
            f" WHERE {' AND '.join(where)} ORDER BY r.created_at DESC", args).fetchall()

    def change_marks(self) -> tuple[int, int, int]:
        """(runs of any kind, their highest rowid, the evals' highest rowid): three index lookups (~0.3 ms
        at 10,000 runs) that tell a reader whether runs were added or deleted and which evals are new
        since it last looked. An eval written again (INSERT OR REPLACE) gets a new rowid too."""
        n, top = self.conn.execute("SELECT COUNT(*), IFNULL(MAX(rowid), 0) FROM runs").fetchone()
        ev = self.conn.execute("SELECT IFNULL(MAX(rowid), 0) FROM evals").fetchone()[0]
        return int(n), int(top), int(ev)

    def evaluated_since(self, eval_rowid: int) -> list[str]:
        """The runs with an eval written after rowid ``eval_rowid`` (their best accuracy may have moved)."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT run_id FROM evals WHERE rowid > ?", (eval_rowid,))]

    def data_version(self) -> int:
        """A number that changes when another connection (a follower, the CLI) commits to the file: poll it
        and reload only when it moved. This connection's own writes do not change it (SQLite's rule)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

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
