"""The run rows: create, update, settle, find, list and delete runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from core.records import RunRow
from core.store.schema import STATUSES, StoreBase, Tx

RUN_JSON_FIELDS = ("config", "command", "versions", "device_info", "alerts", "tags")
KEEP: Any = object()  # tag_run(note=KEEP): leave the note as it is


class RunsPart(StoreBase):
    def create_run(self, run: Mapping[str, Any]) -> None:
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

    def get_run(self, run_id: str) -> RunRow | None:
        cur = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return decode_run(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def find_run(self, ref: str) -> RunRow | None:
        """A run by id, unique id prefix, or exact name (newest wins); 'last' = newest run."""
        if ref == "last":
            rows = self.rows("SELECT id FROM runs WHERE kind='train' ORDER BY created_at DESC LIMIT 1")
            return self.get_run(rows[0]["id"]) if rows else None
        run = self.get_run(ref)
        if run:
            return run
        rows = self.rows("SELECT id FROM runs WHERE id LIKE ? ORDER BY created_at DESC",
                                  [ref.replace("%", "") + "%"])
        if len(rows) == 1:
            return self.get_run(rows[0]["id"])
        rows = self.rows("SELECT id FROM runs WHERE name = ? ORDER BY created_at DESC LIMIT 1", [ref])
        return self.get_run(rows[0]["id"]) if rows else None

    def list_runs(self, kind: str | None = "train", status: str | None = None, decode: bool = True) -> list[RunRow]:
        """Runs newest first; ``decode=False`` leaves the JSON columns as text (the runs table never reads
        them, and decoding 10,000 configs was a third of `runs --json`)."""
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.rows(sql + " ORDER BY created_at DESC", args)
        return [decode_run(r) for r in rows] if decode else cast(list[RunRow], rows)

    def tag_run(self, run_id: str, *, add: Iterable[str] = (), remove: Iterable[str] = (),
                tags: Iterable[str] | None = None, note: str | None = KEEP) -> RunRow | None:
        """Change a run's tags (``tags`` replaces them all, then ``add`` and ``remove`` apply) and its note
        (a text, or None to clear it; KEEP leaves it), in one transaction: read and write under the write
        lock, so two taggers at once (the CLI and a dashboard) both land. None when there is no such run;
        ``core.tags.TagError`` for a tag or note that cannot be stored (nothing is written then)."""
        from core.tags import clean_note, merge_tags

        with Tx(self.conn) as conn:
            row = conn.execute("SELECT tags FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            current = [] if tags is not None else tag_list(row[0])
            new = merge_tags([*current, *(tags or [])], add, remove)
            sets: list[str] = ["tags = ?"]
            args: list[Any] = [json.dumps(new)]
            if note is not KEEP:
                sets.append("note = ?")
                args.append(clean_note(note))
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*args, run_id))
        return self.get_run(run_id)

    def running_runs(self) -> list[RunRow]:
        return self.list_runs(kind=None, status="running")

    def eval_jobs(self, run_id: str) -> list[RunRow]:
        """The evaluation jobs launched on a run's checkpoints (runs of kind 'eval' with it as parent)."""
        return [decode_run(r) for r in self.rows(
            "SELECT * FROM runs WHERE kind = 'eval' AND parent_run = ? ORDER BY created_at", [run_id])]

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a run and everything recorded about it, in one transaction: its metrics, checkpoints, logs
        and rank health, every eval of it (its training's and its eval jobs'), and the eval jobs launched on
        its checkpoints; an eval job's own results go with it. Returns the ids of the eval jobs deleted
        with the run (their folders are the caller's to remove)."""
        with Tx(self.conn):
            jobs = [j["id"] for j in self.eval_jobs(run_id)]
            for rid in (run_id, *jobs):
                for table in ("metrics", "checkpoints", "logs", "rank_health"):
                    self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (rid,))
                self.conn.execute("DELETE FROM evals WHERE run_id = ? OR eval_run_id = ?", (rid, rid))
                self.conn.execute("DELETE FROM runs WHERE id = ?", (rid,))
        return jobs


def tag_list(value: Any) -> list[str]:
    """A run's tags: from the column's JSON text (a damaged one reads as none) or a decoded list."""
    if value is None or value == "[]":  # the common case, without a json.loads per row of the runs table
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(t) for t in value] if isinstance(value, list) else []


def decode_run(row: dict[str, Any]) -> RunRow:
    for k in RUN_JSON_FIELDS:
        if isinstance(row.get(k), str):
            try:
                row[k] = json.loads(row[k])
            except ValueError:
                pass
    return cast(RunRow, row)
