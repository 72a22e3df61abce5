"""`gpt2-tui train` takes run_glue.py's flags as PaddleNLP users write them (issue 11), in-process and fast.

Parsing and mapping only: the real training with the reference command is in test_cli_reference.py.
"""

import re
import sqlite3

import pytest

from core import cli
from core.config import RunConfig

REFERENCE = ("--model_name_or_path gpt2-medium-en --task_name SST-2 --max_seq_length 128 "
             "--per_device_train_batch_size 32 --learning_rate 2e-5 --num_train_epochs 3 --logging_steps 1 "
             "--save_steps 500 --output_dir ./output_dir/glue --eval_steps 1 --device gpu --do_train true").split()


def cfg_of(*argv: str) -> RunConfig:
    args = cli.build_parser().parse_args(["train", "--preset", "offline", *argv])
    return cli.config_from_args(args)


def test_the_reference_command_parses_as_written():
    cfg = cfg_of(*REFERENCE)
    assert cfg.model_name_or_path == "gpt2-medium-en" and cfg.task_name == "SST-2"
    assert cfg.max_seq_length == 128 and cfg.per_device_train_batch_size == 32
    assert cfg.learning_rate == 2e-5 and cfg.num_train_epochs == 3.0 and cfg.logging_steps == 1
    assert cfg.save_steps == 500 and cfg.eval_steps == 1 and cfg.output_dir == "./output_dir/glue"
    assert cfg.device == "gpu" and cfg.do_train is True


@pytest.mark.parametrize(("words", "value"), [("true", True), ("false", False), ("1", True), ("0", False),
                                               ("True", True), ("FALSE", False), ("yes", True), ("off", False)])
def test_booleans_take_paddlenlps_words(words, value):
    assert cfg_of("--do_eval", words).do_eval is value
    assert cfg_of(f"--overwrite_output_dir={words}").overwrite_output_dir is value


def test_a_bare_boolean_flag_means_true_even_before_another_flag():
    cfg = cfg_of("--overwrite_output_dir", "--do_eval", "--max_steps", "3", "--fp16")
    assert cfg.overwrite_output_dir is True and cfg.do_eval is True and cfg.max_steps == 3 and cfg.fp16 is True


def test_training_arguments_flags_reach_the_config():
    cfg = cfg_of("--evaluation_strategy", "epoch", "--save_strategy", "no", "--save_total_limit", "2",
                 "--warmup_steps", "10", "--gradient_accumulation_steps", "4", "--max_grad_norm", "0.5",
                 "--adam_epsilon", "1e-6", "--fp16_opt_level", "O1", "--dataloader_num_workers", "0")
    assert (cfg.evaluation_strategy, cfg.save_strategy, cfg.save_total_limit) == ("epoch", "no", 2)
    assert (cfg.warmup_steps, cfg.gradient_accumulation_steps) == (10, 4)
    assert (cfg.max_grad_norm, cfg.adam_epsilon, cfg.fp16_opt_level) == (0.5, 1e-6, "O1")


def test_old_run_glue_spellings_are_aliases():
    cfg = cfg_of("--batch_size", "8", "--warmup_proportion", "0.2", "--model_type", "gpt2", "--scale_loss", "1024")
    assert cfg.per_device_train_batch_size == 8 and cfg.warmup_ratio == 0.2
    assert cfg.model_type == "gpt2" and cfg.scale_loss == 1024.0
    assert cfg.per_device_eval_batch_size == 64  # the eval batch keeps its own (the offline preset's)


@pytest.mark.parametrize("name", ["sst-2", "SST-2", "sst2", "SST2"])
def test_task_name_in_any_case(name):
    assert cfg_of("--task_name", name).task_name == name


def _no_run(tmp_path):
    db = tmp_path / "runs.db"
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_refusals_say_why_one_line_per_flag_exit_2_and_no_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["train", "--db", str(tmp_path / "runs.db"), "--do_train", "false", "--dataloader_num_workers",
                   "4", "--logging_dir", "./vdl", "--model_type", "bert", "--fp16", "--bf16", "true",
                   "--evaluation_strategy", "sometimes"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "Invalid run configuration:"
    named = {ln.split(":")[0].strip() for ln in lines[1:]}
    assert named == {"do_train", "dataloader_num_workers", "logging_dir", "model_type", "bf16",
                     "evaluation_strategy"}, err
    assert "gpt2-tui eval" in err  # do_train false says what to use instead
    _no_run(tmp_path)


def test_a_word_that_is_not_a_boolean_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["--db", str(tmp_path / "runs.db"), "train", "--do_train", "maybe"])
    err = capsys.readouterr().err
    assert rc == 2 and "do_train: expected true or false, got 'maybe'" in err
    _no_run(tmp_path)


def test_help_lists_every_field_and_the_old_spellings(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    out = capsys.readouterr().out
    for name in [*RunConfig.field_names(), "batch_size", "warmup_proportion", "from_command"]:
        assert f"--{name}" in out, name


def _flags_of(command):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return {opt for a in sub.choices[command]._actions for opt in a.option_strings if opt.startswith("--")}


@pytest.mark.parametrize("command", ["train", "eval", "runs", "tag"])
def test_docs_flags_lists_every_flag(command):
    from conftest import ROOT

    text = (ROOT / "docs" / "FLAGS.md").read_text()
    section = text.split(f"## `gpt2-tui {command}`")[1].split("\n## ")[0]
    missing = [f for f in sorted(_flags_of(command) - {"--help"}) if not re.search(re.escape(f) + r"(?![\w-])", section)]
    assert not missing, f"docs/FLAGS.md does not describe {missing}"
