"""A real terminal: tmux runs the installed ``gpt2-tui``, a user launches the offline preset, and the
screen shows the step count advancing and then a finished run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "gpt2-tui"
STEP = re.compile(r"RUNNING\s+step ([\d,]+) / ([\d,]+)")
FINISHED = re.compile(r"FINISHED\s+step ([\d,]+) / ([\d,]+)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not (ROOT / "core" / "train.py").exists(), reason="core/train.py (the trainer) is missing"),
    pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)"),
]


class Tmux:
    """One tmux server of our own (-L): it starts with this process's environment, and dies with the test."""

    def __init__(self, width: int, height: int):
        self.sock = f"gpt2-tui-test-{os.getpid()}"
        self.size = (width, height)

    def __call__(self, *args: str) -> str:
        # COLUMNS/LINES (pytest sets them) would win over the pane's real size in the app.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True, check=True,
                              timeout=30, env=env).stdout

    def start(self, command: str) -> None:
        self("new-session", "-d", "-s", "main", "-x", str(self.size[0]), "-y", str(self.size[1]), command)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "main")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "main", *keys)

    def wait_for(self, what: str | re.Pattern[str], timeout: float) -> re.Match[str] | str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            found = what.search(text) if isinstance(what, re.Pattern) else (what if what in text else None)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{what!r} did not appear in {timeout:.0f} s; the screen was:\n{text}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=30)


def test_launch_offline_preset_watch_it_finish(tmp_path):
    db = tmp_path / "runs.db"
    tmux = Tmux(160, 48)
    # `exec` so the pane is the dashboard; `; sleep` keeps the pane for a post-mortem capture if it exits.
    tmux.start(f"cd {tmp_path} && {BIN} --db {db}; echo EXITED $?; sleep 300")
    try:
        tmux.wait_for("configure a run", 60)
        # No GPU here or there: either way ctrl+t until the offline preset is on, which runs anywhere.
        tmux.wait_for("Preset: ", 30)
        if "Preset: offline" not in tmux.screen():
            tmux.keys("C-t")
        tmux.wait_for("Preset: offline", 10)
        tmux.wait_for(re.compile(r"\bready\b"), 30)  # the preflight checklist passed
        tmux.keys("C-l")
        seen: list[int] = []
        deadline = time.monotonic() + 240
        final = None
        while time.monotonic() < deadline:
            text = tmux.screen()
            if m := STEP.search(text):
                step = int(m.group(1).replace(",", ""))
                if not seen or step != seen[-1]:
                    seen.append(step)
            if final := FINISHED.search(text):
                break
            assert "EXITED" not in text, text
            assert not re.search(r"\b(FAILED|LOST)\b", text), text
            time.sleep(0.2)
        assert final is not None, f"no finished run within 4 minutes; steps seen {seen}\n{tmux.screen()}"
        assert len(seen) >= 2 and seen == sorted(seen), f"the step count did not advance: {seen}"
        done, total = (int(g.replace(",", "")) for g in final.groups())
        assert done == total > seen[0]
        # What the screen said is what the store says.
        res = subprocess.run([str(BIN), "--db", str(db), "runs", "--json"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
        assert '"status": "finished"' in res.stdout, res.stdout + res.stderr
        tmux.keys("C-q")
        tmux.wait_for("EXITED 0", 30)
    finally:
        tmux.close()
