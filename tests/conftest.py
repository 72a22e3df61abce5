import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "gpt2-tui"


@pytest.fixture(autouse=True)
def _no_gpu_env(monkeypatch, tmp_path_factory):
    # Tests never touch the user's caches or a real runs.db.
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("GPT2_TUI_CACHE", str(cache))
    monkeypatch.delenv("GPT2_TUI_DB", raising=False)


def gpt2_tui(*args, cwd, timeout=300, env=None, check=False):
    """Run the installed CLI as a user would; returns CompletedProcess (text)."""
    exe = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "core.cli"]
    e = {**os.environ, **(env or {})}
    return subprocess.run([*exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e,
                          check=check)


@pytest.fixture
def sample_copy(tmp_path):
    """A writable copy of the bundled SST-2 sample."""
    dst = tmp_path / "sst2"
    shutil.copytree(ROOT / "assets" / "sst2-sample", dst)
    return dst
