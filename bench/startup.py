"""Start-up of the UI side: ``gpt2-tui --help`` and the dashboard's first frame; no paddle in the UI.

1. ``gpt2-tui --help``: wall time of the installed console script, fresh process each time.
   Target: <= 0.3 s.
2. The dashboard's first frame, two ways, each in a fresh process (imports included):
   - real terminal: ``gpt2-tui`` in a pseudo-terminal (160 x 48, empty runs.db); time from spawn to the
     first output, and to the configure screen's header ("configure a run") being drawn;
   - headless: ``Gpt2App().run_test()`` in a subprocess that prints a marker after the first
     ``pilot.pause()``; time from spawn to the marker.
   Target: <= 1 s.
3. ``paddle`` must never load in the dashboard process: checked in the headless child
   (``sys.modules``, after the store worker and device sampling ran) and, for the real dashboard,
   from outside through the process's memory maps (no paddle shared library mapped).

Both timings alternate over rounds; medians and spread are printed.

Run:  python bench/startup.py [--quick] [--rounds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resource  # noqa: E402

import psutil  # noqa: E402

from bench._common import PY, ROOT, fmt_summary, machine, summary, write_json  # noqa: E402
from bench._pty import PtyProcess  # noqa: E402
from bench._runs import cli  # noqa: E402

MARK = b"configure a run"

HEADLESS = r"""
import asyncio, sys, time
t_import0 = time.perf_counter()
from tui.app import Gpt2App
t_import = time.perf_counter() - t_import0

async def main():
    app = Gpt2App()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        print("FRAME", time.process_time(), flush=True)
        await pilot.pause(1.5)  # let the store worker and a device sample run
        loaded = sorted(m for m in sys.modules if m == "paddle" or m.startswith(("paddle.", "paddlenlp")))
        print("IMPORT", t_import, flush=True)
        print("PADDLE", len(loaded), ",".join(loaded[:5]), flush=True)

asyncio.run(main())
"""


def time_help(env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``gpt2-tui --help``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([*cli(), "--help"], capture_output=True, text=True, env=env, timeout=60)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0 or "usage" not in p.stdout:
        raise RuntimeError(f"gpt2-tui --help failed: {p.stdout}{p.stderr}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def paddle_mapped(pid: int) -> list[str]:
    try:
        return sorted({m.path for m in psutil.Process(pid).memory_maps() if "paddle" in m.path.lower()})
    except psutil.Error:
        return ["<could not read memory maps>"]


def time_pty(env: dict[str, str], cwd: Path, timeout: float = 30) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = PtyProcess([*cli()], env=env, cwd=str(cwd))
    p.watch_for(MARK)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.seen(MARK) is None and p.proc.poll() is None:
        time.sleep(0.005)
    mark = p.seen(MARK)
    if mark is None:
        p.close()
        raise RuntimeError(f"the dashboard never drew {MARK!r} (exit {p.proc.returncode}):\n"
                           + p.tail[-2000:].decode("utf-8", "replace"))
    try:
        ct = psutil.Process(p.proc.pid).cpu_times()
        cpu = ct.user + ct.system
    except psutil.Error:
        cpu = None
    time.sleep(1.5)  # the store worker and device sampling have run by now
    mapped = paddle_mapped(p.proc.pid)
    p.close()
    return {"first_output_s": (p.t_first - t0) if p.t_first else None,
            "first_frame_s": (mark - t0) if mark else None, "first_frame_cpu_s": cpu, "paddle_mapped": mapped,
            "bytes": p.bytes}


def time_headless(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, "-c", HEADLESS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=str(cwd), text=True)
    assert proc.stdout is not None
    t_frame = cpu_frame = None
    lines = []
    for line in proc.stdout:
        if line.startswith("FRAME") and t_frame is None:
            t_frame = time.perf_counter() - t0
            cpu_frame = float(line.split()[1])
        lines.append(line.strip())
    proc.wait(60)
    if proc.returncode != 0 or t_frame is None:
        raise RuntimeError(f"headless dashboard failed ({proc.returncode}): {lines} {proc.stderr.read() if proc.stderr else ''}")
    imp = next(float(x.split()[1]) for x in lines if x.startswith("IMPORT"))
    pad = next(x for x in lines if x.startswith("PADDLE")).split(maxsplit=2)
    return {"first_frame_s": t_frame, "first_frame_cpu_s": cpu_frame, "import_tui_app_s": imp, "paddle_modules": int(pad[1]),
            "paddle_names": pad[2] if len(pad) > 2 else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 10; quick 3)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rounds = a.rounds or (3 if a.quick else 10)
    res: dict[str, Any] = {"machine": machine(), "rounds": rounds}
    print(f"UI start-up, {rounds} rounds; machine {res['machine']}")
    helps: list[tuple[float, float]] = []
    ptys: list[dict[str, Any]] = []
    heads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as td:
        tmp = Path(td)
        env = {**os.environ, "GPT2_TUI_DB": str(tmp / "runs.db"), "PYTHONPATH": str(ROOT)}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        time_help(env)  # warm the OS file cache once, as any second start is
        for r in range(rounds):
            jobs = [lambda: helps.append(time_help(env)), lambda: ptys.append(time_pty(env, tmp)),
                    lambda: heads.append(time_headless(env, tmp))]
            for job in jobs if r % 2 == 0 else jobs[::-1]:
                job()
    res["help_s"] = summary([w for w, _ in helps])
    res["help_cpu_s"] = summary([c for _, c in helps])
    res["pty_first_output_s"] = summary([p["first_output_s"] for p in ptys])
    res["pty_first_frame_s"] = summary([p["first_frame_s"] for p in ptys])
    res["pty_first_frame_cpu_s"] = summary([p["first_frame_cpu_s"] for p in ptys])
    res["headless_first_frame_s"] = summary([h["first_frame_s"] for h in heads])
    res["headless_first_frame_cpu_s"] = summary([h["first_frame_cpu_s"] for h in heads])
    res["import_tui_app_s"] = summary([h["import_tui_app_s"] for h in heads])
    res["paddle_in_dashboard"] = {"sys_modules": max(h["paddle_modules"] for h in heads),
                                  "mapped_libraries": sorted({m for p in ptys for m in p["paddle_mapped"]})}
    def verdict(key: str, target: float) -> str:
        med = res[key]["median"]
        return f"target <= {target:g} s: {'MET' if med is not None and med <= target else 'NOT MET'}"

    print("wall clock (and the process's own CPU time: on a loaded box, wall = CPU + waiting for a core)")
    print(f"gpt2-tui --help:                     {fmt_summary(res['help_s'], ' s', 3)}  {verdict('help_s', 0.3)}")
    print(f"  CPU:                               {fmt_summary(res['help_cpu_s'], ' s', 3)}  {verdict('help_cpu_s', 0.3)}")
    print(f"dashboard in a pty, first output:    {fmt_summary(res['pty_first_output_s'], ' s', 3)}")
    print(f"dashboard in a pty, first frame:     {fmt_summary(res['pty_first_frame_s'], ' s', 3)}  "
          f"{verdict('pty_first_frame_s', 1.0)}")
    print(f"  CPU:                               {fmt_summary(res['pty_first_frame_cpu_s'], ' s', 3)}  "
          f"{verdict('pty_first_frame_cpu_s', 1.0)}")
    print(f"dashboard headless (run_test), frame: {fmt_summary(res['headless_first_frame_s'], ' s', 3)}")
    print(f"  CPU:                               {fmt_summary(res['headless_first_frame_cpu_s'], ' s', 3)}")
    print(f"  of which `import tui.app` (wall):  {fmt_summary(res['import_tui_app_s'], ' s', 3)}")
    pid = res["paddle_in_dashboard"]
    print(f"paddle in the dashboard process: {pid['sys_modules']} paddle modules in sys.modules, "
          f"{len(pid['mapped_libraries'])} paddle libraries mapped -> {'OK' if not pid['sys_modules'] and not pid['mapped_libraries'] else 'PROBLEM'}")
    res["raw"] = {"pty": ptys, "headless": heads}
    write_json(a.json, json.loads(json.dumps(res, default=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
