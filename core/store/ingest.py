"""Ingest: a chunk of a run's events into the tables, atomically and exactly once.

Every row has a natural key (run, step / seq), and a chunk is applied only if the run's stored byte
offset still equals the chunk's start, so two followers never count a chunk twice. Each event is
checked against its record in ``core.records`` first: one the schema refuses is a bad line.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

from core.events import as_float
from core.records import EvalEvent, EvalRow, Event, validate
from core.store.schema import StoreBase, Tx

DETAIL_FIELDS = ("precision", "recall", "f1", "confusion", "samples_per_s")


class IngestPart(StoreBase):
    def ingest(self, run_id: str, start_offset: int, end_offset: int, events: Iterable[Mapping[str, Any]],
               bad_lines: int = 0, validated: bool = False) -> bool:
        """Apply one chunk of a run's event file, atomically; False if another follower already did.

        ``validated``: the events come from ``core.events.read_from``, which checked them already (a second
        check would cost ingest a third of its rate).
        """
        with Tx(self.conn):
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
            for raw in events:
                ev = cast("Event | None", raw) if validated else validate(raw)
                if ev is None:  # parses, but lies about a field a table needs: a bad line, not a crash
                    bad_lines += 1
                    continue
                last_t = ev["t"]
                if ev["type"] == "step":
                    metrics.append((run_id, ev["step"], as_float(ev.get("epoch")), as_float(ev.get("loss")),
                                    as_float(ev.get("lr")), as_float(ev.get("samples_per_s")),
                                    as_float(ev.get("tokens_per_s")), as_float(ev.get("step_time")), ev["t"]))
                elif ev["type"] == "eval":
                    if row[2] == "eval":
                        # The job's own record says what was evaluated; the event carries the numbers.
                        job: EvalEvent = {**ev, "checkpoint": row[4], "eval_path": row[5], "eval_sha": row[6],
                                          "mode": row[7]}
                        self._insert_eval(row[3] or run_id, job, eval_run_id=run_id)
                    else:
                        self._insert_eval(run_id, ev)
                elif ev["type"] == "checkpoint":  # a checkpoint saved again at a step is there again
                    self.conn.execute("INSERT OR REPLACE INTO checkpoints (run_id, step, path, t, deleted_at)"
                                      " VALUES (?,?,?,?,NULL)", (run_id, ev["step"], ev["path"], ev["t"]))
                elif ev["type"] == "checkpoint_deleted":
                    self.conn.execute("UPDATE checkpoints SET deleted_at = ? WHERE run_id = ? AND step = ?",
                                      (ev["t"], run_id, ev["step"]))
                elif ev["type"] == "log":
                    logs.append((run_id, ev["seq"], ev["t"], ev.get("level", "info"), ev.get("text", "")))
                elif ev["type"] == "heartbeat":
                    health.append((run_id, ev.get("step", 0), ev.get("rank", 0), ev.get("host"), ev.get("local_rank"),
                                   ev.get("device"), None, None, ev.get("mem_bytes"), None, ev["t"]))
                elif ev["type"] == "ranks":
                    for r in ev.get("ranks", []):
                        health.append((run_id, ev.get("step", 0), r.get("rank", 0), r.get("host"),
                                       r.get("local_rank"), r.get("device"), as_float(r.get("step_time")),
                                       r.get("samples"), r.get("mem_bytes"), as_float(r.get("util")), ev["t"]))
                elif ev["type"] == "start":
                    run_fields.update(
                        # An elastic restart writes a second start: the run started at the first.
                        started_at=run_fields.get("started_at") or row[8] or ev["t"],
                        world_size=ev.get("world_size"), total_steps=ev.get("total_steps"),
                        samples_per_epoch=ev.get("samples_per_epoch"), nnodes=ev.get("nnodes"),
                        versions=json.dumps(ev.get("versions") or {}),
                        device_info=json.dumps(ev.get("devices") or []),
                    )
                elif ev["type"] == "end" and row[1] == "running":
                    run_fields["status"] = ev["status"]
                    run_fields["ended_at"] = ev["t"]
                    if ev.get("reason") and ev["status"] != "finished":
                        run_fields["error"] = ev.get("reason")
            if metrics:
                self._fold_summary(run_id, metrics)
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

    def _fold_summary(self, run_id: str, metrics: list[tuple[Any, ...]]) -> None:
        """Keep the run row's metric_rows / last_step / final_loss / sps_sum / sps_n equal to what an
        aggregate over its metrics rows would say, before this batch's rows go in.

        A step written again (an elastic restart redoes the steps after its checkpoint; a replay) replaces
        its row, so the rows it replaces are taken out first: one lookup over the batch's step range,
        which for a live run (new steps beyond the last) finds nothing.
        """
        new = {m[1]: m for m in metrics}  # the last write of a step wins, as INSERT OR REPLACE does
        lo, hi = min(new), max(new)
        old = [r for r in self.conn.execute(
            "SELECT step, samples_per_s FROM metrics WHERE run_id = ? AND step BETWEEN ? AND ?",
            (run_id, lo, hi)) if r[0] in new]

        def present(v: Any) -> bool:  # SQLite stores a NaN as NULL
            return v is not None and v == v

        d_sum = sum(m[5] for m in new.values() if present(m[5])) - sum(s for _, s in old if s is not None)
        d_n = sum(1 for m in new.values() if present(m[5])) - sum(1 for _, s in old if s is not None)
        loss = new[hi][3]
        self.conn.execute(
            "UPDATE runs SET metric_rows = metric_rows + ?, sps_sum = sps_sum + ?, sps_n = sps_n + ?,"
            " final_loss = CASE WHEN last_step IS NULL OR ? >= last_step THEN ? ELSE final_loss END,"
            " last_step = MAX(IFNULL(last_step, ?), ?) WHERE id = ?",
            (len(new) - len(old), d_sum, d_n, hi, loss if present(loss) else None, hi, hi, run_id))

    def _insert_eval(self, run_id: str, ev: EvalEvent, eval_run_id: str | None = None) -> None:
        """A training eval is keyed by its step; an evaluation launched on a checkpoint by what it evaluated:
        one row per (checkpoint, file content, mode)."""
        details = {k: ev[k] for k in DETAIL_FIELDS if k in ev}  # type: ignore[literal-required]
        mode = ev.get("mode", "classify")
        if eval_run_id is None:
            key, source = f"{run_id}:train:{ev.get('step')}", "train"
        else:
            key, source = eval_key(str(ev.get("checkpoint")), str(ev.get("eval_sha")), str(mode)), "eval"
        self.conn.execute(
            "INSERT OR REPLACE INTO evals (id, run_id, source, step, checkpoint, eval_path, eval_sha, mode,"
            " accuracy, loss, n, details, eval_run_id, t) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, run_id, source, ev.get("step"), ev.get("checkpoint"), ev.get("eval_path"), ev.get("eval_sha"),
             mode, as_float(ev.get("accuracy")), as_float(ev.get("loss")), ev.get("n"), json.dumps(details),
             eval_run_id, ev["t"]),
        )

    def find_eval(self, checkpoint: str, eval_sha: str, mode: str) -> EvalRow | None:
        rows = self.rows("SELECT * FROM evals WHERE id = ?", [eval_key(checkpoint, eval_sha, mode)])
        if not rows:
            return None
        rows[0]["details"] = json.loads(rows[0]["details"]) if rows[0].get("details") else {}
        return rows[0]  # type: ignore[no-any-return]


def eval_key(checkpoint: str, eval_sha: str, mode: str) -> str:
    """Same checkpoint, same file content, same mode: the same evaluation."""
    real = os.path.realpath(checkpoint)
    return "eval:" + hashlib.sha256(f"{real}|{eval_sha}|{mode}".encode()).hexdigest()[:20]
