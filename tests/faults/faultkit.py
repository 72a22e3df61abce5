"""Helpers for the fault suite: drive the installed CLI in a temp folder, find and kill run processes.

Imported as ``faultkit`` (pytest puts this folder on sys.path); ``conftest`` is tests/conftest.py.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import BIN, ROOT, gpt2_tui

from core.events import as_float, read_all
from core.procs import run_processes

# Long enough that a run never ends by itself during a test; the tests stop or kill it.
FOREVER = ["--max_steps", "100000", "--save_steps", "100000", "--eval_steps", "100000"]


def cli(cwd: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess:
    return gpt2_tui("--db", "runs.db", *args, cwd=cwd, **kw)


def show(cwd: Path, ref: str) -> dict[str, Any]:
    r = cli(cwd, "show", ref, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def start_detached(cwd: Path, *args: str) -> tuple[str, Path]:
    r = cli(cwd, "train", "--detach", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    rid = r.stdout.strip().splitlines()[-1]
    return rid, (cwd / "runs" / rid).resolve()


def wait_for(pred: Any, timeout: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def events(run_dir: Path) -> list[dict[str, Any]]:
    return list(read_all(run_dir / "events.jsonl"))


def step_events(run_dir: Path) -> list[dict[str, Any]]:
    return [e for e in events(run_dir) if e["type"] == "step"]


def wait_steps(run_dir: Path, n: int, timeout: float = 180) -> None:
    wait_for(lambda: len(step_events(run_dir)) >= n, timeout, f"{n} step events in {run_dir}")


def rank_process(run_dir: Path, rank: int) -> psutil.Process:
    """The train.py process of global rank ``rank`` (ranks run in sessions of their own: found by argv)."""
    for p in run_processes(run_dir):
        try:
            if any(a.endswith("train.py") for a in p.cmdline()) and p.environ().get("PADDLE_TRAINER_ID") == str(rank):
                return p
        except psutil.Error:
            continue
    raise AssertionError(f"no rank {rank} process for {run_dir}")


def supervisor_info(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "supervisor.json").read_text())


def alive(run_dir: Path) -> list[psutil.Process]:
    return run_processes(run_dir)


def kill_all(run_dir: Path) -> None:
    procs = run_processes(run_dir)
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def follower(cwd: Path, rid: str, poll_s: float = 0.05) -> subprocess.Popen:
    """A follower like the dashboard's: core.cli.follow_run ingesting into runs.db until the run ends."""
    code = ("import sys; from core.store import Store; from core.cli import follow_run; "
            "follow_run(Store('runs.db'), sys.argv[1], poll_s=float(sys.argv[2]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, rid, str(poll_s)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def foreground(cwd: Path, *args: str, log: Path | None = None) -> subprocess.Popen:
    """`gpt2-tui train ...` in the foreground (following), stderr to ``log``."""
    err = open(log, "wb") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([str(BIN), "--db", "runs.db", "train", *args], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    finally:
        if log:
            err.close()


def assert_store_matches_events(db: Path, rid: str, run_dir: Path) -> None:
    """The store holds exactly the events of the file: one metric row per step event, one log row per log."""
    evs = events(run_dir)
    steps = [e["step"] for e in evs if e["type"] == "step"]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT step, loss FROM metrics WHERE run_id = ? ORDER BY step", (rid,)).fetchall()
        assert [r[0] for r in rows] == sorted(steps), "metric rows differ from the step events"
        assert len(steps) == len(set(steps)), "the trainer wrote a step twice"
        by_step = {e["step"]: as_float(e["loss"]) for e in evs if e["type"] == "step"}
        for step, loss in rows:  # SQLite stores a NaN as NULL
            want = by_step[step]
            assert (loss is None) if want is not None and math.isnan(want) else loss == pytest.approx(want), step
        n_logs = con.execute("SELECT COUNT(*) FROM logs WHERE run_id = ?", (rid,)).fetchone()[0]
        assert n_logs == sum(1 for e in evs if e["type"] == "log")
        ck = con.execute("SELECT COUNT(*) FROM checkpoints WHERE run_id = ?", (rid,)).fetchone()[0]
        assert ck == len({e["step"] for e in evs if e["type"] == "checkpoint"})
        off = con.execute("SELECT event_offset FROM runs WHERE id = ?", (rid,)).fetchone()[0]
        assert off == (run_dir / "events.jsonl").stat().st_size
    finally:
        con.close()


@pytest.fixture
def reaper(tmp_path):
    """Whatever a failing test left running under tmp_path is killed afterwards (never anything else)."""
    yield
    mine = str(tmp_path)
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if p.pid != os.getpid() and (any(mine in a for a in p.info["cmdline"] or [])
                                         or (p.info["cwd"] or "").startswith(mine)):
                p.kill()
        except psutil.Error:
            pass
