"""Monitoring overhead: a training run alone, against the same run watched by the dashboard.

(a) bare: ``gpt2-tui train --detach`` (offline preset: gpt2-tiny, 2 CPU ranks under
    paddle.distributed.launch) writes events.jsonl and nobody reads it.
(b) watched: the same run, and the dashboard attached to it from the start in a pseudo-terminal
    (160 x 48, ``tui.app.main(attach=RUN)``; the CLI has no ``attach`` subcommand), so everything a
    user's dashboard does runs: its follower (``core.follow.sync_events`` into runs.db every 1 s, the
    screen's own tail, alerts, worker-log tail, reconcile), ``core.devices.DeviceSampler`` at 1 Hz with
    ``process_stats`` of the run's processes, and Textual rendering the live screen (one frame a second).
    bench/screen_cpu.py measures the dashboard's own CPU per screen without timing a training.

With ``--nice N``, a third arm (c) is (b) with the dashboard started under ``nice -n N``: a cheap
mitigation to compare (the ranks then win every contended core).

All arms train on the same SST-2-like data (bench/sst2_like.py) for the same steps. Throughput is the
steady-state samples/s from the run's own step events (between flush boundaries, after the first 10 %
of the steps: start-up excluded). Arms alternate (ab, ba, ...) over rounds; the script prints medians,
spread, the ratio (b)/(a) and the dashboard's own CPU use. Target: (b) within 3 % of (a).

On a 2-core box the 2 ranks already take both cores, so every CPU-second the dashboard spends is taken
from training: this is the worst case for the dashboard.

Run:  python bench/monitor_overhead.py [--quick] [--rounds 3] [--steps 600] [--nice 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench._common import PY, fmt_summary, machine, summary, write_json  # noqa: E402
from bench._pty import PtyProcess  # noqa: E402
from bench._runs import cli_env, launch, read_events, run_dir, steady_rate, wait_exit, wait_for  # noqa: E402
from bench.sst2_like import write_sst2_like  # noqa: E402


class CpuTrace:
    """(unix time, CPU seconds) of a process every 0.25 s, to read its CPU use over any time window."""

    def __init__(self, pid: int):
        self.points: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._proc = psutil.Process(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ct = self._proc.cpu_times()
            except psutil.Error:
                return
            self.points.append((time.time(), ct.user + ct.system))
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def cpu_between(self, t0: float, t1: float) -> float | None:
        """CPU seconds spent between t0 and t1 (linear between samples); None without samples around them."""
        pts = self.points
        if len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
            return None

        def at(t: float) -> float:
            for (ta, ca), (tb, cb) in zip(pts, pts[1:], strict=False):
                if ta <= t <= tb:
                    return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else ca
            return pts[-1][1]

        return at(t1) - at(t0)


def one_run(tmp: Path, data: Path, steps: int, watched: bool, tag: str, timeout: float,
            nice: int = 0) -> dict[str, Any]:
    db = tmp / f"{tag}.db"
    env = cli_env(tmp)
    run_id, _ = launch(db, data, steps, env, name=tag)
    rdir = run_dir(db, run_id)
    dash = trace = None
    if watched:
        prefix = ["nice", "-n", str(nice)] if nice else []
        dash = PtyProcess([*prefix, PY, "-c", f"from tui.app import main; main(attach={run_id!r})"],
                          env={**env, "GPT2_TUI_DB": str(db)}, cwd=str(tmp))
        trace = CpuTrace(dash.proc.pid)
    cpu_dash = None
    try:
        ev, _ = wait_for(rdir / "events.jsonl", lambda e: e.get("type") == "end", timeout)
        if ev is None:
            raise RuntimeError(f"run {run_id} did not end within {timeout:.0f} s; see {rdir}")
        if dash is not None:
            if dash.proc.poll() is not None:  # it must watch the whole run, or (b) measures nothing
                tail = dash.tail[-2000:].decode("utf-8", "replace")
                raise RuntimeError(f"the dashboard exited early (code {dash.proc.returncode}):\n{tail}")
            try:
                ps = psutil.Process(dash.proc.pid)
                ct = ps.cpu_times()
                cpu_dash = ct.user + ct.system
            except psutil.Error:
                pass
        wait_exit(rdir)
    finally:
        if trace is not None:
            trace.stop()
        if dash is not None:
            dash.close()
    events = read_events(rdir / "events.jsonl")
    res = steady_rate(events, max(10, steps // 10))
    start = next(e for e in events if e["type"] == "start")
    end = next(e for e in events if e["type"] == "end")
    res.update(run_id=run_id, status=end.get("status"), run_s=end["t"] - start["t"])
    if dash is not None:
        from core.store import Store

        store = Store(db)
        res["ingested_metric_rows"] = store.summary(run_id)["metric_rows"]
        store.close()
        res["dashboard_cpu_s"] = cpu_dash
        res["dashboard_cpu_pct"] = 100 * cpu_dash / res["run_s"] if cpu_dash and res["run_s"] else None
        # The dashboard's CPU inside the timed window only (its start-up, ~1 CPU-second, is before it).
        win = trace.cpu_between(res["window_t0"], res["window_t1"]) if trace and res.get("window_t0") else None
        res["dashboard_window_cpu_pct"] = 100 * win / res["window_s"] if win is not None and res["window_s"] else None
        res["dashboard_bytes"] = dash.bytes
        res["dashboard_exit"] = dash.proc.returncode
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 120 steps")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of (a, b) (default 3; quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="steps a run (default 600; quick 150)")
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--nice", type=int, default=0,
                    help="add arm (c): (b) with the dashboard under `nice -n N` (a mitigation to compare)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rounds = a.rounds or (1 if a.quick else 3)
    steps = a.steps or (150 if a.quick else 600)
    arms = ["a", "b", *(["c"] if a.nice else [])]
    labels = {"a": "(a) bare   ", "b": "(b) watched", "c": f"(c) nice {a.nice:<3}"}
    results: dict[str, Any] = {"machine": machine(), "steps": steps, "rounds": rounds, "nice": a.nice,
                               "runs": {k: [] for k in arms}}
    print(f"monitor overhead: {steps} steps a run (gpt2-tiny, offline preset, 2 CPU ranks), {rounds} round(s); "
          f"machine {results['machine']}")
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as td:
        tmp = Path(td)
        data = write_sst2_like(tmp / "data", a.n_train)
        for r in range(rounds):
            for arm in arms if r % 2 == 0 else arms[::-1]:
                t0 = time.perf_counter()
                res = one_run(tmp, data, steps, arm != "a", f"r{r}{arm}", a.timeout, a.nice if arm == "c" else 0)
                results["runs"][arm].append(res)
                extra = ""
                if arm != "a":
                    extra = (f", dashboard CPU {res['dashboard_window_cpu_pct'] or float('nan'):.1f} % of a core in the "
                             f"window ({res['dashboard_cpu_pct']:.1f} % over the run), "
                             f"{res['ingested_metric_rows']} rows ingested, {res['dashboard_bytes'] / 1024:.0f} KiB drawn")
                print(f"  round {r + 1} {labels[arm]}: "
                      f"{res['samples_per_s']:.1f} samples/s over {res['window_steps']} steps "
                      f"({res['window_s']:.1f} s){extra}; {time.perf_counter() - t0:.0f} s", flush=True)
    sa = summary([x["samples_per_s"] for x in results["runs"]["a"]])
    sb = summary([x["samples_per_s"] for x in results["runs"]["b"]])
    pairs = summary([b["samples_per_s"] / a_["samples_per_s"]
                     for a_, b in zip(results["runs"]["a"], results["runs"]["b"], strict=True)])
    ratio = sb["median"] / sa["median"]
    cpu = summary([x["dashboard_window_cpu_pct"] for x in results["runs"]["b"]
                   if x.get("dashboard_window_cpu_pct") is not None])
    results.update(bare=sa, watched=sb, ratio=ratio, paired_ratio=pairs, dashboard_cpu_pct=cpu)
    print(f"\n(a) bare     {fmt_summary(sa, ' samples/s')}")
    print(f"(b) watched  {fmt_summary(sb, ' samples/s')}")
    print(f"ratio (b)/(a): {ratio:.3f} (median of per-round ratios {pairs['median']:.3f}, min {pairs['min']:.3f}, "
          f"max {pairs['max']:.3f}); slowdown {100 * (1 - ratio):.1f} %")
    print(f"dashboard process CPU in the timed window: {fmt_summary(cpu, ' % of one core')}")
    print(f"target: (b) within 3 % of (a): {'MET' if ratio >= 0.97 else 'NOT MET'}")
    if "c" in results["runs"]:
        sc = summary([x["samples_per_s"] for x in results["runs"]["c"]])
        pc = summary([c["samples_per_s"] / a_["samples_per_s"]
                      for a_, c in zip(results["runs"]["a"], results["runs"]["c"], strict=True)])
        cc = summary([x["dashboard_window_cpu_pct"] for x in results["runs"]["c"]
                      if x.get("dashboard_window_cpu_pct") is not None])
        results.update(watched_nice=sc, ratio_nice=sc["median"] / sa["median"], paired_ratio_nice=pc,
                       dashboard_cpu_pct_nice=cc)
        print(f"(c) watched, dashboard at nice {a.nice}: {fmt_summary(sc, ' samples/s')}; ratio (c)/(a) "
              f"{sc['median'] / sa['median']:.3f} (per-round {pc['min']:.3f}-{pc['max']:.3f}); dashboard CPU "
              f"{fmt_summary(cc, ' % of one core')}")
    write_json(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
