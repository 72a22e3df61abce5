"""The history screen's side of bench/history_scale.py: f2 -> painted in a real terminal, idle CPU, peak
RSS, actions timed under Pilot, and a refresh with one run running; each arm runs a given code tree."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT, bench_env

# The dashboard, from the tree given first (this checkout or the old commit's), with the rest of argv.
LAUNCH = "import sys; root = sys.argv.pop(1); sys.path.insert(0, root); from tui.entry import main; sys.exit(main())"
F2 = b"\x1bOQ"

# In-process actions on the history screen, with Pilot: prints one JSON object.
ACTIONS = r"""
import asyncio, json, sys, time
root, db = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
from textual.app import App
from tui.screens.history import HistoryScreen


class Host(App):
    def on_mount(self):
        self.push_screen(HistoryScreen(db, refresh_s=2.0, reconcile=False))


async def main():
    out = {}
    app = Host()
    async with app.run_test(size=(160, 48)) as pilot:
        t0, c0 = time.perf_counter(), time.process_time()
        while not getattr(app.screen, "loaded", False):
            await pilot.pause(0.005)
        await pilot.pause()
        out["open"] = [(time.perf_counter() - t0, time.process_time() - c0)]

        async def timed(name, *keys):
            t0, c0 = time.perf_counter(), time.process_time()
            await pilot.press(*keys)
            await pilot.pause()
            out.setdefault(name, []).append((time.perf_counter() - t0, time.process_time() - c0))

        for _ in range(2):
            await timed("a key bound to nothing", "z")  # the floor: a key press and a screen update
        for _ in range(2):
            await timed("sort", "s")
        for _ in range(2):
            await timed("reverse sort", "S")
        for _ in range(2):
            await timed("mark", "space")
            await pilot.press("down")
        await pilot.press("slash")
        await timed("filter keystroke", "9")
        await timed("filter keystroke", "9")
        await pilot.press("backspace")
        await pilot.pause()
        await timed("clear filter", "backspace")
        shown = len(app.screen.shown)
        await pilot.pause(3.0)
        c0 = time.process_time()
        await asyncio.sleep(10.0)  # the history screen alone, idle: its 2 s refresh timer runs
        out["screen idle, % of a core"] = [(0.0, (time.process_time() - c0) / 10.0 * 100)]
    out["rows_after_clear"] = shown
    print(json.dumps(out))


asyncio.run(main())
"""

# One refresh with one run running: the old full read against the reader's read of what changed.
REFRESH = r"""
import json, sys, time
root, db = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
from core.store import Store
store = Store(db)
out = {}
try:
    from core.runs_reader import RunsReader
except ImportError:
    from core.export import runs_table
    def once():
        runs_table(store)
else:
    reader = RunsReader()
    reader.changes(store)
    def once():
        reader.changes(store)
for i in range(7):
    t0, c0 = time.perf_counter(), time.process_time()
    once()
    out.setdefault("refresh", []).append((time.perf_counter() - t0, time.process_time() - c0))
print(json.dumps(out))
"""


def f2_painted(root: Path, db: Path, needle: bytes, idle_s: float, cwd: Path) -> dict[str, Any]:
    """F2 -> ``needle`` on screen, in a real terminal; then idle CPU over ``idle_s`` and peak RSS."""
    import psutil

    from bench._pty import PtyProcess

    p = PtyProcess([sys.executable, "-c", LAUNCH, str(root), "--db", str(db)], env=bench_env(), cols=160,
                   rows=48, cwd=str(cwd))
    try:
        p.watch_for(b"configure a run")
        deadline = time.monotonic() + 60
        while p.seen(b"configure a run") is None:
            if time.monotonic() > deadline or p.proc.poll() is not None:
                raise RuntimeError("the dashboard never drew its first frame:\n"
                                   + p.tail[-2000:].decode("utf-8", "replace"))
            time.sleep(0.01)
        time.sleep(2.0)  # the first screen settles (its output never stops: the device panel ticks at 1 Hz)
        p.watch_for(needle)
        proc = psutil.Process(p.proc.pid)
        c, t = sum(proc.cpu_times()[:2]), time.perf_counter()
        time.sleep(idle_s)  # the same dashboard on its first screen: what the history adds is the difference
        first_screen = (sum(proc.cpu_times()[:2]) - c) / (time.perf_counter() - t)
        c0 = sum(proc.cpu_times()[:2])
        t0 = time.perf_counter()
        p.send(F2)
        deadline = time.monotonic() + 120
        while p.seen(needle) is None:
            if time.monotonic() > deadline or p.proc.poll() is not None:
                raise RuntimeError(f"the history never showed {needle!r}")
            time.sleep(0.002)
        painted = (p.seen(needle) or 0.0) - t0
        paint_cpu = sum(proc.cpu_times()[:2]) - c0
        time.sleep(3.0)  # the screen settles (the old code's reloads)
        c1, t1 = sum(proc.cpu_times()[:2]), time.perf_counter()
        time.sleep(idle_s)
        idle = (sum(proc.cpu_times()[:2]) - c1) / (time.perf_counter() - t1)
        status = Path(f"/proc/{p.proc.pid}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    finally:
        p.close()
    return {"painted_s": painted, "paint_cpu_s": paint_cpu, "idle_core_pct": 100 * idle,
            "configure_idle_core_pct": 100 * first_screen, "peak_rss_mb": hwm / 1024}


def in_process(script: str, root: Path, db: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script, str(root), str(db)], capture_output=True, text=True,
                         env=bench_env(), cwd=ROOT, timeout=1200)
    if out.returncode != 0:
        raise SystemExit(f"{script[:60]!r} failed under {root}: {out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def with_one_running(db: Path, dest: Path) -> Path:
    """A copy of ``db`` whose newest run is running (what a refresh re-reads every 2 s)."""
    import shutil
    import sqlite3

    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(db)
        out = sqlite3.connect(dest)
        src.backup(out)
        src.close()
        out.execute("UPDATE runs SET status = 'running', ended_at = NULL WHERE id ="
                    " (SELECT id FROM runs ORDER BY created_at DESC LIMIT 1)")
        out.commit()
        out.close()
        shutil.rmtree(dest.parent / "runs", ignore_errors=True)
    return dest


def measure_screen(db: Path, runs: int, before: Path, rounds: int, idle_s: float, tmp: Path) -> dict[str, Any]:
    arms = {"before": before, "after": ROOT}
    needle = f"run {runs - 1}".encode()
    running_db = with_one_running(db, tmp / f"running-{runs}" / "runs.db")
    res: dict[str, Any] = {arm: {"pty": [], "actions": [], "refresh": []} for arm in arms}
    for i in range(rounds):
        order = list(arms) if i % 2 == 0 else list(arms)[::-1]  # ab, ba, ...
        for arm in order:
            res[arm]["pty"].append(f2_painted(arms[arm], db, needle, idle_s, tmp))
            res[arm]["actions"].append(in_process(ACTIONS, arms[arm], db))
            res[arm]["refresh"].append(in_process(REFRESH, arms[arm], running_db))
    return res


def screen_table(res: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    """(what, before median, after median, unit) from measure_screen's rounds."""
    def med(arm: str, pick: Any) -> float:
        xs = sorted(x for r in res[arm]["pty"] + res[arm]["actions"] + res[arm]["refresh"] for x in pick(r))
        return xs[len(xs) // 2] if xs else float("nan")

    lines = [("f2 -> table painted (wall)", "painted_s", "s"), ("  CPU of that", "paint_cpu_s", "s"),
             ("dashboard idle on history", "idle_core_pct", "%"),
             ("  same, on its first screen", "configure_idle_core_pct", "%"), ("peak RSS", "peak_rss_mb", "MB")]
    out = [(label, med("before", lambda r, k=k: [r[k]] if k in r else []),
            med("after", lambda r, k=k: [r[k]] if k in r else []), unit) for label, k, unit in lines]
    for name in ("open", "a key bound to nothing", "sort", "reverse sort", "mark", "filter keystroke", "clear filter", "refresh"):
        for j, kind in ((0, "wall"), (1, "CPU")):
            out.append((f"{name} ({kind})", med("before", lambda r, n=name, j=j: [x[j] for x in r.get(n, [])]),
                        med("after", lambda r, n=name, j=j: [x[j] for x in r.get(n, [])]), "ms"))
    out.append(("history screen alone, idle (CPU)",
                med("before", lambda r: [x[1] for x in r.get("screen idle, % of a core", [])]),
                med("after", lambda r: [x[1] for x in r.get("screen idle, % of a core", [])]), "%"))
    return [(label, b * 1000 if u == "ms" else b, a * 1000 if u == "ms" else a, u) for label, b, a, u in out]
