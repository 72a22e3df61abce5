"""Command-line conventions (issue 11): --db after the command, --version, stop's exit code, a progress line
that fits the terminal, and a log-tail error filter that knows PaddleNLP's and glog's error lines."""

import io
import json
import time

import pytest
from conftest import gpt2_tui

from core import cli
from core.progress import ProgressPrinter, RunProgress
from core.store import Store
from tui.logtail import WorkerLogs, is_error_line


def _fake_run(db, tmp_path, status="running"):
    store = Store(db)
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    store.create_run({"id": "r1", "kind": "train", "name": "one", "status": status, "run_dir": str(run_dir),
                      "config": {}, "command": [], "created_at": time.time()})
    return store


@pytest.mark.parametrize("where", ["before", "after"])
def test_db_before_or_after_the_command(tmp_path, where, capsys):
    db = tmp_path / "elsewhere.db"
    _fake_run(db, tmp_path, status="finished")
    argv = ["--db", str(db), "runs", "--json"] if where == "before" else ["runs", "--json", "--db", str(db)]
    assert cli.main(argv) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["r1"]


def test_db_after_the_command_through_the_installed_cli(tmp_path):
    r = gpt2_tui("show", "last", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert r.returncode == 2 and "no run matches 'last'" in r.stderr
    assert (tmp_path / "x.db").exists() and not (tmp_path / "runs.db").exists()


def test_version(tmp_path):
    r = gpt2_tui("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("gpt2-tui ") and r.stdout.split()[1][0].isdigit()


def test_stop_of_a_run_that_is_not_running_is_exit_0_and_says_so(tmp_path, capsys):
    _fake_run(tmp_path / "runs.db", tmp_path, status="finished")
    assert cli.main(["stop", "r1", "--db", str(tmp_path / "runs.db")]) == 0
    assert "is not running (status finished); nothing to stop" in capsys.readouterr().err


def test_stop_that_fails_is_exit_1(tmp_path, capsys, monkeypatch):
    import core.launch
    import core.reconcile

    store = _fake_run(tmp_path / "runs.db", tmp_path)
    # A run whose processes survive the stop request, SIGTERM and SIGKILL (e.g. a rank stuck in the kernel).
    monkeypatch.setattr(core.reconcile, "reconcile", lambda s, rid, **kw: s.get_run(rid))
    monkeypatch.setattr(core.launch, "stop_run", lambda s, run, grace=0: "running")
    monkeypatch.setattr(core.launch, "processes_of", lambda run: [])
    assert cli.main(["stop", "r1", "--db", str(store.path), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"id": "r1", "status": "running", "stopped": False}
    assert "could not be stopped" in captured.err


def test_stop_that_works_is_exit_0(tmp_path, capsys, monkeypatch):
    import core.launch
    import core.reconcile

    store = _fake_run(tmp_path / "runs.db", tmp_path)
    monkeypatch.setattr(core.reconcile, "reconcile", lambda s, rid, **kw: s.get_run(rid))
    monkeypatch.setattr(core.launch, "stop_run", lambda s, run, grace=0: "stopped")
    monkeypatch.setattr(core.launch, "processes_of", lambda run: [])
    assert cli.main(["stop", "r1", "--db", str(store.path)]) == 0
    assert "r1 stopped" in capsys.readouterr().out


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_line_fits_80_columns():
    prog = RunProgress()
    # every event carries its time (core.records validates it)
    prog.update({"type": "start", "t": 1000.0, "total_steps": 123456})
    prog.update({"type": "step", "t": 5000.0, "step": 99999, "epoch": 2.5, "loss": 0.123456,
                 "samples_per_s": 12345.6})
    prog.update({"type": "eval", "t": 5001.0, "accuracy": 0.9123})
    assert len(prog.line()) > 80  # the case that used to wrap
    out = _Tty()
    printer = ProgressPrinter(out, columns=lambda: 80)
    printer.show(prog.line())
    printer.show(prog.line())
    for redraw in out.getvalue().split("\r\x1b[2K")[1:]:
        assert 0 < len(redraw) <= 79 and "\n" not in redraw
    assert out.getvalue().rstrip().endswith("…")


def test_a_short_line_is_left_alone_and_a_pipe_gets_whole_lines():
    out = _Tty()
    ProgressPrinter(out, columns=lambda: 200).show("step 1/2")
    assert out.getvalue() == "\r\x1b[2Kstep 1/2"
    pipe = io.StringIO()
    ProgressPrinter(pipe, columns=lambda: 20).show("x" * 100, force=True)
    assert pipe.getvalue() == "x" * 100 + "\n"  # a log file keeps everything


def test_a_pipe_gets_a_line_only_when_it_changed():
    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, every_s=0.0)
    for text in ("step 0/?", "step 0/?", "step 0/?", "step 1/3", "step 1/3", "step 2/3"):
        printer.show(text)
    assert pipe.getvalue().splitlines() == ["step 0/?", "step 1/3", "step 2/3"]


@pytest.mark.parametrize("line", [
    "[2026-12-02 12:00:00,123] [   ERROR] - Something went wrong in the trainer",
    "E1202 12:00:00.123456  4242 collective_helper.cc:101] gloo: connection closed",
    "F1202 12:00:00.123456  4242 tensor.cc:12] Check failed: dims",
    "ValueError: bad shape",
    "Traceback (most recent call last):",
])
def test_error_lines_are_caught(line):
    assert is_error_line(line)


@pytest.mark.parametrize("line", [
    "[2026-12-02 12:00:00,123] [    INFO] - loss: 0.69",
    "W1202 12:00:00.123456  4242 gpu_resources.cc:12] a warning",
    "I1202 12:00:00.123456  4242 init.cc:12] ready",
    "Epoch 1/3 E1202",  # a glog-looking word inside a line is not glog's prefix
    # PaddleNLP says this at ERROR level on every healthy GPT-2 run: not shown as another rank's error
    "[2026-12-02 18:13:30,635] [   ERROR] - Using bos_token, but it is not set yet.",
])
def test_other_lines_are_not(line):
    assert not is_error_line(line)


def test_other_ranks_show_only_their_error_lines(tmp_path):
    (tmp_path / "workerlog.0").write_text("starting\n")
    (tmp_path / "workerlog.1").write_text("I1202 12:00:00.1 1 a.cc:1] fine\nE1202 12:00:01.2 1 b.cc:2] broken\n"
                                          "[2026-12-02] [   ERROR] - trainer failed\n")
    rank0, errors = WorkerLogs(tmp_path).poll()
    assert rank0 == ["starting"]
    assert errors == ["rank 1: E1202 12:00:01.2 1 b.cc:2] broken", "rank 1: [2026-12-02] [   ERROR] - trainer failed"]


def test_the_final_line_is_not_printed_twice_to_a_pipe():
    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, every_s=0.0)
    printer.show("step 60/60 | acc 0.79")
    printer.show("step 60/60 | acc 0.79", force=True)  # the run ended on the line already printed
    printer.show("step 60/60 | acc 0.80", force=True)  # a forced line that says something new
    assert pipe.getvalue().splitlines() == ["step 60/60 | acc 0.79", "step 60/60 | acc 0.80"]
