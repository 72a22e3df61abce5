"""``core.cli``: the headless commands (train, runs, show, stop, export, tag, eval, devices). ``tui.entry`` is the
``gpt2-tui`` command: it parses with ``build_parser`` and hands every headless command to ``run``.

Importing this module must stay cheap (``gpt2-tui --help`` ≤ 0.3 s): no paddle, no Textual at import;
subcommands import what they need when they run.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from core import cli_interop
from core.cli_common import EXIT_USER_ERROR, UserError, add_db_flag, fmt_time, need_run, open_store
from core.cli_eval import add_eval_parser, cmd_eval
from core.cli_runs import add_parsers as add_run_parsers
from core.cli_runs import cmd_devices, cmd_export, cmd_runs, cmd_show, cmd_stop, cmd_tag
from core.cli_train import add_train_parser, cmd_train, config_from_args, follow_run
from core.config import ConfigError
from core.export import ExportError
from core.store import DB_ENV, StoreError, default_db_path

# The subcommands live in core/cli_*.py; these names stay importable from core.cli.
__all__ = ["EXIT_USER_ERROR", "UserError", "build_parser", "cmd_devices", "cmd_eval", "cmd_export", "cmd_runs",
           "cmd_show", "cmd_stop", "cmd_train", "config_from_args", "fmt_time", "follow_run", "main", "need_run",
           "open_store"]


class _Version(argparse.Action):
    """``--version``, read from the installed metadata only when asked (importlib.metadata costs ~20 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *a: object, **kw: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("gpt2-tui")
        except PackageNotFoundError:
            v = "unknown (not installed)"
        print(f"gpt2-tui {v}")  # on stdout, as argparse's own version action does
        parser.exit()


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpt2-tui",
        description="Fine-tune GPT-2 on GLUE SST-2 with PaddleNLP and watch it happen. "
                    "With no command, opens the dashboard.",
    )
    add_db_flag(p, top=True)
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(sub)
    add_run_parsers(sub)
    add_eval_parser(sub)
    cli_interop.add_parsers(sub)
    return p


COMMANDS = {"train": cmd_train, "runs": cmd_runs, "show": cmd_show, "stop": cmd_stop, "export": cmd_export,
            "eval": cmd_eval, "devices": cmd_devices, "tag": cmd_tag, "import": cli_interop.cmd_import,
            "watch": cli_interop.cmd_watch}


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type that means 'the user asked for something wrong' (exit 2, no traceback)."""
    errs: list[type[BaseException]] = [UserError, ConfigError, StoreError, ExportError]
    for mod, name in (("core.data", "DataError"), ("core.models", "ModelError"), ("core.devices", "DeviceError"),
                      ("core.launch", "LaunchError"),
                      ("core.checkpoint_import", "CheckpointImportError")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.cli``: the headless commands only. The ``gpt2-tui`` command (``tui.entry``) sits
    above both packages and opens the dashboard itself: core never names the UI."""
    args = build_parser().parse_args(argv)
    if args.command in (None, "attach"):
        print("error: the dashboard is the `gpt2-tui` command (with no COMMAND, or `gpt2-tui attach RUN`); "
              "`python -m core.cli COMMAND` runs the headless commands only", file=sys.stderr)
        return EXIT_USER_ERROR
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run one headless command of parsed ``args``; a user's mistake is one paragraph and exit 2."""
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_USER_ERROR
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except sqlite3.DatabaseError as e:
        # A file that opened as SQLite but is damaged further in (or stayed locked past the 30 s timeout).
        db = args.db or default_db_path()
        if "locked" in str(e):
            print(f"error: {db} stayed locked by another gpt2-tui process for 30 s ({e}); try again",
                  file=sys.stderr)
        elif "full" in str(e):
            print(f"error: {db}: the disk is full ({e}). Free some space and run the command again: the runs' "
                  f"event files are the record, and what is missing from the store is read in again.",
                  file=sys.stderr)
        else:
            print(f"error: {db} cannot be read as a gpt2-tui database ({e}). It was left untouched; move it "
                  f"aside or pass --db PATH (or set {DB_ENV}) to use another file.", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
