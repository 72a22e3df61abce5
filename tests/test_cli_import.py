"""core.checkpoint_import: a checkpoint gpt2-tui did not make becomes a finished run that the history and
the results pane show, with its evaluations. No paddle: the evaluation is an eval job's events, as the
evaluator leaves them (the real evaluator runs in test_cli_reference.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_tui_history import Host, names, open_history, until
from test_tui_results import DEV, add_eval_job, opened_results, table_rows

from core.checkpoint_import import CheckpointImportError, import_checkpoint, step_of
from core.config import ASSETS
from core.launch import runs_root_for
from core.store import Store
from tui.screens.history import HistoryScreen
from tui.screens.results import ResultsScreen

TINY = ASSETS / "gpt2-tiny"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


def paddlenlp_checkpoint(tmp_path, step=500):
    """run_glue's layout: output_dir/checkpoint-N/ with weights and config; the tokenizer in output_dir."""
    out = tmp_path / "output_dir" / "glue"
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    shutil.copy(TINY / "model_state.pdparams", ckpt)
    shutil.copy(TINY / "config.json", ckpt)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(TINY / f, out)
    return ckpt


def test_a_paddlenlp_checkpoint_folder(store, tmp_path):
    ckpt = paddlenlp_checkpoint(tmp_path)
    run, folder = import_checkpoint(store, runs_root_for(store.path), str(ckpt), None)
    assert run["status"] == "finished" and run["kind"] == "train" and run["name"] == "checkpoint-500 (imported)"
    assert folder.name == "checkpoint-500" and folder.parent.parent == Path(run["run_dir"])
    # links to the source, the tokenizer from run_glue's output_dir
    assert os.readlink(folder / "model_state.pdparams") == str(ckpt / "model_state.pdparams")
    assert os.readlink(folder / "vocab.json") == str(ckpt.parent / "vocab.json")
    assert [c["step"] for c in store.checkpoints(run["id"])] == [500]
    # the same weights again: the same import
    again, folder2 = import_checkpoint(store, runs_root_for(store.path), str(ckpt / "model_state.pdparams"), None)
    assert again["id"] == run["id"] and folder2 == folder
    assert len(store.list_runs()) == 1


def test_a_bare_pdparams_needs_a_model_name_for_config_and_tokenizer(store, tmp_path):
    bare = tmp_path / "weights" / "model_state.pdparams"
    bare.parent.mkdir()
    shutil.copy(TINY / "model_state.pdparams", bare)
    with pytest.raises(CheckpointImportError, match="--model_name"):
        import_checkpoint(store, runs_root_for(store.path), str(bare), None)
    assert store.list_runs() == [] and not runs_root_for(store.path).exists()  # nothing left behind
    run, folder = import_checkpoint(store, runs_root_for(store.path), str(bare), "gpt2-tiny")
    assert run["model"] == "gpt2-tiny" and folder.name == "checkpoint-0"
    for f in ("config.json", "vocab.json", "merges.txt"):
        assert os.readlink(folder / f) == str((TINY / f).resolve())
    assert os.readlink(folder / "model_state.pdparams") == str(bare)  # never the model's own weights


def test_a_missing_source_says_what_to_pass(store, tmp_path):
    with pytest.raises(CheckpointImportError, match="no model_state.pdparams"):
        import_checkpoint(store, runs_root_for(store.path), str(tmp_path / "nope"), "gpt2-tiny")


def test_step_from_trainer_state_then_folder_name(tmp_path):
    d = tmp_path / "checkpoint-30"
    d.mkdir()
    assert step_of(d / "model_state.pdparams") == 30
    (d / "trainer_state.json").write_text(json.dumps({"global_step": 31}))
    assert step_of(d / "model_state.pdparams") == 31
    assert step_of(tmp_path / "model_state.pdparams") == 0


def _with_an_eval(store, tmp_path):
    run, folder = import_checkpoint(store, runs_root_for(store.path), str(paddlenlp_checkpoint(tmp_path)), None)
    add_eval_job(store, runs_root_for(store.path), run["id"], str(folder), 500, "cloze", DEV, 0.7133,
                 run["created_at"] + 10, "20991231-000000-e1e1")
    return run


@pytest.mark.anyio
async def test_the_history_and_the_results_pane_show_the_import_and_its_eval(store, tmp_path):
    run = _with_an_eval(store, tmp_path)
    assert [e["accuracy"] for e in store.evals(run["id"])] == [0.7133]
    app = Host(store.path, lambda services: HistoryScreen(services, refresh_s=0, reconcile=False))
    async with app.run_test(size=(160, 40)) as pilot:
        await open_history(pilot)
        assert [n[:15] for n in names(app)] == ["checkpoint-500 "]  # the column cuts it after 20 characters
    app = Host(store.path, lambda services: ResultsScreen(run["id"], services, refresh_s=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened_results(pilot)
        await until(pilot, lambda: table_rows(screen))
        rows = table_rows(screen)
        assert [(r[1], r[2], r[3], r[5]) for r in rows] == [("500", "checkpoint-500", "cloze", "0.7133")]
