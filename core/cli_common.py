"""What every ``gpt2-tui`` subcommand shares: the user-error type, opening the store, finding a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.records import RunRow
from core.store import DB_ENV, Store, default_db_path

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake of the user's: printed as one paragraph, exit code 2, no traceback."""


def add_db_flag(p: argparse.ArgumentParser, top: bool = False) -> None:
    """``--db`` on the top parser and on every subcommand, so it may come before or after the command.

    On a subcommand its default is SUPPRESS: an absent flag there leaves the top-level value alone.
    """
    p.add_argument("--db", default=None if top else argparse.SUPPRESS, metavar="PATH",
                   help=f"runs database (default ./runs.db, or ${DB_ENV})")


def open_store(args: argparse.Namespace) -> Store:
    path = Path(args.db) if getattr(args, "db", None) else default_db_path()
    return Store(path)


def need_run(store: Store, ref: str) -> RunRow:
    run = store.find_run(ref)
    if run is None:
        raise UserError(f"no run matches {ref!r}; `gpt2-tui runs` lists them")
    return run


def fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"
