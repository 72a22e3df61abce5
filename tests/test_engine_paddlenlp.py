"""`--engine paddlenlp`: PaddleNLP's own Trainer, launched, stopped, resumed and recorded like our engine.

One run on 2 CPU ranks under paddle.distributed.launch (the stop must be agreed by both ranks), stopped
mid-run, then resumed on 1 rank to a short end: stop, resume, finish and `gpt2-tui eval` of its
checkpoint in one test (three paddle start-ups: ~60 s on 2 busy cores), on the tiny model and 64 rows.
"""

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import ROOT, gpt2_tui
from test_e2e_train import _wait_for

from core.checkpoint_files import is_complete

pytestmark = pytest.mark.slow


@pytest.fixture
def small_data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for name, rows in (("train.tsv", 64), ("dev.tsv", 32)):
        lines = (ROOT / "assets" / "sst2-sample" / name).read_text().splitlines(keepends=True)
        (d / name).write_text("".join(lines[: rows + 1]))
    return d


def test_paddlenlp_engine_stops_with_a_checkpoint_resumes_finishes_and_evaluates(tmp_path, small_data):
    def cli(*args, **kw):
        return gpt2_tui("--db", "runs.db", *args, cwd=tmp_path, **kw)

    r = cli("train", "--preset", "offline", "--engine", "paddlenlp", "--data_dir", str(small_data),
            "--devices", "cpu:2", "--per_device_train_batch_size", "4", "--max_steps", "2000", "--save_steps",
            "1000", "--eval_steps", "1000", "--detach", check=True)
    rid = r.stdout.strip().splitlines()[-1]
    run_dir = tmp_path / "runs" / rid
    command = json.loads((run_dir / "command.json").read_text())["argv"]
    assert "paddle.distributed.launch" in command and command[command.index("--nproc_per_node") + 1] == "2"
    assert any(a.endswith("core/engine_paddlenlp.py") for a in command)

    def show(run_id):
        return json.loads(cli("show", run_id, "--json", check=True).stdout)

    def steps_written():  # the file, not `show`: a CLI process a poll would cost ~1 s of a shared core
        path = run_dir / "events.jsonl"
        return path.exists() and path.read_text().count('"type":"step"') >= 3

    _wait_for(steps_written, 180, "3 steps")
    stop = cli("stop", rid, "--json", check=True, timeout=120)
    assert json.loads(stop.stdout)["status"] == "stopped"
    rec = show(rid)
    assert rec["status"] == "stopped" and rec["config"]["engine"] == "paddlenlp"
    stopped_at = rec["steps"][-1]["step"]
    assert 3 <= stopped_at < 2000
    assert [c["step"] for c in rec["checkpoints"]] == [stopped_at]  # the stop's checkpoint, the only one
    ckpt = Path(rec["checkpoints"][0]["path"])
    assert is_complete(ckpt) and (ckpt / "vocab.json").exists() and (ckpt / "trainer_state.json").exists()
    events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["type"] == "start")
    assert start["world_size"] == 2 and start["total_steps"] == 2000 and start["samples_per_epoch"] == 64
    assert start["devices"] == ["cpu:0", "cpu:1"] and start["nnodes"] == 1
    health = next(e for e in events if e["type"] == "ranks")  # gathered from both ranks
    assert sorted(r["rank"] for r in health["ranks"]) == [0, 1] and all(r["mem_bytes"] > 0 for r in health["ranks"])
    assert events[-1]["type"] == "end" and events[-1]["status"] == "stopped"
    assert all(s["samples_per_s"] > 0 and s["tokens_per_s"] > 0 for s in rec["steps"])
    # the rank logs: both ranks ran PaddleNLP's Trainer, and neither kept training after the stop
    assert {p.name for p in (run_dir / "logs").glob("workerlog.*")} >= {"workerlog.0", "workerlog.1"}

    # Resume: PaddleNLP's resume_from_checkpoint, to a short end, with an evaluation and a checkpoint there
    # (on one rank: two paddle imports fighting over the 2 cores cost ~10 s; the stop needed the two).
    end = stopped_at + 3
    r = cli("train", "--resume", rid, "--max_steps", str(end), "--devices", "cpu:1", "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["status"] == "finished" and res["parent_run"] == rid
    assert [s["step"] for s in res["steps"]] == list(range(stopped_at + 1, end + 1))
    assert [(e["step"], e["n"]) for e in res["evals"]] == [(end, 32)]
    assert [c["step"] for c in res["checkpoints"]] == [end]
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("SELECT status FROM runs WHERE id = ?", (res["id"],)).fetchone() == ("finished",)

    # Our evaluator reads its checkpoint and reproduces the Trainer's dev accuracy.
    p = cli("eval", res["id"], "--checkpoint", str(end), "--device", "cpu", "--eval_path",
            str(small_data / "dev.tsv"), "--json", timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    ev = json.loads(p.stdout.strip().splitlines()[-1])
    assert ev["n"] == 32 and ev["accuracy"] == pytest.approx(res["evals"][0]["accuracy"], abs=1e-9)

