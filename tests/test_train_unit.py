"""core.batching (sampler, encoding, cache) and core/train.py as a real single-process subprocess.

The 2-rank runs under paddle.distributed.launch are covered by the launcher's own tests.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from core import batching

TINY = ROOT / "assets" / "gpt2-tiny"
SAMPLE = ROOT / "assets" / "sst2-sample"
DEV_ROWS = sum(1 for _ in open(SAMPLE / "dev.tsv", encoding="utf-8")) - 1
TRAIN_ROWS = sum(1 for _ in open(SAMPLE / "train.tsv", encoding="utf-8")) - 1


# --------------------------------------------------------------------------- sampler
@pytest.mark.parametrize("n,per_dev,world", [(101, 8, 1), (101, 8, 2), (101, 4, 3), (7, 4, 2), (3, 16, 3),
                                             (64, 8, 2), (65, 8, 2), (1000, 16, 4)])
def test_every_row_once_per_epoch_and_same_steps_on_every_rank(n, per_dev, world):
    lengths = np.random.default_rng(0).integers(1, 60, size=n)
    gb = per_dev * world
    per_rank = [batching.length_grouped_batches(lengths, gb, world, r, seed=1, epoch=0) for r in range(world)]
    counts = {len(b) for b in per_rank}
    assert counts == {batching.steps_per_epoch(n, gb, world)}  # same number of steps everywhere
    assert all(len(batch) >= 1 for b in per_rank for batch in b)  # no rank ever gets an empty batch
    seen = sorted(i for b in per_rank for batch in b for i in batch)
    assert seen == list(range(n))  # every row exactly once


def test_sampler_is_deterministic_per_seed_and_epoch():
    lengths = np.random.default_rng(1).integers(1, 60, size=500)
    a = batching.length_grouped_batches(lengths, 16, 2, 0, seed=7, epoch=3)
    assert a == batching.length_grouped_batches(lengths, 16, 2, 0, seed=7, epoch=3)
    assert a != batching.length_grouped_batches(lengths, 16, 2, 0, seed=7, epoch=4)
    assert a != batching.length_grouped_batches(lengths, 16, 2, 0, seed=8, epoch=3)


def _padded(lengths, groups):
    return sum(len(g) * lengths[g].max() for g in groups)


def test_batches_are_sorted_inside_and_the_split_cuts_padding():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 100, size=2000)
    gbs = batching.global_batches(lengths, 32, 1, seed=0, epoch=0)
    assert all(list(lengths[b]) == sorted(lengths[b], reverse=True) for b in gbs)  # longest first
    order = rng.permutation(2000)
    random_batches = [order[i : i + 32] for i in range(0, 2000, 32)]
    # a window of 1 batch: random draws, whose longest rows look like those of random batches
    draws = batching.global_batches(lengths, 32, 1, seed=0, epoch=0, chunk_batches=1)
    assert _padded(lengths, draws) > 0.9 * _padded(lengths, random_batches)
    # ... and the step's length split pads far less than one call a batch
    split = [mb for b in gbs for mb in batching.length_micro_batches(lengths, b, 32)]
    assert _padded(lengths, split) < 0.75 * _padded(lengths, random_batches)
    assert len(split) < 5 * len(gbs)  # a few calls a step, not one per row


def test_a_wider_sort_window_groups_rows_of_close_length_into_a_batch():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 100, size=2000)
    grouped = batching.global_batches(lengths, 32, 1, seed=0, epoch=0, chunk_batches=50)
    order = rng.permutation(2000)
    random_batches = [order[i : i + 32] for i in range(0, 2000, 32)]
    assert _padded(lengths, grouped) < 0.75 * _padded(lengths, random_batches)
    maxes = [lengths[b].max() for b in grouped]
    assert maxes != sorted(maxes, reverse=True)  # the batch order is shuffled: not simply longest first


@pytest.mark.parametrize("max_rows,cost", [(32, 64), (8, 64), (5, 0), (32, 10**12), (3, 10**12), (1, 64)])
def test_the_length_split_takes_every_row_once_in_length_close_groups(max_rows, cost):
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 60, size=500)
    rows = rng.choice(500, size=29, replace=False).tolist()
    groups = batching.length_micro_batches(lengths, rows, max_rows, cost)
    assert sorted(i for g in groups for i in g) == sorted(rows)  # every row exactly once
    assert all(1 <= len(g) <= max_rows for g in groups)
    # length-close: the groups are contiguous runs of the rows sorted by length, longest first
    for a, b in zip(groups, groups[1:], strict=False):
        assert lengths[a].min() >= lengths[b].max()
    if cost == 0:  # calls are free: no group has any padding
        assert all(len(set(lengths[g])) == 1 for g in groups)
    if cost == 10**12:  # calls are dear: as few groups as max_rows allows
        assert len(groups) == -(-len(rows) // max_rows)
    assert groups == batching.length_micro_batches(lengths, rows, max_rows, cost)  # deterministic


@pytest.mark.parametrize("n,world,max_rows", [(32, 2, 16), (33, 2, 16), (35, 4, 8), (7, 3, 2), (64, 2, 4), (5, 2, 1)])
def test_every_rank_makes_the_same_calls_and_gets_its_share_of_the_batch(n, world, max_rows):
    # DataParallel ranks that make different numbers of calls hang in gloo: the cut is the same on every rank
    lengths = np.random.default_rng(4).integers(1, 60, size=200)
    batch = batching.global_batches(lengths[:n], n, world, seed=1, epoch=0)[0]  # one sorted global batch
    per_rank = [batching.length_micro_batches(lengths, batch, max_rows, 64, world, r) for r in range(world)]
    assert len({len(p) for p in per_rank}) == 1
    assert all(len(mb) >= 1 for p in per_rank for mb in p)  # no rank ever gets an empty call
    for r, p in enumerate(per_rank):
        assert [i for mb in p for i in mb] == batch[r::world]


def test_the_length_split_finds_the_cheapest_cut():
    lengths = np.array([40, 39, 38, 5, 5, 5, 5, 5])
    # one call: 8 x 40 = 320 tokens; two calls (40,39,38 | 5 x 5): 120 + 25 = 145 tokens + one more call
    assert batching.length_micro_batches(lengths, range(8), 32, call_cost=100) == [[0, 1, 2], [3, 4, 5, 6, 7]]
    assert batching.length_micro_batches(lengths, range(8), 32, call_cost=200) == [list(range(8))]
    assert batching.length_micro_batches(lengths, [], 32) == []


def test_ranks_get_interleaved_rows_of_each_global_batch():
    lengths = np.arange(40)
    gbs = batching.global_batches(lengths, 8, 2, seed=0, epoch=0)
    r0 = batching.length_grouped_batches(lengths, 8, 2, 0, seed=0, epoch=0)
    r1 = batching.length_grouped_batches(lengths, 8, 2, 1, seed=0, epoch=0)
    for gb, a, b in zip(gbs, r0, r1, strict=True):
        assert sorted(a + b) == sorted(gb) and a == gb[0::2] and b == gb[1::2]


def test_fewer_rows_than_ranks_is_an_error():
    with pytest.raises(ValueError, match="cannot be shared"):
        batching.global_batches([3, 4], 4, 3, seed=0, epoch=0)


# --------------------------------------------------------------------------- encoding and cache
def _fake_encode(text):
    return [ord(c) for c in text]


def test_encoding_drops_eos_truncates_and_counts():
    enc = batching.encode_texts(_fake_encode, ["ab", "a|c", "abcdefgh", ""], [1, 0, 1, 0], max_len=5,
                                eos_ids={ord("|")})
    assert enc.row(0).tolist() == [97, 98]
    assert enc.row(1).tolist() == [97, 99]  # the EOS id the text produced is gone
    assert enc.row(2).tolist() == [97, 98, 99, 100, 101] and enc.truncated == 1
    assert len(enc.row(3)) == 1  # never empty: the pooled position must exist
    ids, labels, lens = batching.pad_batch(enc, [2, 0], pad_id=7)
    assert ids.tolist() == [[97, 98, 99, 100, 101], [97, 98, 7, 7, 7]]  # right padding, own longest row
    assert labels.tolist() == [1, 1] and lens.tolist() == [5, 2]


def test_cache_roundtrip_and_key(tmp_path):
    tsv = tmp_path / "x.tsv"
    tsv.write_text("sentence\tlabel\nab\t1\n")
    vocab = tmp_path / "vocab.json"
    vocab.write_text("{}")
    key = batching.cache_key([vocab], tsv, 64)
    assert key != batching.cache_key([vocab], tsv, 65)
    enc = batching.encode_texts(_fake_encode, ["ab", "c"], [1, 0], 8, set())
    path = batching.cache_store(key, enc, tmp_path / "cache")
    assert path is not None and path.is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{key}.npz"]  # no temp file left
    back = batching.cache_load(key, tmp_path / "cache")
    assert back is not None and back.ids.tolist() == enc.ids.tolist() and back.truncated == 0
    tsv.write_text("sentence\tlabel\nab\t0\n")
    assert batching.cache_key([vocab], tsv, 64) != key  # new file content, new key
    (tmp_path / "cache" / f"{key}.npz").write_bytes(b"torn")
    assert batching.cache_load(key, tmp_path / "cache") is None  # a torn file is a miss, not a crash


# --------------------------------------------------------------------------- the worker, for real
def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def train_argv(run_dir, *extra):
    return [sys.executable, str(ROOT / "core" / "train.py"), "--run_dir", str(run_dir), "--model_dir", str(TINY),
            "--data_dir", str(SAMPLE), "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
            "--max_seq_length", "64", *extra]


def run_train(run_dir, *extra, env=None, timeout=300):
    return subprocess.run(train_argv(run_dir, *extra), capture_output=True, text=True, timeout=timeout,
                          env=env or _env(), cwd=str(ROOT))


def events(run_dir):
    return [json.loads(line) for line in open(Path(run_dir) / "events.jsonl", encoding="utf-8")]


@pytest.fixture(scope="module")
def run12(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train12")
    r = run_train(run_dir, "--max_steps", "12", "--eval_steps", "6", "--save_steps", "6")
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir, events(run_dir)


def test_run_writes_start_steps_evals_checkpoints_end(run12):
    run_dir, evs = run12
    types = [e["type"] for e in evs if e["type"] != "heartbeat"]
    assert types[0] == "start" and types[-1] == "end"
    start = next(e for e in evs if e["type"] == "start")
    assert start["world_size"] == 1 and start["total_steps"] == 12 and start["resumed_from_step"] == 0
    assert start["samples_per_epoch"] == TRAIN_ROWS and start["devices"] == ["cpu:0"]
    assert set(start["versions"]) == {"python", "paddle", "paddlenlp"} and start["fast_path"]["amp_dtype"] is None
    steps = [e for e in evs if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert all(isinstance(e["loss"], float) and math.isfinite(e["loss"]) for e in steps)
    assert all(e["samples_per_s"] > 0 and e["tokens_per_s"] > 0 and e["step_time"] > 0 for e in steps)
    assert steps[-1]["epoch"] == pytest.approx(12 / batching.steps_per_epoch(TRAIN_ROWS, 8, 1), rel=1e-4)
    evals = [e for e in evs if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [6, 12] and all(e["n"] == DEV_ROWS for e in evals)
    assert all(0.0 <= e["accuracy"] <= 1.0 and math.isfinite(e["loss"]) for e in evals)
    ckpts = [e for e in evs if e["type"] == "checkpoint"]
    assert [e["step"] for e in ckpts] == [6, 12]
    for c in ckpts:
        p = Path(c["path"])
        assert p.is_absolute() and p == run_dir / "checkpoints" / f"checkpoint-{c['step']}"
        for f in ("model_state.pdparams", "config.json", "optimizer.pdopt", "vocab.json", "merges.txt"):
            assert (p / f).is_file(), f
        state = json.loads((p / "gpt2tui_state.json").read_text())  # ours; trainer_state.json is PaddleNLP's
        assert state["global_step"] == c["step"] and state["lr_step"] == c["step"]
        assert state["best_accuracy"] == max(e["accuracy"] for e in evals if e["step"] <= c["step"])
    end = evs[-1]
    assert end["type"] == "end" and end["status"] == "finished"
    assert any(e["type"] == "log" and "truncated" in e["text"] for e in evs)
    # the sequence numbers are the protocol's: 0, 1, 2, ... with no gap
    assert [e["seq"] for e in evs] == list(range(len(evs)))


def test_resume_continues_the_step_numbers_and_logging_windows(run12, tmp_path):
    run_dir, _ = run12
    ck = run_dir / "checkpoints" / "checkpoint-6"
    r = run_train(tmp_path, "--max_steps", "12", "--eval_steps", "100", "--save_steps", "100",
                  "--resume_from", str(ck), "--logging_steps", "5")
    assert r.returncode == 0, r.stderr[-3000:]
    evs = events(tmp_path)
    start = next(e for e in evs if e["type"] == "start")
    assert start["resumed_from_step"] == 6
    # one event per logging window of 5 steps, and the last, partial window at the end
    assert [e["step"] for e in evs if e["type"] == "step"] == [10, 12]
    assert [e["step"] for e in evs if e["type"] == "checkpoint"] == [12]
    assert evs[-1]["status"] == "finished"


def test_stop_file_saves_a_checkpoint_and_ends_stopped(tmp_path):
    proc = subprocess.Popen(train_argv(tmp_path, "--max_steps", "1000000", "--eval_steps", "1000000",
                                       "--save_steps", "1000000"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=str(ROOT))
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (tmp_path / "events.jsonl").exists() and any(e["type"] == "step" for e in events(tmp_path)):
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        (tmp_path / "stop").touch()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    evs = events(tmp_path)
    end = evs[-1]
    assert end["type"] == "end" and end["status"] == "stopped" and "checkpoint saved" in end["reason"]
    last = max(e["step"] for e in evs if e["type"] == "step")
    ck = [e for e in evs if e["type"] == "checkpoint"]
    assert [c["step"] for c in ck] == [last]
    assert (Path(ck[0]["path"]) / "model_state.pdparams").is_file()


def test_nan_loss_is_reported_and_stops_with_a_checkpoint(tmp_path):
    r = run_train(tmp_path, "--max_steps", "40", "--eval_steps", "100", "--save_steps", "100",
                  env=_env(GPT2_TUI_TEST_NAN_AT_STEP="3"))
    assert r.returncode == 1
    evs = events(tmp_path)
    assert any(e["type"] == "log" and e["level"] == "error" and "step 3" in e["text"] for e in evs)
    end = evs[-1]
    assert end["status"] == "failed" and end["reason"].startswith("loss became nan at step 3")
    assert any(e["type"] == "checkpoint" for e in evs)
    assert max(e["step"] for e in evs if e["type"] == "step") < 40


def test_unwritable_checkpoint_path_fails_with_a_clear_reason(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint-2").write_text("a file where the checkpoint folder must go")
    r = run_train(tmp_path / "run", "--max_steps", "2", "--output_dir", str(out))
    assert r.returncode != 0
    end = events(tmp_path / "run")[-1]
    assert end["status"] == "failed" and str(out / "checkpoint-2") in end["reason"]


def test_bad_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_train(tmp_path / "run", "--max_steps", "2", "--output_dir", str(blocker / "sub"))
    assert r.returncode != 0
    evs = events(tmp_path / "run")
    assert not any(e["type"] == "step" for e in evs)
    assert evs[-1]["status"] == "failed" and str(blocker / "sub") in evs[-1]["reason"]
