"""One watcher: a run's files turned into typed events, ingested into the store on the way.

Every follower polls a Watcher: the CLI's progress (``core.cli.follow_run``), the results pane's
evaluation jobs and the live screen (``tui.follower``). Each ``poll()`` reads the next bounded chunk of
``events.jsonl`` from the watcher's own byte offset (validated: ``core.records``), hands the chunk to
the store when the store's offset is the same (``Store.ingest`` applies it exactly once, so two
watchers, or a watcher and reconcile, never count it twice), and returns the typed events with the
fresh run row. Who folds them into what is the caller's business (``core.progress.RunProgress``, the
live screen's ``RunState``); the store is always fed first.

``exited()`` reads the other file a run leaves: the supervisor's exit status (``exit.json``), or
whether the supervisor is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.events import read_from
from core.follow import events_path, sync_events
from core.probes import launcher_exited
from core.records import Event, RunRow
from core.store import Store

# 8 MB of events (~50,000 step lines) per poll: a million-step history arrives in ~20 batches, each
# folded in well under a second, instead of one multi-second stall.
CHUNK_BYTES = 8 << 20


@dataclass
class Batch:
    run: RunRow  # the run's row after this batch was ingested
    events: list[Event] = field(default_factory=list)
    bad_lines: int = 0  # lines skipped in this batch (torn for good, malformed, refused by the schema)
    behind: bool = False  # more is waiting than one poll reads: poll again without sleeping


class Watcher:
    """A cursor over one run's event file, feeding the store; open it on the thread that polls."""

    def __init__(self, store: Store, run_id: str, offset: int = 0, chunk_bytes: int = CHUNK_BYTES):
        self.store = store
        self.run_id = run_id
        self.offset = offset
        self.chunk_bytes = chunk_bytes
        self.bad_lines = 0  # on this watcher's cursor, all batches so far

    def run(self) -> RunRow:
        run = self.store.get_run(self.run_id)
        if run is None:
            raise LookupError(f"run {self.run_id} is not in {self.store.path}")
        return run

    def poll(self) -> Batch:
        run = self.run()
        path = events_path(run)
        chunk = read_from(path, self.offset, self.chunk_bytes)
        stored = run["event_offset"] or 0
        fed = False
        if stored == self.offset and chunk.offset > self.offset:
            # One read for both: this chunk is exactly what the store takes next (False: another got there).
            fed = self.store.ingest(self.run_id, self.offset, chunk.offset, chunk.events, chunk.bad_lines,
                                    validated=True)
        if not fed and stored != chunk.offset:
            sync_events(self.store, self.run_id)  # the store's own cursor is elsewhere: let it catch up
            fed = True
        if fed:
            run = self.run()
        self.offset = chunk.offset
        self.bad_lines += chunk.bad_lines
        try:
            behind = path.stat().st_size - self.offset > self.chunk_bytes // 2
        except OSError:
            behind = False
        return Batch(run=run, events=chunk.events, bad_lines=chunk.bad_lines, behind=behind)

    def exited(self, run: RunRow | None = None) -> bool:
        """The run's supervisor recorded an exit status, or is gone: time to reconcile."""
        run = run or self.run()
        return launcher_exited(run)
