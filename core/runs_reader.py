"""The runs table, kept up to date by reading only what changed (the history screen's refresh).

Reading all 10,000 rows of a years-old runs.db costs ~85 ms (``Store.table_runs``); the old history read
them, and every run's summary, every 2 s (issue 14: 63-81 % of a core). A ``RunsReader`` reads the whole
table once, then on each ``changes`` call only:
- the runs that were running at its last read (their steps, duration and status move) and those running now;
- runs added since (by rowid), and runs with an eval written since (by the evals' rowid: best accuracy);
- the ids of every run (~5 ms) only when the count of runs says some were deleted or a rowid was reused.
An edit of a run that was not running (a rename, an import into an old row) shows none of these marks,
so ``changes(full=True)`` compares every row again; callers do that when no run is running (the commit
then came from such an edit) and every ``FULL_EVERY`` calls otherwise. The schema has no updated-at
column that would make that case cheap too (see docs/BENCHMARKS.md, section 8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.export import row_of
from core.store import Store

# With runs running, one full comparison in this many refreshes (every ~30 s at the screen's 2 s): the
# bound on how long an edit of a finished run can go unseen while another run trains.
FULL_EVERY = 15


@dataclass
class Changes:
    """What a read found: rows new or changed (whole rows), the ids gone, and whether it was a full read."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    full: bool = False


class RunsReader:
    """The state of one reader (one history screen). Not thread-safe: one read at a time."""

    def __init__(self) -> None:
        self.raw: dict[str, tuple[Any, ...]] = {}  # id -> the table_runs tuple last read
        self.marks: tuple[int, int, int] | None = None  # Store.change_marks() at the last read
        self.running: set[str] = set()
        self.reads = 0  # rows fetched from the store, all calls together (tests count them)
        self._calls = 0

    def changes(self, store: Store, now: float | None = None, full: bool = False) -> Changes:
        """Read what changed since the last call (everything on the first call or when ``full``)."""
        self._calls += 1
        marks = store.change_marks()
        if self.marks is None or full or not self.running or self._calls % FULL_EVERY == 0:
            return self._full(store, marks, now)
        n_before, top_before, evals_before = self.marks
        ids = set(self.running)
        tuples = store.table_runs(after_rowid=top_before) if marks[1] > top_before else []
        removed: set[str] = set()
        if marks[0] != n_before + (marks[1] - top_before):
            # Fewer runs than the rowids say: some were deleted (or a deleted rowid was reused).
            present = {r[0] for r in store.conn.execute("SELECT id FROM runs WHERE kind = 'train'")}
            removed = set(self.raw) - present
            ids |= present - set(self.raw) - {t[1] for t in tuples}
        if marks[2] > evals_before:
            ids |= set(store.evaluated_since(evals_before))
        ids |= {r[0] for r in store.conn.execute("SELECT id FROM runs WHERE status = 'running' AND kind = 'train'")}
        ids -= removed
        known_new = {t[1] for t in tuples}
        wanted = sorted(i for i in ids if i not in known_new)
        if wanted:
            tuples += store.table_runs(ids=wanted)
        self.marks = marks
        return self._apply(tuples, removed, now, full=False)

    def _full(self, store: Store, marks: tuple[int, int, int], now: float | None) -> Changes:
        tuples = store.table_runs()
        seen = {t[1] for t in tuples}
        removed = set(self.raw) - seen
        changed = [t for t in tuples if self.raw.get(t[1]) != t or t[3] == "running"]
        self.marks = marks
        self.reads += len(tuples)
        out = self._apply(changed, removed, now, full=True)
        self.reads -= len(changed)  # counted above, as the whole table
        return out

    def _apply(self, tuples: list[tuple[Any, ...]], removed: set[str], now: float | None, full: bool) -> Changes:
        self.reads += len(tuples)
        for rid in removed:
            self.raw.pop(rid, None)
        rows = []
        for t in tuples:
            self.raw[t[1]] = t
            rows.append(row_of(t, now))
        self.running = {rid for rid, t in self.raw.items() if t[3] == "running"}
        return Changes(rows=rows, removed=removed, full=full)
