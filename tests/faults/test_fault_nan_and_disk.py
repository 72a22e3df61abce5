"""NaN loss and unwritable or full output folders: flagged, stopped, recorded; the store stays whole."""

import json
import math
import pickle
import shutil
import sqlite3
import subprocess
import uuid

import numpy as np
import pytest
from conftest import ROOT
from faultkit import (
    FOREVER,
    alive,
    assert_store_matches_events,
    cli,
    events,
    reaper,  # noqa: F401  (fixture)
    show,
)

from core.events import EventWriter
from core.store import Store

pytestmark = pytest.mark.usefixtures("reaper")


def _strict(text: str):
    """json.loads that refuses NaN/Infinity (what jq and most JSON readers do)."""
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=bad)


# ---------------------------------------------------------------------------- NaN
@pytest.fixture
def nan_model(tmp_path):
    """gpt2-tiny with NaN in its final layer norm: every loss is NaN from step 1, a valid config."""
    d = tmp_path / "nan-model"
    shutil.copytree(ROOT / "assets" / "gpt2-tiny", d)
    state = pickle.loads((d / "model_state.pdparams").read_bytes())
    state["gpt.decoder.norm.weight"] = np.full_like(state["gpt.decoder.norm.weight"], np.nan)
    (d / "model_state.pdparams").write_bytes(pickle.dumps(state, protocol=4))
    return d


@pytest.mark.slow
def test_nan_loss_is_flagged_at_once_and_the_run_stops_with_a_checkpoint(tmp_path, nan_model):
    r = cli(tmp_path, "train", "--model_name_or_path", str(nan_model), "--max_steps", "200", "--eval_steps",
            "1000", "--save_steps", "1000", "--json", timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "error: loss became nan/inf at step 1" in r.stderr  # shown by the follower as it happens
    rec = _strict(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "failed" and rec["config"]["stop_on_nan"] is True
    assert rec["error"].startswith("loss became nan at step 1 (checkpoint saved)"), rec["error"]
    assert [s["step"] for s in rec["steps"]] == [1]  # stopped at the first flush, not 200 steps later
    assert rec["checkpoints"] and rec["checkpoints"][-1]["step"] == 1
    ck = rec["checkpoints"][-1]["path"]
    assert (tmp_path / ck / "model_state.pdparams").exists()
    run_dir = tmp_path / "runs" / rec["id"]
    assert_store_matches_events(tmp_path / "runs.db", rec["id"], run_dir)
    assert not alive(run_dir)


@pytest.mark.slow
def test_nan_loss_with_stop_on_nan_off_is_flagged_and_goes_on(tmp_path, nan_model):
    r = cli(tmp_path, "train", "--model_name_or_path", str(nan_model), "--stop_on_nan", "false", "--devices",
            "cpu:1", "--max_steps", "3", "--eval_steps", "1000", "--save_steps", "1000", "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "error: loss became nan/inf at step" in r.stderr
    rec = _strict(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "finished" and [s["step"] for s in rec["steps"]] == [1, 2, 3]


def test_nan_and_inf_losses_in_an_event_file_are_stored_and_shown(tmp_path):
    """The store/follow side with a hand-written event file: NaN and inf losses, then the trainer's end."""
    store = Store(tmp_path / "runs.db")
    run_dir = tmp_path / "runs" / "r-nan"
    run_dir.mkdir(parents=True)
    store.create_run({"id": "r-nan", "status": "running", "run_dir": str(run_dir), "config": {}, "kind": "train"})
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("start", world_size=1, total_steps=10)
        w.emit("step", step=1, loss=0.7)
        w.emit("step", step=2, loss=math.inf)
        w.emit("step", step=3, loss=math.nan)
        w.emit("log", level="error", text="loss became nan/inf at step 2")
        w.emit("checkpoint", step=3, path=str(run_dir / "checkpoints" / "checkpoint-3"))
        w.emit("end", status="failed", reason="loss became nan at step 2 (checkpoint saved)")
    store.close()
    r = cli(tmp_path, "show", "r-nan", "--json")
    assert r.returncode == 0, r.stderr
    rec = _strict(r.stdout)  # strict JSON even with an infinite loss
    assert [s["step"] for s in rec["steps"]] == [1, 2, 3]
    assert rec["steps"][1]["loss"] == "inf" and rec["steps"][2]["loss"] is None  # SQLite stores NaN as NULL
    assert rec["status"] == "failed" and "nan" in rec["error"]
    text = cli(tmp_path, "show", "r-nan").stdout
    assert "failed" in text and "loss became nan at step 2" in text
    runs = cli(tmp_path, "runs", "--json")
    assert runs.returncode == 0 and _strict(runs.stdout)[0]["status"] == "failed"
    exported = cli(tmp_path, "export", "r-nan", "--format", "json")
    assert exported.returncode == 0 and _strict(exported.stdout)["steps"][1]["loss"] == "inf"


# ---------------------------------------------------------------------------- output folders
@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_unwritable_output_dir_is_refused_before_launch(tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = str(blocker / "ckpts") if where == "under a file" else f"/proc/version/{uuid.uuid4().hex}"
    r = cli(tmp_path, "train", "--output_dir", out)
    assert r.returncode == 2, r.stderr
    assert "output_dir" in r.stderr and "is a file, not a folder" in r.stderr and "--output_dir" in r.stderr
    assert "Traceback" not in r.stderr
    con = sqlite3.connect(tmp_path / "runs.db")
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs: a checkpoint of gpt2-tiny (~1.5 MB with the optimizer) does not fit."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): disk-full is not tested")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_a_disk_too_small_for_the_runs_checkpoints_is_refused_before_anything_exists(tmp_path, tiny_fs):
    r = cli(tmp_path, "train", "--devices", "cpu:1", "--max_steps", "6", "--save_steps", "3",
            "--output_dir", str(tiny_fs / "ckpts"), timeout=120)
    assert r.returncode == 2 and "not enough disk for this run" in r.stderr and "short" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_disk_full_during_a_save_fails_the_run_clearly_and_keeps_the_store(tmp_path, tiny_fs):
    """The disk fills up while the run goes (another process, other runs): the launch-time estimate is
    skipped so that the run starts on a disk already too small and meets the full disk at its first save."""
    r = cli(tmp_path, "train", *FOREVER, "--devices", "cpu:1", "--save_steps", "3",
            "--output_dir", str(tiny_fs / "ckpts"), "--json", timeout=300, env={"GPT2_TUI_TEST_SKIP_DISK_PLAN": "1"})
    assert r.returncode == 1, r.stderr[-3000:]
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "failed"
    assert f"cannot save checkpoint-3 to {tiny_fs / 'ckpts' / 'checkpoint-3'}: No space left on device" \
        in rec["error"], rec["error"]
    assert rec["checkpoints"] == []  # no half-written checkpoint is recorded ...
    assert list((tiny_fs / "ckpts").iterdir()) == []  # ... or left behind
    run_dir = tmp_path / "runs" / rec["id"]
    assert [e["status"] for e in events(run_dir) if e["type"] == "end"] == ["failed"]
    assert_store_matches_events(tmp_path / "runs.db", rec["id"], run_dir)
    assert show(tmp_path, rec["id"])["status"] == "failed"
    assert not alive(run_dir)
