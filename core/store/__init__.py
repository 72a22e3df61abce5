"""runs.db: the index of runs, metrics, evals and checkpoints (sqlite-utils, WAL).

Files under ``runs/<id>/`` are the durable log; this store is rebuilt from them by ingest, which is
idempotent (``core.store.ingest``). The Store is assembled from one part per concept: the schema and
opening a file (``schema``), run rows (``runs``), ingest (``ingest``) and reading (``queries``).
"""

from __future__ import annotations

import os
from pathlib import Path

from core.store.ingest import IngestPart, eval_key
from core.store.queries import METRIC_ARRAY_COLUMNS, QueriesPart
from core.store.runs import RunsPart
from core.store.schema import (
    DB_ENV,
    SCHEMA_VERSION,
    STATUSES,
    StoreError,
    connect,
    default_db_path,
)

__all__ = ["DB_ENV", "METRIC_ARRAY_COLUMNS", "SCHEMA_VERSION", "STATUSES", "Store", "StoreError", "default_db_path",
           "eval_key"]


class Store(RunsPart, IngestPart, QueriesPart):
    """One connection to runs.db. Cheap to open; open one per thread."""

    def __init__(self, path: str | os.PathLike[str] | None = None, create: bool = True):
        self.path = Path(path) if path is not None else default_db_path()
        self.conn = connect(self.path, create)

    def close(self) -> None:
        self.conn.close()
