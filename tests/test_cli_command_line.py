"""core.command_line: a pasted run_glue.py command → RunConfig values and what could not be mapped; and
`gpt2-tui train --from_command` built on it (in-process, no training)."""

import pytest

from core import cli
from core.command_line import parse_command
from core.config import RunConfig

REFERENCE = ("python3 run_glue.py --model_name_or_path gpt2-medium-en --task_name SST-2 --max_seq_length 128 \\\n"
             "  --per_device_train_batch_size 32 --learning_rate 2e-5 --num_train_epochs 3 --logging_steps 1 \\\n"
             "  --save_steps 500 --output_dir ./output_dir/glue --eval_steps 1 --device gpu --do_train true")


def test_the_reference_command_maps_completely():
    p = parse_command(REFERENCE)
    assert p.unmapped == [] and p.script == "run_glue.py"
    assert p.values == {"model_name_or_path": "gpt2-medium-en", "task_name": "SST-2", "max_seq_length": "128",
                        "per_device_train_batch_size": "32", "learning_rate": "2e-5", "num_train_epochs": "3",
                        "logging_steps": "1", "save_steps": "500", "output_dir": "./output_dir/glue",
                        "eval_steps": "1", "device": "gpu", "do_train": "true"}
    RunConfig.from_dict(p.values).check()  # every value is one RunConfig takes


def test_the_eight_gpu_form_maps_the_launchers_gpus_to_devices():
    p = parse_command('python3 -m paddle.distributed.launch --gpus "0,1,2,3,4,5,6,7" ' + REFERENCE.split(" ", 1)[1])
    assert p.values["devices"] == "gpu:0,1,2,3,4,5,6,7" and p.unmapped == [] and p.script == "run_glue.py"


def test_cuda_visible_devices_alone_and_with_gpus():
    p = parse_command("CUDA_VISIBLE_DEVICES=0,1 python run_glue.py --do_train")
    assert p.values == {"devices": "gpu:0,1", "do_train": "true"}
    # the launcher's ids index the visible devices
    p = parse_command("CUDA_VISIBLE_DEVICES=2,3 python -m paddle.distributed.launch --devices 1 run_glue.py")
    assert p.values == {"devices": "gpu:3"}


def test_what_cannot_be_mapped_is_listed_as_written():
    p = parse_command("FLAGS_eager=1 CUDA_VISIBLE_DEVICES=0 python3 -m paddle.distributed.launch --log_dir ./log "
                      "--gpus 0 run_glue.py --do_predict --report_to visualdl --max_steps=10 --disable_tqdm True "
                      "--learning_rate")
    assert p.values == {"devices": "gpu:0", "max_steps": "10"}
    assert p.unmapped == ["FLAGS_eager=1", "--log_dir ./log", "--do_predict", "--report_to visualdl",
                          "--disable_tqdm True", "--learning_rate (no value)"]


def test_old_spellings_and_bare_booleans_and_negative_numbers():
    p = parse_command("python run_glue.py --model_type gpt2 --batch_size 16 --warmup_proportion 0.1 "
                      "--scale_loss 128 --max_steps -1 --overwrite_output_dir --use_amp False --weight_decay -1e-5")
    assert p.values == {"model_type": "gpt2", "per_device_train_batch_size": "16", "warmup_ratio": "0.1",
                        "scale_loss": "128", "max_steps": "-1", "overwrite_output_dir": "true", "use_amp": "False",
                        "weight_decay": "-1e-5"}


def test_interpreter_options_are_skipped():
    p = parse_command("python3.11 -u -X dev -m paddle.distributed.launch --gpus 1 run_glue.py --seed 3")
    assert p.values == {"devices": "gpu:1", "seed": "3"} and p.unmapped == [] and p.script == "run_glue.py"


def test_without_interpreter_or_script_and_with_comments():
    p = parse_command("--task_name sst-2 --seed 7  # my favourite seed")
    assert p.values == {"task_name": "sst-2", "seed": "7"} and p.script == ""


def test_unclosed_quote_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot read the command"):
        parse_command('python run_glue.py --output_dir "oops')


def _cfg(*argv):
    return cli.config_from_args(cli.build_parser().parse_args(["train", "--preset", "offline", *argv]))


def test_from_command_fills_the_config_and_our_flags_win(capsys):
    cfg = _cfg("--from_command", "CUDA_VISIBLE_DEVICES=0,1 " + REFERENCE + " --report_to none",
               "--device", "cpu", "--devices", "cpu:2", "--model_name_or_path", "gpt2-tiny")
    assert cfg.per_device_train_batch_size == 32 and cfg.eval_steps == 1 and cfg.task_name == "SST-2"
    assert (cfg.device, cfg.devices, cfg.model_name_or_path) == ("cpu", "cpu:2", "gpt2-tiny")
    assert cfg.data_dir == "sample"  # not in the command: the preset's
    assert "--from_command: not mapped (ignored): --report_to none" in capsys.readouterr().err


def test_from_command_with_a_bad_value_names_it(tmp_path, capsys):
    rc = cli.main(["train", "--db", str(tmp_path / "runs.db"), "--from_command", "run_glue.py --learning_rate abc"])
    err = capsys.readouterr().err
    assert rc == 2 and "learning_rate: expected a number, got 'abc'" in err
    rc = cli.main(["train", "--db", str(tmp_path / "runs.db"), "--from_command", "run_glue.py --seed 'x"])
    assert rc == 2 and "--from_command: cannot read the command" in capsys.readouterr().err


def test_resume_keeps_its_own_settings(tmp_path, capsys):
    rc = cli.main(["train", "--db", str(tmp_path / "runs.db"), "--resume", "x", "--from_command", "--seed 1"])
    assert rc == 2 and "--resume continues a run with its own settings" in capsys.readouterr().err
