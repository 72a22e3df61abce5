"""`gpt2-tui watch -- COMMAND`: any training command recorded as a run, from a Trainer callback or its lines."""

import json
import sys
import time
from pathlib import Path

import pytest
from conftest import gpt2_tui

from core.events import read_all
from core.store import Store

HERE = Path(__file__).resolve().parent

# A script that only prints, with run_glue's own format strings.
GLUE = '''
import sys, time
fmt = "global step %d/%d, epoch: %d, batch: %d, rank_id: %s, loss: %f, lr: %.10f, speed: %.4f step/s"
steps = int(sys.argv[1])
for step in range(1, steps + 1 if steps else 10**9):
    print(fmt % (step, steps or 10**6, 0, step - 1, 0, 1.0 / step, 1e-4, 5.0))
    if step % 3 == 0:
        print("eval loss: %f, acc: %s, " % (0.5, 0.5 + step / 100), end="")
        print("eval done total : %s s" % 0.1)
    time.sleep(0.05 if steps else 0.2)
print("a line that is not a metric")
sys.exit(int(sys.argv[2]))
'''


def script(tmp_path):
    p = tmp_path / "glue_print.py"
    p.write_text(GLUE)
    return str(p)


def the_run(db):
    store = Store(db)
    runs = store.list_runs()
    assert len(runs) == 1
    return store, runs[0]


def test_a_script_that_only_prints_run_glue_lines(tmp_path):
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "watch", "--run_name", "glue", "--", sys.executable, script(tmp_path), "6", "0",
                 cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    store, run = the_run(db)
    assert run["name"] == "glue" and run["status"] == "finished" and run["exit_code"] == 0
    assert run["total_steps"] == 6
    m = store.metrics(run["id"])
    assert [r["step"] for r in m] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in m] == [pytest.approx(round(1 / s, 6)) for s in range(1, 7)]
    assert [(e["step"], e["accuracy"]) for e in store.evals(run["id"])] == [(3, 0.53), (6, 0.56)]
    assert any(r["text"] == "a line that is not a metric" for r in store.logs(run["id"]))


def test_a_failing_command(tmp_path):
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "watch", "--", sys.executable, script(tmp_path), "2", "3", cwd=tmp_path,
                 timeout=120)
    assert p.returncode == 1
    store, run = the_run(db)
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert "exit code 3" in run["error"] and "a line that is not a metric" in run["error"]
    assert [r["step"] for r in store.metrics(run["id"])] == [1, 2]


def test_nothing_to_run_is_a_user_error(tmp_path):
    p = gpt2_tui("--db", str(tmp_path / "runs.db"), "watch", cwd=tmp_path)
    assert p.returncode == 2 and "after --" in p.stderr


def test_stop_a_watched_script(tmp_path):
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "watch", "--detach", "--", sys.executable, script(tmp_path), "0", "0",
                 cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    run_id = p.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(e["type"] == "step" for e in read_all(tmp_path / "runs" / run_id / "events.jsonl")):
            break
        time.sleep(0.2)
    # A script without the Trainer ignores the stop file: after the grace, the whole group gets SIGTERM.
    p = gpt2_tui("--db", str(db), "stop", run_id, "--grace", "1", "--json", cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "stopped"
    store, run = the_run(db)
    assert store.metrics(run_id)


@pytest.mark.slow
def test_a_script_that_uses_paddlenlps_trainer(tmp_path):
    db = tmp_path / "runs.db"
    out = tmp_path / "out"
    p = gpt2_tui("--db", str(db), "watch", "--", sys.executable, str(HERE / "paddlenlp_run.py"), str(out),
                 cwd=tmp_path, timeout=400, env={"OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    store, run = the_run(db)
    assert run["status"] == "finished" and run["total_steps"] == 4 and run["samples_per_epoch"] == 16
    run_dir = tmp_path / "runs" / run["id"]
    # The injected callback reported (its own file), and the log lines did not add a second copy.
    from_callback = [e for e in read_all(run_dir / "trainer_events.jsonl") if e["type"] == "step"]
    assert [e["step"] for e in from_callback] == [1, 2, 3, 4]
    assert [e["step"] for e in read_all(run_dir / "events.jsonl") if e["type"] == "step"] == [1, 2, 3, 4]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [r["loss"] for r in store.metrics(run["id"])] == [h["loss"] for h in history if "loss" in h]
    assert [(e["step"], e["accuracy"]) for e in store.evals(run["id"])] == [
        (h["step"], h["eval_accuracy"]) for h in history if "eval_accuracy" in h]
    assert [(c["step"], c["path"]) for c in store.checkpoints(run["id"])] == [
        (2, str(out / "checkpoint-2")), (4, str(out / "checkpoint-4"))]


@pytest.mark.slow
def test_stop_a_watched_trainer_saves_a_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    out = tmp_path / "out"
    p = gpt2_tui("--db", str(db), "watch", "--detach", "--", sys.executable, str(HERE / "paddlenlp_run.py"),
                 str(out), "--max_steps", "100000", cwd=tmp_path, timeout=60, env={"OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr
    run_id = p.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if any(e["type"] == "step" for e in read_all(tmp_path / "runs" / run_id / "events.jsonl")):
            break
        time.sleep(0.5)
    # The callback sees the stop file at the next step: the Trainer saves, then stops, before any signal.
    p = gpt2_tui("--db", str(db), "stop", run_id, "--grace", "120", "--json", cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "stopped"
    store = Store(db)
    run = store.get_run(run_id)
    assert run["exit_code"] == 0  # it ended on its own, not by SIGTERM
    last = store.checkpoints(run_id)[-1]
    assert (out / f"checkpoint-{last['step']}" / "model_state.pdparams").is_file()
    assert last["step"] == max(m["step"] for m in store.metrics(run_id))


@pytest.mark.slow
def test_a_paddle_launch_line(tmp_path, monkeypatch):
    # paddle's launcher echoes rank 0's output: the lines reach the run as from a plain script.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # set, it kills CPU workers (docs/ARCHITECTURE.md)
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "watch", "--", sys.executable, "-m", "paddle.distributed.launch",
                 "--nproc_per_node", "1", script(tmp_path), "3", "0", cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    store, run = the_run(db)
    assert run["status"] == "finished"
    assert [r["step"] for r in store.metrics(run["id"])] == [1, 2, 3]
