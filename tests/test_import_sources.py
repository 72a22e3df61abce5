"""`gpt2-tui import` without training: run_glue logs, bad sources, and training_args.bin read safely."""

import os
import pickle

import pytest
from conftest import gpt2_tui

from core.imports import SourceError, import_run, read_source
from core.imports.pickled import load_plain
from core.store import Store

STEP = "global step %d/%d, epoch: %d, batch: %d, rank_id: %s, loss: %f, lr: %.10f, speed: %.4f step/s"
EVAL = "eval loss: %f, acc: %s, "
DONE = "eval done total : %s s"


def run_glue_log(path, total=6, upto=6):
    """What run_glue prints (its own format strings), as `python run_glue.py ... > path` saves it."""
    lines = ["-----------  Configuration Arguments -----------", "batch_size: 8", "learning_rate: 0.0001",
             "max_seq_length: 64", "model_name_or_path: gpt2-en", "------------------------------------------------"]
    for step in range(1, upto + 1):
        lines.append(STEP % (step, total, 0, step - 1, 0, 1.0 / step, 1e-4 * (1 - step / total), 2.0))
        if step % 3 == 0:
            lines.append(EVAL % (0.5, 0.5 + step / 100) + DONE % 1.5)  # print(..., end='') joins them
    path.write_text("\n".join(lines) + "\n")
    return path


def test_run_glue_log(tmp_path):
    log = run_glue_log(tmp_path / "glue.log")
    store = Store(tmp_path / "runs.db")
    run, created = import_run(store, log, tmp_path / "runs")
    assert created and run["status"] == "finished" and run["total_steps"] == 6
    m = store.metrics(run["id"])
    assert [r["step"] for r in m] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in m] == [pytest.approx(round(1.0 / s, 6)) for s in range(1, 7)]
    assert all(r["step_time"] == 0.5 for r in m)
    # No timestamps in the log: times step back from the file's mtime by each step's measured time.
    assert m[-1]["t"] == pytest.approx(os.stat(log).st_mtime, abs=1e-3)
    assert m[-1]["t"] - m[0]["t"] == pytest.approx(2.5)
    assert [(e["step"], e["accuracy"], e["loss"]) for e in store.evals(run["id"])] == [(3, 0.53, 0.5), (6, 0.56, 0.5)]
    # print_arguments' banner: the config the script ran with.
    assert run["config"]["learning_rate"] == 1e-4 and run["config"]["model_name_or_path"] == "gpt2-en"
    assert run["config"]["max_seq_length"] == 64

    again, created = import_run(store, log, tmp_path / "runs")
    assert not created and again["id"] == run["id"]
    # The same log grown (the run went on) is another run.
    cut = run_glue_log(tmp_path / "cut.log", total=6, upto=4)
    run2, _ = import_run(store, cut, tmp_path / "runs")
    assert run2["status"] == "stopped" and "ends at step 4 of 6" in run2["error"]


@pytest.mark.parametrize("make, expect", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "nothing to import here"),
    (lambda d: (d / "vdlrecords.1.log").write_bytes(b"\x00garbage" * 10) and d / "vdlrecords.1.log",
     "not a readable VisualDL log"),
    (lambda d: (d / "x.log").write_text("hello\nworld\n") and d / "x.log", "no training steps or evaluations"),
    (lambda d: (d / "x.bin").write_bytes(b"\x00\x01\x02") and d / "x.bin", "a binary file"),
])
def test_bad_sources_name_the_file(tmp_path, make, expect):
    src = tmp_path / "src"
    src.mkdir()
    path = make(src)
    with pytest.raises(SourceError, match=expect) as e:
        read_source(path)
    assert str(path) in str(e.value)


def test_cli_exit_2_and_nothing_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("no metrics here\n")
    p = gpt2_tui("--db", str(tmp_path / "runs.db"), "import", str(src / "notes.txt"), cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "notes.txt" in p.stderr
    assert not (tmp_path / "runs").exists()


def test_training_args_bin_is_read_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = pickle.dumps({"learning_rate": 3e-5, "evil": Evil()})
    out = load_plain(data)
    assert not marker.exists()
    assert out["learning_rate"] == 3e-5
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_plain(b"\x80\x04garbage")


def test_two_imports_of_one_source_at_once(tmp_path):
    import subprocess
    import sys

    from conftest import BIN

    log = run_glue_log(tmp_path / "glue.log")
    exe = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "core.cli"]
    procs = [subprocess.Popen([*exe, "--db", str(tmp_path / "runs.db"), "import", str(log)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1
    store = Store(tmp_path / "runs.db")
    (run,) = store.list_runs()
    assert [m["step"] for m in store.metrics(run["id"])] == [1, 2, 3, 4, 5, 6]
    assert [d.name for d in (tmp_path / "runs").iterdir()] == [run["id"]]


def test_a_launch_log_folder(tmp_path):
    # paddle.distributed.launch's default log folder: rank 0's workerlog is the one with the metrics.
    (tmp_path / "job" / "log").mkdir(parents=True)
    run_glue_log(tmp_path / "job" / "log" / "workerlog.0")
    (tmp_path / "job" / "log" / "workerlog.1").write_text("rank 1 prints nothing useful\n")
    src = read_source(tmp_path / "job")
    assert src.kind == "log" and src.path == (tmp_path / "job" / "log" / "workerlog.0").resolve()
    assert [e["step"] for e in src.events if e["type"] == "step"] == [1, 2, 3, 4, 5, 6]


def test_import_again_after_the_run_was_deleted(tmp_path):
    log = run_glue_log(tmp_path / "glue.log")
    store = Store(tmp_path / "runs.db")
    run, _ = import_run(store, log, tmp_path / "runs")
    store.delete_run(run["id"])  # the dashboard's delete without "folders too": the folder stays
    again, created = import_run(store, log, tmp_path / "runs")
    assert created and again["id"] == run["id"] and again["status"] == "finished"
    assert [m["step"] for m in store.metrics(run["id"])] == [1, 2, 3, 4, 5, 6]
