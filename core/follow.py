"""A run's event file into the store, from the store's own cursor (idempotent).

Reconcile uses this to settle a run; followers use ``core.watch.Watcher``, which feeds the store too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.events import read_from
from core.store import Store


def events_path(run: Mapping[str, Any]) -> Path:
    return Path(run["run_dir"]) / "events.jsonl"


def sync_events(store: Store, run_id: str) -> int:
    """Ingest everything new in the run's event file into the store; returns events ingested here.

    Starts from the offset the store holds, so a follower that was killed (or a second one) catches up
    and nothing is counted twice: ``Store.ingest`` applies a chunk only at that offset.
    """
    total = 0
    for _ in range(1000):  # 64 MB a chunk: bounded, and a live writer cannot keep us here forever
        run = store.get_run(run_id)
        if run is None:
            return total
        chunk = read_from(events_path(run), run["event_offset"] or 0)
        if chunk.offset == (run["event_offset"] or 0):
            return total
        if store.ingest(run_id, run["event_offset"] or 0, chunk.offset, chunk.events, chunk.bad_lines,
                        validated=True):
            total += len(chunk.events)
    return total
