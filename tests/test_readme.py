"""The README's test command is what CI runs, and the import boundaries hold."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)\n```", readme, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in (ROOT / ".ci" / "run").read_text()


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_core_imports_without_textual_or_rich():
    mods = _modules_after("import core.cli, core.config, core.events, core.store, core.launch, core.follow, "
                          "core.reconcile, core.devices, core.data, core.models, core.progress")
    assert not {m for m in mods if m.split(".")[0] in ("textual", "rich")}


def test_cli_does_not_import_paddle():
    mods = _modules_after("import core.cli; core.cli.build_parser()")
    assert "paddle" not in mods and "paddlenlp" not in mods
