"""Ingest rate and the 1,000,000-point chart: events/s into runs.db, chart redraw, a long run's first frame.

1. Ingest: an events.jsonl of N step events (written by core.events.EventWriter, the trainer's writer,
   with a heartbeat, a ranks record and a log line mixed in every 100 steps, as a 2-rank run writes) is
   ingested into a fresh runs.db by ``core.follow.sync_events`` — the follower's whole path: read,
   parse, validate, ``Store.ingest``. Also timed apart: parsing alone (``core.events.read_from``) and
   ``Store.ingest`` of pre-parsed events, and a live-like follow (the file grows by 500 events at a time
   and each slice is synced, as a follower polling a fast run does). Target: >= 50,000 events/s.
2. Chart redraw with 1,000,000 points: the live screen's charts (tui.widgets.run_charts.RunCharts: loss,
   loss EMA, learning rate, samples/s, tokens/s — five 1M-point series) in a headless Textual app
   (``App.run_test``, 160 x 48). One redraw = new points arrive, every chart recomputes its lines
   (decimation + rasterising) and the screen is composited: timed as ``refresh`` + ``pilot.pause()``
   and, apart, the charts' own line computation. Target: <= 50 ms.
3. First frame of a 1,000,000-step run's page: a runs.db holding one run with 1M metric rows; time
   from pushing ``tui.screens.run_page.RunPage`` to its first frame (charts drawn from the preview, one
   step in k, ``Store.metric_preview``) and to every point drawn (the full read), and the parts of
   that path timed alone: ``Store.metric_arrays`` + ``metric_xy`` (x4, what the page reads), the EMA, and
   for comparison the old path, ``Store.metrics`` (1M dicts) + ``compare_logic.column`` (x4). Target: <= 1 s.

Run:  python bench/ingest.py [--quick] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Timer, fmt_summary, machine, summary, write_json  # noqa: E402

RUN_ID = "20240101-000000-bench"


# --------------------------------------------------------------------------- data
def write_events(path: Path, n_steps: int, seed: int = 0) -> int:
    """A 2-rank run's event file with n_steps step events; returns the number of events."""
    from core.events import EventWriter

    r = random.Random(seed)
    n = 0
    t = [1_700_000_000.0]

    def clock() -> float:
        t[0] += 0.01
        return t[0]

    with EventWriter(path, clock=clock) as w:
        w.emit("start", world_size=2, nnodes=1, devices=["cpu:0", "cpu:1"], versions={"paddle": "3.3.1"},
               total_steps=n_steps, samples_per_epoch=67349, num_epochs=1.0, resumed_from_step=0, pid=1)
        n += 1
        loss = 0.7
        for s in range(1, n_steps + 1):
            loss = max(0.05, loss * 0.99999 + r.gauss(0, 0.02))
            w.emit("step", step=s, epoch=s / 2105, loss=loss, lr=2e-5 * (1 - s / n_steps), samples_per_s=510.3 + r.random(),
                   tokens_per_s=5800.0 + r.random() * 100, step_time=0.0627)
            n += 1
            if s % 100 == 0:
                w.emit("heartbeat", rank=0, step=s, mem_bytes=812_000_000, host="box", local_rank=0, device="cpu:0")
                w.emit("ranks", step=s, ranks=[{"rank": k, "host": "box", "local_rank": k, "device": f"cpu:{k}",
                                                "step_time": 0.06, "samples": s * 16, "mem_bytes": 8e8, "util": 99.0}
                                               for k in range(2)])
                w.emit("log", level="info", text=f"step {s}")
                n += 3
        w.emit("end", status="finished", reason="done")
        n += 1
    return n


def new_store(db: Path, run_dir: Path) -> Any:
    from core.store import Store

    store = Store(db)
    store.create_run({"id": RUN_ID, "status": "running", "run_dir": str(run_dir), "model": "gpt2-tiny",
                      "world_size": 2})
    return store


# --------------------------------------------------------------------------- 1. ingest
def bench_ingest(tmp: Path, n_steps: int, rounds: int) -> dict[str, Any]:
    from core.events import read_from
    from core.follow import sync_events

    run_dir = tmp / "run"
    run_dir.mkdir()
    ev_path = run_dir / "events.jsonl"
    t0 = time.perf_counter()
    n_events = write_events(ev_path, n_steps)
    write_s = time.perf_counter() - t0
    size = ev_path.stat().st_size
    print(f"[ingest] {n_events:,} events ({size / 2**20:.1f} MiB) written by EventWriter in {write_s:.2f} s "
          f"({n_events / write_s:,.0f} events/s, one flushed line each)")
    kinds = ["sync_events", "parse_only", "store_ingest", "live_slices"]
    wall: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    chunk = read_from(ev_path, 0, max_bytes=1 << 30)
    parsed = chunk.events
    slice_events = 500
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            db = tmp / f"r{r}-{kind}.db"
            if kind == "parse_only":
                with Timer() as tm:
                    c = read_from(ev_path, 0, max_bytes=1 << 30)
                assert len(c.events) == n_events
            elif kind == "sync_events":
                store = new_store(db, run_dir)
                with Timer() as tm:
                    got = sync_events(store, RUN_ID)
                assert got == n_events, (got, n_events)
                store.close()
            elif kind == "store_ingest":
                store = new_store(db, run_dir)
                with Timer() as tm:
                    ok = store.ingest(RUN_ID, 0, chunk.offset, parsed)
                assert ok
                store.close()
            else:  # a live follower: the file grows slice by slice, one sync_events per slice
                tm = live_follow(tmp / f"r{r}-live", db, ev_path, slice_events)
            wall[kind].append(n_events / tm.wall)
            cpu[kind].append(n_events / tm.cpu)
    out: dict[str, Any] = {f"{k}_wall": summary(v) for k, v in wall.items()}
    out.update({f"{k}_cpu": summary(v) for k, v in cpu.items()})
    out.update(n_events=n_events, file_mib=size / 2**20, write_events_per_s=n_events / write_s)
    labels = {"sync_events": "sync_events (read + parse + ingest)", "parse_only": "read_from (parse only)",
              "store_ingest": "Store.ingest (pre-parsed)", "live_slices": f"live follow, {slice_events}-event slices"}
    print("  events/s by wall clock | by CPU time of this process")
    for k, label in labels.items():
        print(f"  {label:<38} {fmt_summary(out[k + '_wall'], '', 0)} | {fmt_summary(out[k + '_cpu'], '', 0)}")
    for basis in ("wall", "cpu"):
        med = out[f"sync_events_{basis}"]["median"]
        print(f"  target >= 50,000 events/s through sync_events ({basis}): {med / 50_000:.2f}x of target -> "
              f"{'MET' if med >= 50_000 else 'NOT MET'}")
    return out


class _Sum:
    wall = 0.0
    cpu = 0.0


def live_follow(run_dir: Path, db: Path, src: Path, per_slice: int) -> _Sum:
    """Copy src into run_dir/events.jsonl per_slice lines at a time, sync_events after each; ingest time only."""
    from core.follow import sync_events

    run_dir.mkdir()
    lines = src.read_bytes().splitlines(keepends=True)
    store = new_store(db, run_dir)
    spent = _Sum()
    with open(run_dir / "events.jsonl", "ab") as fh:
        for i in range(0, len(lines), per_slice):
            fh.write(b"".join(lines[i : i + per_slice]))
            fh.flush()
            with Timer() as tm:
                sync_events(store, RUN_ID)
            spent.wall += tm.wall
            spent.cpu += tm.cpu
    store.close()
    return spent


# --------------------------------------------------------------------------- 2. chart redraw
def fake_series(n: int) -> dict[str, tuple[Any, Any]]:
    import numpy as np

    from tui.runstate import LOSS, LOSS_EMA, LR, SAMPLES, TOKENS

    rng = np.random.default_rng(0)
    x = np.arange(1, n + 1, dtype=np.float64)
    loss = 0.7 * np.exp(-x / (n / 3)) + 0.05 + rng.normal(0, 0.03, n)
    return {LOSS: (x, loss), LOSS_EMA: (x, loss * 0.98), LR: (x, 2e-5 * (1 - x / n)),
            SAMPLES: (x, 500 + rng.normal(0, 5, n)), TOKENS: (x, 5800 + rng.normal(0, 60, n))}


async def _chart_redraw(n_points: int, redraws: int, size: tuple[int, int]) -> dict[str, Any]:
    from textual.app import App, ComposeResult

    from tui.runstate import LOSS, LOSS_EMA, LR, SAMPLES, TOKENS
    from tui.widgets.run_charts import RunCharts

    class ChartApp(App[None]):
        def compose(self) -> ComposeResult:
            yield RunCharts(id="charts", refresh_interval=3600)  # the timer never fires: we drive redraws

    app = ChartApp()
    out: dict[str, Any] = {}
    async with app.run_test(size=size) as pilot:
        charts = app.query_one(RunCharts)
        data = fake_series(n_points)
        t0 = time.perf_counter()
        charts.extend(data)  # type: ignore[arg-type]
        out["extend_1m_s"] = time.perf_counter() - t0
        widgets = list(charts.charts.values())
        t0 = time.perf_counter()
        for w in widgets:
            w.refresh()
        await pilot.pause()
        out["first_render_s"] = time.perf_counter() - t0
        full: list[Timer] = []
        lines: list[Timer] = []
        step = n_points
        for _ in range(redraws):
            step += 1
            for name in (LOSS, LOSS_EMA, LR, SAMPLES, TOKENS):
                charts._owner[name].append(name, step, float(data[name][1][-1]))
            with Timer() as tm:
                for w in widgets:
                    w.refresh()
                await pilot.pause()
            full.append(tm)
            # The charts' own work again (new point, cache invalidated): decimate + rasterise + strips.
            step += 1
            for name in (LOSS, LOSS_EMA, LR, SAMPLES, TOKENS):
                charts._owner[name].append(name, step, float(data[name][1][-1]))
            with Timer() as tm:
                for w in widgets:
                    w._strips()
            lines.append(tm)
        out["points_per_series"] = len(widgets[0].series(LOSS))
        out["chart_sizes"] = [tuple(w.size) for w in widgets]
        for key, tms in (("redraw_full", full), ("redraw_charts_only", lines)):
            out[f"{key}_ms_wall"] = summary([t.wall * 1000 for t in tms])
            out[f"{key}_ms_cpu"] = summary([t.cpu * 1000 for t in tms])
    return out


def bench_chart(n_points: int, redraws: int) -> dict[str, Any]:
    size = (160, 48)
    out = asyncio.run(_chart_redraw(n_points, redraws, size))
    print(f"\n[chart] {n_points:,} points in each of 5 series (RunCharts, terminal {size[0]}x{size[1]}, "
          f"chart panes {out['chart_sizes']})")
    print(f"  feeding the points (extend): {out['extend_1m_s'] * 1000:.0f} ms; first render {out['first_render_s'] * 1000:.0f} ms")
    print("  wall clock | CPU time of this process")
    print(f"  redraw, refresh + composite (pilot.pause): {fmt_summary(out['redraw_full_ms_wall'], ' ms')} | "
          f"{fmt_summary(out['redraw_full_ms_cpu'], ' ms')}")
    print(f"  redraw, the 3 charts' line computation:    {fmt_summary(out['redraw_charts_only_ms_wall'], ' ms')} | "
          f"{fmt_summary(out['redraw_charts_only_ms_cpu'], ' ms')}")
    for basis in ("wall", "cpu"):
        med = out[f"redraw_full_ms_{basis}"]["median"]
        print(f"  target <= 50 ms ({basis}): {'MET' if med <= 50 else 'NOT MET'} ({med:.1f} ms)")
    return out


# --------------------------------------------------------------------------- 3. run page first frame
def fill_metrics(db: Path, run_dir: Path, n: int) -> None:
    """One finished run with n metric rows, inserted directly (the content ingest would produce)."""
    import numpy as np

    store = new_store(db, run_dir)
    x = np.arange(1, n + 1)
    rng = np.random.default_rng(1)
    loss = 0.7 * np.exp(-x / (n / 3)) + 0.05 + rng.normal(0, 0.03, n)
    rows = ((RUN_ID, int(s), s / 2105, float(v), 2e-5, 510.0, 5800.0, 0.06, 1.7e9 + s) for s, v in zip(x, loss, strict=True))
    store.conn.execute("BEGIN")
    store.conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?)", rows)
    store.conn.execute("COMMIT")
    store.finish_run(RUN_ID, "finished")
    store.update_run(RUN_ID, total_steps=n)
    store.close()


async def _page_first_frame(db: Path) -> dict[str, Any]:
    from textual.app import App

    from tui.screens.run_page import RunPage
    from tui.widgets.chart import ChartWidget
    from tui.widgets.run_charts import RunCharts

    class Host(App[None]):
        pass

    app = Host()
    painted: list[tuple[float, float, int]] = []  # (wall, cpu, loss points) when a chart line is painted

    def paint_spy(chart: ChartWidget, y: int) -> Any:
        if page.loaded and (not painted or painted[-1][2] != charts.series_len("loss")):
            painted.append((time.perf_counter() - t0, time.process_time() - c0, charts.series_len("loss")))
        return render_line(chart, y)

    render_line = ChartWidget.render_line
    ChartWidget.render_line = paint_spy  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            t0, c0 = time.perf_counter(), time.process_time()
            page = RunPage(RUN_ID, db, refresh_s=0)
            await app.push_screen(page)
            charts = page.query_one(RunCharts)
            while not page.loaded:
                await asyncio.sleep(0.005)
            t_loaded, c_loaded = time.perf_counter() - t0, time.process_time() - c0
            while not page.complete:
                await asyncio.sleep(0.005)
            await pilot.pause()
            charts.refresh_now()
            await pilot.pause()
            n = charts.series_len("loss")
    finally:
        ChartWidget.render_line = render_line  # type: ignore[method-assign]
    first, full = painted[0], painted[-1]
    assert full[2] == n, (painted, n)
    return {"loaded_s_wall": t_loaded, "loaded_s_cpu": c_loaded, "first_frame_s_wall": first[0],
            "first_frame_s_cpu": first[1], "full_frame_s_wall": full[0], "full_frame_s_cpu": full[1],
            "first_points": first[2], "points": n}


def page_parts(db: Path) -> dict[str, float]:
    """The run page's load path piece by piece (as RunPage._load does it): wall and CPU seconds."""
    import numpy as np

    from core.store import Store
    from tui.compare_logic import Ema, column, metric_xy
    from tui.runstate import EMA_BETA

    out = {}

    def record(name: str, tm: Timer) -> None:
        out[f"{name}_wall"], out[f"{name}_cpu"] = tm.wall, tm.cpu

    with Timer() as tm:
        store = Store(db)
        metrics = store.metrics(RUN_ID)
    record("store_metrics_s", tm)
    with Timer() as tm:
        cols = [column(metrics, "step", k) for k in ("loss", "lr", "samples_per_s", "tokens_per_s")]
    record("column_x4_s", tm)
    with Timer() as tm:
        Ema(EMA_BETA).feed(*cols[0])
    record("ema_s", tm)
    with Timer() as tm:  # what RunPage._load does since metric_arrays: 5 columns into numpy, NULL rows dropped
        arrays = store.metric_arrays(RUN_ID)
        xy = [metric_xy(arrays, k) for k in ("loss", "lr", "samples_per_s", "tokens_per_s")]
    record("metric_arrays_s", tm)
    assert all(np.array_equal(a[1], c[1]) for a, c in zip(xy, cols, strict=True))
    with Timer() as tm:
        cur = store.conn.execute("SELECT step, loss, lr, samples_per_s, tokens_per_s FROM metrics WHERE run_id = ? "
                                 "ORDER BY step", (RUN_ID,))
        arr = np.array(cur.fetchall(), dtype=np.float64)
    record("tuples_to_numpy_s", tm)
    assert arr.shape[0] == len(metrics)
    store.close()
    return out


def bench_page(tmp: Path, n: int, rounds: int) -> dict[str, Any]:
    db = tmp / "page.db"
    run_dir = tmp / "page-run"
    run_dir.mkdir()
    t0 = time.perf_counter()
    fill_metrics(db, run_dir, n)
    print(f"\n[run page] {n:,} metric rows in one run (filled in {time.perf_counter() - t0:.1f} s)")
    frames: list[dict[str, Any]] = []
    parts: list[dict[str, float]] = []
    for r in range(rounds):
        if r % 2 == 0:
            frames.append(asyncio.run(_page_first_frame(db)))
            parts.append(page_parts(db))
        else:
            parts.append(page_parts(db))
            frames.append(asyncio.run(_page_first_frame(db)))
        assert frames[-1]["points"] == n, frames[-1]
    out: dict[str, Any] = {}
    for k in ("first_frame_s_wall", "first_frame_s_cpu", "loaded_s_wall", "loaded_s_cpu", "full_frame_s_wall",
              "full_frame_s_cpu"):
        out[k] = summary([f[k] for f in frames])
    for k in parts[0]:
        out[k] = summary([p[k] for p in parts])

    def line(label: str, key: str) -> None:
        print(f"  {label:<46} {fmt_summary(out[key + '_wall'], ' s', 2)} | {fmt_summary(out[key + '_cpu'], ' s', 2)}")

    print("  wall clock | CPU time of this process")
    line(f"RunPage pushed -> first frame ({frames[0]['first_points']:,} points)", "first_frame_s")
    line("  of which the worker's read (until Loaded)", "loaded_s")
    line(f"RunPage pushed -> every point drawn ({n:,})", "full_frame_s")
    line("  Store.metric_arrays + metric_xy x4 (the page's read)", "metric_arrays_s")
    line("  Ema.feed (vectorised)", "ema_s")
    line(f"  for comparison: Store.metrics ({n:,} dicts)", "store_metrics_s")
    line("  for comparison: compare_logic.column x4", "column_x4_s")
    line("  for comparison: SELECT 5 columns -> numpy", "tuples_to_numpy_s")
    for basis in ("wall", "cpu"):
        med = out[f"first_frame_s_{basis}"]["median"]
        print(f"  target <= 1 s ({basis}): {'MET' if med <= 1.0 else 'NOT MET'} ({med:.2f} s, {med:.1f}x the target)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 100,000 points, 1 round")
    ap.add_argument("--events", type=int, default=None, help="step events to ingest (default 200,000)")
    ap.add_argument("--points", type=int, default=None, help="chart / run page points (default 1,000,000)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 1)")
    ap.add_argument("--redraws", type=int, default=20)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: ingest, chart, page")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    events = a.events or (20_000 if a.quick else 200_000)
    points = a.points or (100_000 if a.quick else 1_000_000)
    rounds = a.rounds or (1 if a.quick else 5)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    results: dict[str, Any] = {"machine": machine(), "events": events, "points": points, "rounds": rounds}
    print(f"ingest / chart benchmark; machine {results['machine']}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as td:
        tmp = Path(td)
        if "ingest" not in skip:
            results["ingest"] = bench_ingest(tmp, events, rounds)
        if "chart" not in skip:
            results["chart"] = bench_chart(points, a.redraws if not a.quick else 5)
        if "page" not in skip:
            results["page"] = bench_page(tmp, points, max(1, min(rounds, 3)))
    write_json(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
