"""core.checkpoint_files: the paddle-free rules for checkpoint folders (complete, latest, retention,
stale temporary folders, durable commits, state files)."""

import json
import os
import subprocess
import sys

import pytest

from core import checkpoint_files as cf


def make_ckpt(out, step, optimizer=True, weights=True):
    d = out / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    if weights:
        (d / "model_state.pdparams").write_bytes(b"w")
    if optimizer:
        (d / cf.OPTIMIZER_FILE).write_bytes(b"o")
    return d


def test_complete_means_named_right_with_config_and_weights(tmp_path):
    assert cf.is_complete(make_ckpt(tmp_path, 3))
    assert not cf.is_complete(make_ckpt(tmp_path, 4, weights=False))
    other = tmp_path / "final"
    other.mkdir()
    (other / "config.json").write_text("{}")
    (other / "model.safetensors").write_bytes(b"w")
    assert not cf.is_complete(other)  # not a checkpoint-N folder


def test_list_and_latest_go_by_step_not_by_name(tmp_path):
    assert cf.latest(tmp_path / "missing") is None
    for s in (9, 10, 100):
        make_ckpt(tmp_path, s)
    make_ckpt(tmp_path, 200, weights=False)  # incomplete: ignored
    (tmp_path / ".checkpoint-300.tmp-1").mkdir()
    assert [s for s, _ in cf.list_checkpoints(tmp_path)] == [9, 10, 100]
    assert cf.latest(tmp_path) == tmp_path / "checkpoint-100"


@pytest.mark.parametrize("steps,best,limit,expect", [
    ([1, 2, 3, 4], None, 0, []),
    ([1, 2, 3, 4], None, 2, [1, 2]),
    ([1, 2, 3, 4], 1, 2, [2]),  # the best survives besides the newest two
    ([1, 2, 3, 4], 4, 2, [1, 2]),  # the best is among the newest
    ([4, 1, 3], 3, 1, [1]),
    ([5], None, 1, []),
])
def test_which_to_delete(steps, best, limit, expect):
    assert cf.to_delete(steps, best, limit) == expect


def test_retain_keeps_newest_and_best_and_optimizer_only_in_the_newest(tmp_path):
    for s in (10, 20, 30, 40):
        make_ckpt(tmp_path, s)
    deleted = cf.retain(tmp_path, tmp_path / "checkpoint-10", 2)
    assert deleted == [(20, tmp_path / "checkpoint-20")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-30", "checkpoint-40"]
    assert [s for s, d in cf.list_checkpoints(tmp_path) if (d / cf.OPTIMIZER_FILE).exists()] == [40]
    assert cf.retain(tmp_path, None, 0) == [] and (tmp_path / "checkpoint-10").exists()
    # a best checkpoint in another folder (a resumed run's) protects nothing here
    make_ckpt(tmp_path, 50)
    assert [s for s, _ in cf.retain(tmp_path, tmp_path / "elsewhere" / "checkpoint-30", 2)] == [10, 30]


def test_stale_tmp_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".checkpoint-7.tmp-{dead_pid}"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "f").write_text("x")
    aside = tmp_path / f".checkpoint-7.tmp-{dead_pid}-old"
    aside.mkdir()
    alive = tmp_path / f".checkpoint-8.tmp-{os.getppid()}"  # a live process may still be writing it
    alive.mkdir()
    keep = make_ckpt(tmp_path, 7)
    assert cf.remove_stale_tmp(tmp_path) == sorted([stale, aside])
    assert not stale.exists() and not aside.exists() and alive.exists() and keep.exists()


def test_commit_replaces_an_older_folder_of_the_same_step(tmp_path):
    old = make_ckpt(tmp_path, 5)
    (old / "marker").write_text("old")
    tmp = cf.tmp_folder(tmp_path, 5)
    tmp.mkdir()
    (tmp / "config.json").write_text("{}")
    (tmp / "model_state.pdparams").write_bytes(b"new")
    cf.commit_folder(tmp, old)
    assert not tmp.exists() and not (old / "marker").exists()
    assert (old / "model_state.pdparams").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-5"]  # nothing left aside


def test_commit_refuses_to_replace_a_file(tmp_path):
    blocker = tmp_path / "checkpoint-2"
    blocker.write_text("a file")
    tmp = cf.tmp_folder(tmp_path, 2)
    tmp.mkdir()
    with pytest.raises(OSError):
        cf.commit_folder(tmp, blocker)


def test_read_state_prefers_ours_and_falls_back_to_trainer_state(tmp_path):
    d = make_ckpt(tmp_path, 3)
    assert cf.read_state(d) == {}
    (d / cf.PADDLENLP_STATE).write_text(json.dumps({"global_step": 3, "max_seq_length": 64}))  # an old one of ours
    assert cf.read_state(d)["max_seq_length"] == 64
    (d / cf.OUR_STATE).write_text(json.dumps({"global_step": 3, "max_seq_length": 32}))
    assert cf.read_state(d)["max_seq_length"] == 32
    (d / cf.OUR_STATE).write_text("torn")
    assert cf.read_state(d)["max_seq_length"] == 64


def test_state_files_are_strict_json_even_with_a_nan_loss(tmp_path):
    cf.write_json(tmp_path / "s.json", {"log_history": [{"loss": float("nan"), "step": 1}]})

    def bad(c):
        raise ValueError(c)

    assert json.loads((tmp_path / "s.json").read_text(), parse_constant=bad)["log_history"][0]["loss"] == "nan"
