"""`gpt2-tui import`: a real PaddleNLP Trainer output folder, its VisualDL logs and its log, as finished runs.

The fixture is one real Trainer run on the tiny model (tests/paddlenlp_run.py, shared per session); the
expected numbers are read from the files that run wrote, never typed in.
"""

import json
import shutil
import sqlite3

import pytest
from conftest import ROOT, gpt2_tui
from pnlp_fixture import trainer_run

from core.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pnlp(tmp_path_factory):
    return trainer_run(tmp_path_factory)


def history(run):
    h = json.loads((run.output_dir / "trainer_state.json").read_text())["log_history"]
    return [e for e in h if "loss" in e], [e for e in h if "eval_accuracy" in e]


def only_run(db):
    store = Store(db)
    runs = store.list_runs()
    assert len(runs) == 1, [r["id"] for r in runs]
    return store, runs[0]


def test_paddlenlp_output_folder(pnlp, tmp_path):
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "import", str(pnlp.output_dir), "--data_dir", "sample", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["created"] is True and rec["status"] == "finished"
    store, run = only_run(db)
    steps, evals = history(pnlp)
    m = store.metrics(run["id"])
    assert [r["step"] for r in m] == [e["global_step"] for e in steps]
    assert [r["loss"] for r in m] == [e["loss"] for e in steps]
    assert [r["lr"] for r in m] == [e["learning_rate"] for e in steps]
    assert [r["samples_per_s"] for r in m] == [e["interval_samples_per_second"] for e in steps]
    assert [r["epoch"] for r in m] == [e["progress_or_epoch"] for e in steps]
    assert all(a["t"] <= b["t"] for a, b in zip(m, m[1:], strict=False))
    ev = store.evals(run["id"])
    assert [(e["step"], e["accuracy"], e["loss"]) for e in ev] == [
        (e["step"], e["eval_accuracy"], e["eval_loss"]) for e in evals]
    ck = store.checkpoints(run["id"])
    assert [(c["step"], c["path"]) for c in ck] == [(2, str(pnlp.output_dir / "checkpoint-2")),
                                                    (4, str(pnlp.output_dir / "checkpoint-4"))]
    # The configuration is what training_args.bin says (read without unpickling PaddleNLP's classes).
    cfg = run["config"]
    assert cfg["learning_rate"] == 5e-4 and cfg["per_device_train_batch_size"] == 4 and cfg["max_steps"] == 4
    assert cfg["seed"] == 7 and cfg["data_dir"] == "sample"
    assert run["model"] == str(pnlp.output_dir) and run["total_steps"] == 4
    assert run["command"] == ["gpt2-tui", "import", str(pnlp.output_dir)]
    assert "(PaddleNLP)" in run["name"]

    # Again: recognised, nothing added.
    p = gpt2_tui("--db", str(db), "import", str(pnlp.output_dir), cwd=tmp_path)
    assert p.returncode == 0 and f"already imported as {run['id']}" in p.stderr
    assert p.stdout.strip() == run["id"]
    only_run(db)

    # The imported checkpoints evaluate like our own (the results pane runs this).
    p = gpt2_tui("--db", str(db), "eval", run["id"], "--checkpoint", "2", "--device", "cpu", "--json",
                 cwd=tmp_path, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["checkpoint"] == str(pnlp.output_dir / "checkpoint-2") and res["n"] == 300
    assert 0.0 <= res["accuracy"] <= 1.0


def test_visualdl_folder(pnlp, tmp_path):
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "import", str(pnlp.vdl_dir), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    store, run = only_run(db)
    steps, evals = history(pnlp)
    m = store.metrics(run["id"])
    # VisualDL stores float32.
    assert [r["step"] for r in m] == [e["global_step"] for e in steps]
    assert [r["loss"] for r in m] == pytest.approx([e["loss"] for e in steps], rel=1e-6)
    assert [r["lr"] for r in m] == pytest.approx([e["learning_rate"] for e in steps], rel=1e-6)
    assert [(e["step"], e["accuracy"]) for e in store.evals(run["id"])] == [
        (e["step"], pytest.approx(e["eval_accuracy"])) for e in evals]
    assert run["status"] == "finished" and "(VisualDL)" in run["name"]


def test_trainer_log(pnlp, tmp_path):
    log = tmp_path / "train.log"
    log.write_text(pnlp.log)
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "import", str(log), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    store, run = only_run(db)
    steps, evals = history(pnlp)
    assert [r["loss"] for r in store.metrics(run["id"])] == [e["loss"] for e in steps]
    ev = store.evals(run["id"])
    assert [e["step"] for e in ev] == [2, 4] and all(e["n"] == 16 for e in ev)
    assert [c["step"] for c in store.checkpoints(run["id"])] == [2, 4]
    assert run["status"] == "finished" and run["total_steps"] == 4
    assert run["config"]["learning_rate"] == 5e-4 and run["config"]["evaluation_strategy"] == "steps"
    assert run["model"] == str(ROOT / "assets" / "gpt2-tiny")
    assert any("Running training" in r["text"] for r in store.logs(run["id"], limit=1000))


def test_an_unreadable_folder_names_the_file_and_leaves_nothing(pnlp, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(pnlp.output_dir, bad, ignore=shutil.ignore_patterns("*.pdparams", "*.pdopt", "vdl"))
    (bad / "trainer_state.json").write_text('{"log_history": [')
    db = tmp_path / "runs.db"
    p = gpt2_tui("--db", str(db), "import", str(bad), cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert str(bad / "trainer_state.json") in p.stderr and "not valid JSON" in p.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    # A folder that stopped before its end: the newest checkpoint's state, the run is 'stopped'.
    (bad / "trainer_state.json").unlink()
    shutil.rmtree(bad / "checkpoint-4")
    for f in ("all_results.json", "eval_results.json", "train_results.json"):
        (bad / f).unlink()
    p = gpt2_tui("--db", str(db), "import", str(bad), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    store, run = only_run(db)
    assert run["status"] == "stopped" and "stopped at step 2 of 4" in run["error"]
    assert [m["step"] for m in store.metrics(run["id"])] == [1, 2]
