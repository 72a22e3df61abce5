"""The ``gpt2-tui`` entry point (tui.entry) sits above core and the dashboard: headless commands never
load Textual, the dashboard is opened only when asked for, and core never names the UI."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import core.cli
import tui.app
from core.store import DB_ENV
from tui import entry

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_and_headless_commands_do_not_load_textual(tmp_path):
    got = _run(f"""
import contextlib, io, json, sys
from tui.entry import main
with contextlib.redirect_stdout(io.StringIO()) as help_out:
    try:
        main(["--help"])
    except SystemExit as e:
        help_code = e.code
after_help = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
with contextlib.redirect_stdout(io.StringIO()) as runs_out:
    rc = main(["--db", {str(tmp_path / "runs.db")!r}, "runs", "--json"])
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich", "paddle"))
print(json.dumps({{"help_code": help_code, "usage": help_out.getvalue()[:40], "after_help": after_help,
                  "rc": rc, "runs": runs_out.getvalue(), "ui": ui}}))
""")
    assert got["help_code"] == 0 and got["usage"].startswith("usage: gpt2-tui")
    assert got["after_help"] == [] and got["ui"] == []
    assert got["rc"] == 0 and json.loads(got["runs"]) == []


@pytest.mark.parametrize(("argv", "attach"), [([], None), (["attach", "last"], "last")])
def test_no_command_or_attach_opens_the_dashboard(monkeypatch, tmp_path, argv, attach):
    calls = []
    monkeypatch.setattr(tui.app, "main", lambda attach=None: calls.append(attach) or 0)
    monkeypatch.delenv(DB_ENV, raising=False)
    db = str(tmp_path / "other.db")
    assert entry.main(["--db", db, *argv]) == 0
    assert calls == [attach]
    assert os.environ[DB_ENV] == db  # what the dashboard starts finds the same store


def test_core_cli_alone_runs_headless_commands_and_points_at_gpt2_tui_for_the_dashboard(capsys, tmp_path):
    assert core.cli.main(["--db", str(tmp_path / "runs.db"), "runs"]) == 0
    assert core.cli.main(["--db", str(tmp_path / "runs.db")]) == core.cli.EXIT_USER_ERROR
    assert "the dashboard is the `gpt2-tui` command" in capsys.readouterr().err


def test_no_core_module_names_the_dashboard():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value == "tui" or node.value.startswith("tui.") else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names
                          if n == "tui" or n.startswith("tui.")]
    assert offenders == []
