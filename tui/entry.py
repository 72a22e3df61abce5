"""``gpt2-tui``: the dashboard with no command (or ``attach RUN``), a headless command otherwise.

This sits above both packages: ``core.cli`` parses and runs the headless commands and never names the
UI; the dashboard is imported only when it is asked for, so ``gpt2-tui --help`` and every headless
command start without Textual.
"""

from __future__ import annotations

import os
import sys

from core.cli import build_parser, run
from core.store import DB_ENV


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in (None, "attach"):
        return run(args)
    if args.db:
        # Through the environment, as before: what the dashboard starts (runs, evaluations) inherits it.
        os.environ[DB_ENV] = args.db
    from tui.app import main as dashboard

    return dashboard(attach=getattr(args, "run", None))


if __name__ == "__main__":
    sys.exit(main())
