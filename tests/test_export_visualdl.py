"""`gpt2-tui export RUN --format visualdl`: VisualDL's own LogReader reads back what the store holds."""

import subprocess
import sys
import time

import pytest
from conftest import ROOT, gpt2_tui

from core.events import EventWriter
from core.follow import sync_events
from core.imports import import_run
from core.store import Store


def make_run(db, root):
    """A finished run written through our own event protocol, with a NaN loss among its steps."""
    store = Store(db)
    run_dir = root / "runs" / "r1"
    run_dir.mkdir(parents=True)
    store.create_run({"id": "r1", "name": "vdl-src", "status": "running", "run_dir": str(run_dir),
                      "model": "gpt2-tiny", "config": {}})
    t0 = time.time() - 100
    clock = {"t": t0}
    with EventWriter(run_dir / "events.jsonl", clock=lambda: clock["t"]) as w:
        w.emit("start", world_size=2, total_steps=6)
        for step in range(1, 7):
            clock["t"] = t0 + step
            loss = float("nan") if step == 4 else 1.0 / step
            w.emit("step", step=step, epoch=step / 6, loss=loss, lr=1e-4 * (7 - step), samples_per_s=100.0 + step,
                   tokens_per_s=5000.0 + step, step_time=0.5)
            if step % 3 == 0:
                w.emit("eval", step=step, accuracy=0.5 + step / 100, loss=0.7 - step / 100, n=300)
        w.emit("end", status="finished")
    sync_events(store, "r1")
    return store


def test_export_reads_back_with_visualdls_reader(tmp_path):
    from visualdl import LogReader

    db = tmp_path / "runs.db"
    store = make_run(db, tmp_path)
    out = tmp_path / "vdl"
    p = gpt2_tui("--db", str(db), "export", "r1", "--format", "visualdl", "-o", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    files = list(out.glob("vdlrecords.*.log"))
    assert len(files) == 1 and p.stdout.strip() == str(files[0])
    assert not [f for f in out.iterdir() if f.name.startswith(".")]  # no temporary folder left
    reader = LogReader(file_path=str(files[0]))

    def scalars(tag):
        return [(r.id, r.value, r.timestamp) for r in reader.get_data("scalar", tag)]

    m = store.metrics("r1")
    loss = scalars("train/loss")
    # The NaN step is left out of the loss curve; everything else is there, at its step and wall time.
    assert [s for s, _, _ in loss] == [1, 2, 3, 5, 6]
    assert [v for _, v, _ in loss] == pytest.approx([r["loss"] for r in m if r["step"] != 4], rel=1e-6)
    assert [ts for _, _, ts in loss] == [round(r["t"] * 1000) for r in m if r["step"] != 4]
    assert [v for _, v, _ in scalars("train/learning_rate")] == pytest.approx([r["lr"] for r in m], rel=1e-6)
    assert [v for _, v, _ in scalars("train/interval_samples_per_second")] == pytest.approx(
        [r["samples_per_s"] for r in m], rel=1e-6)
    assert [(s, v) for s, v, _ in scalars("eval/accuracy")] == [
        (e["step"], pytest.approx(e["accuracy"], rel=1e-6)) for e in store.evals("r1")]

    # And back in: an export imports as a run with the same curves.
    run, created = import_run(store, out, tmp_path / "runs")
    assert created
    assert [r["step"] for r in store.metrics(run["id"])] == [1, 2, 3, 4, 5, 6]
    back = {r["step"]: r for r in store.metrics(run["id"])}
    assert back[4]["loss"] is None and back[4]["lr"] == pytest.approx(m[3]["lr"], rel=1e-6)
    assert [e["accuracy"] for e in store.evals(run["id"])] == pytest.approx([0.53, 0.56], rel=1e-6)


def test_export_visualdl_mistakes(tmp_path):
    db = tmp_path / "runs.db"
    make_run(db, tmp_path)
    p = gpt2_tui("--db", str(db), "export", "r1", "--format", "visualdl", cwd=tmp_path)
    assert p.returncode == 2 and "-o DIR" in p.stderr
    (tmp_path / "afile").write_text("x")
    p = gpt2_tui("--db", str(db), "export", "r1", "--format", "visualdl", "-o", str(tmp_path / "afile"), cwd=tmp_path)
    assert p.returncode == 2 and "is a file" in p.stderr and "Traceback" not in p.stderr


def test_the_cli_imports_neither_visualdl_nor_paddle():
    code = ("import sys, core.cli; core.cli.build_parser(); "
            "print([m for m in ('visualdl', 'paddle', 'paddlenlp') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
