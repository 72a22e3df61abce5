"""Launching: argv lists only (no shell), the environment for CPU ranks, bad input refused early."""

import json
import sqlite3

import pytest
from conftest import gpt2_tui

from core.launch import launch_argv, launch_env, make_run_dir, runs_root_for
from core.presets import offline_preset


def test_argv_has_every_flag_and_no_shell(tmp_path):
    evil = 'x; rm -rf / $(touch pwned) "q" -leading'
    cfg = offline_preset().replace(run_name=evil)
    argv = launch_argv(cfg, tmp_path / "r", "/m", "/d", "/o", "cpu", [], 2)
    assert argv[1:4] == ["-m", "paddle.distributed.launch", "--log_dir"]
    assert argv[argv.index("--nproc_per_node") + 1] == "2"
    assert argv[argv.index("--run_name") + 1] == evil  # one argv element, verbatim
    assert "--devices" not in argv[: argv.index("--run_dir")]  # CPU builds reject --devices
    gpu = launch_argv(cfg, tmp_path / "r", "/m", "/d", "/o", "gpu", [0, 3], 2)
    assert gpu[gpu.index("--devices") + 1] == "0,3"


def test_multinode_argv(tmp_path):
    cfg = offline_preset().replace(nnodes=2, node_rank=1, master="127.0.0.1:6170")
    argv = launch_argv(cfg, tmp_path / "r", "/m", "/d", "/o", "cpu", [], 1)
    i = argv.index("--nnodes")
    assert argv[i:i + 6] == ["--nnodes", "2", "--master", "127.0.0.1:6170", "--rank", "1"]


def test_cpu_env_drops_cuda_visible_devices():
    env = launch_env("cpu", {"CUDA_VISIBLE_DEVICES": "0", "PATH": "/bin"})
    assert "CUDA_VISIBLE_DEVICES" not in env
    assert launch_env("gpu", {"CUDA_VISIBLE_DEVICES": "0"})["CUDA_VISIBLE_DEVICES"] == "0"


def test_run_dirs_are_private_and_cannot_escape(tmp_path):
    d = make_run_dir(tmp_path / "runs", "abc")
    assert (d.stat().st_mode & 0o777) == 0o700
    with pytest.raises(Exception, match="leave"):
        make_run_dir(tmp_path / "runs", "../outside")
    assert runs_root_for(tmp_path / "runs.db") == (tmp_path / "runs").resolve()


BAD_FILES = {
    "label": ("train.tsv", "sentence\tlabel\ngood film\t1\nbad film\t2\n", ":3"),
    "no tab": ("dev.tsv", "sentence\tlabel\ngood film\t1\nbad film 0\n", ":3"),
    "non-utf8": ("train.tsv", b"sentence\tlabel\ngood film\t1\nbad \xff\xfe film\t0\n", ":3"),
    "empty": ("dev.tsv", "", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_folder_exit_2_and_no_run(tmp_path, sample_copy, case):
    name, content, needle = BAD_FILES[case]
    p = sample_copy / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "train", "--data_dir", str(sample_copy), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert str(p) in r.stderr and needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3  # one paragraph
    rows = sqlite3.connect(tmp_path / "runs.db").execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert rows == 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_flags_exit_2_naming_the_field(tmp_path):
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "train", "--learning_rate", "-1",
                 "--per_device_train_batch_size", "big", cwd=tmp_path)
    assert r.returncode == 2 and "per_device_train_batch_size" in r.stderr and "Traceback" not in r.stderr


def test_unknown_toml_key_and_syntax_error(tmp_path):
    (tmp_path / "a.toml").write_text("[run]\nlearning_rte = 0.1\n")
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "train", "--config", "a.toml", cwd=tmp_path)
    assert r.returncode == 2 and "learning_rte" in r.stderr and "learning_rate" in r.stderr
    (tmp_path / "b.toml").write_text("[run]\nmax_steps = [\n")
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "train", "--config", "b.toml", cwd=tmp_path)
    assert r.returncode == 2 and "b.toml:" in r.stderr


def test_runs_and_show_on_an_empty_db(tmp_path):
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "runs", "--json", cwd=tmp_path, check=True)
    assert json.loads(r.stdout) == []
    r = gpt2_tui("--db", str(tmp_path / "runs.db"), "show", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "no run matches" in r.stderr


def test_a_multi_node_job_takes_this_nodes_address_on_the_route_to_the_master_unless_set():
    from core.launch import node_network_env

    assert node_network_env("127.0.0.1:6170", {}) == {"POD_IP": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}
    assert node_network_env("127.0.0.1:6170", {"POD_IP": "10.0.0.9"}) == {"GLOO_SOCKET_IFNAME": "lo"}
    assert node_network_env("127.0.0.1:6170", {"POD_IP": "10.0.0.9", "GLOO_SOCKET_IFNAME": "eth1"}) == {}


def test_a_master_that_does_not_resolve_is_a_clear_launch_error():
    from core.launch import LaunchError, node_address

    with pytest.raises(LaunchError, match=r"master no-such-host\.invalid:6170: cannot find a route to it"):
        node_address("no-such-host.invalid:6170")


def test_joining_a_master_that_does_not_resolve_fails_before_anything_exists(tmp_path):
    r = gpt2_tui("--db", "runs.db", "train", "--join", "no-such-host.invalid:6170", "--node_rank", "1",
                 cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "master no-such-host.invalid:6170: cannot find a route to it" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "runs").glob("*"))  # no run folder, no half-made run


def test_an_etcd_master_makes_an_elastic_launch_with_the_run_as_job(tmp_path):
    cfg = offline_preset().replace(master="etcd://127.0.0.1:2379", max_restart=3)
    run_dir = tmp_path / "runs" / "20260101-000000-abcd"
    argv = launch_argv(cfg, run_dir, "/m", "/d", "/o", "cpu", [], 2)
    i = argv.index("--master")
    assert argv[i:i + 10] == ["--master", "etcd://127.0.0.1:2379", "--nnodes", "1", "--job_id",
                              "gpt2tui-20260101-000000-abcd", "--max_restart", "3", "--elastic_level", "1"]
    assert argv.index("--elastic_level") < argv.index(next(a for a in argv if a.endswith("train.py")))
    assert argv[argv.index("--max_restart", i + 10):][:2] == ["--max_restart", "3"]  # the trainer knows too


# ---------------------------------------------------------------------------- the config <-> argv codec
def _non_default_config():
    """Every field away from its default (a different value of the same type), run_name a flag lookalike."""
    import dataclasses

    from core.config import RunConfig

    base = RunConfig()
    changes = {}
    for f in dataclasses.fields(RunConfig):
        v = getattr(base, f.name)
        if isinstance(v, bool):
            changes[f.name] = not v
        elif isinstance(v, int):
            changes[f.name] = v + 3
        elif isinstance(v, float):
            changes[f.name] = v * 0.5 + 1.25e-7
        else:
            changes[f.name] = f"{v}-x y"
    changes["run_name"] = "-leading dash --not-a-flag"
    changes["output_dir"] = "--help"
    changes["max_steps"] = -1  # a negative number stays a separate argv element
    cfg = base.replace(**changes)
    assert all(getattr(cfg, n) != getattr(base, n) for n in RunConfig.field_names() if n != "max_steps")
    return cfg


def test_every_field_round_trips_through_argv():
    import argparse

    from core.config import RunConfig

    cfg = _non_default_config()
    argv = cfg.to_argv()
    assert "--run_name=-leading dash --not-a-flag" in argv and "--output_dir=--help" in argv
    assert argv[argv.index("--max_steps") + 1] == "-1"
    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser, defaults=RunConfig())
    assert RunConfig.from_namespace(parser.parse_args(argv)) == cfg
    # Without defaults, a flag not given is None and keeps the base config's value.
    bare = argparse.ArgumentParser()
    RunConfig.add_arguments(bare, grouped=True)
    ns = bare.parse_args(["--max_steps", "7", "--use_amp", "yes"])
    assert ns.seed is None
    got = RunConfig.from_namespace(ns, base=offline_preset())
    assert got == offline_preset().replace(max_steps=7, use_amp=True)


def test_argv_flags_are_typed_with_field_named_errors(capsys):
    import argparse

    from core.config import RunConfig

    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser, defaults=RunConfig())
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["--max_steps", "ten"])
    assert e.value.code == 2
    assert "--max_steps: expected an integer, got 'ten'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--use_amp", "maybe"])
    assert "--use_amp: expected true or false" in capsys.readouterr().err


def test_launch_argv_decodes_to_the_config_it_was_built_from(tmp_path):
    """The launcher's trainer flags are exactly the config, with the resolved data and output folders."""
    import argparse

    from core.config import RunConfig

    cfg = _non_default_config()
    argv = launch_argv(cfg, tmp_path / "r", "/m", "/d", "/o", "cpu", [], 2, resume_from="/ck")
    tail = argv[argv.index("--run_dir"):]
    parser = argparse.ArgumentParser()
    parser.add_argument("--run_dir")
    parser.add_argument("--model_dir")
    parser.add_argument("--resume_from")
    RunConfig.add_arguments(parser, defaults=RunConfig())
    ns = parser.parse_args(tail)
    assert (ns.run_dir, ns.model_dir, ns.resume_from) == (str(tmp_path / "r"), "/m", "/ck")
    assert RunConfig.from_namespace(ns) == cfg.replace(data_dir="/d", output_dir="/o")


def test_the_preview_is_the_command_that_runs(tmp_path, monkeypatch):
    """prepare_run's argv is the configure screen's preview, with the run id for RUN_ID."""
    from core.launch import RUN_ID_PLACEHOLDER, prepare_run
    from tui.command import preview_argv
    from tui.testing import fake_report

    monkeypatch.setattr("tui.command.PYTHON", __import__("sys").executable)
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))
    monkeypatch.chdir(tmp_path)
    report = fake_report(1, gpus=0)
    for cfg in (offline_preset(), offline_preset().replace(output_dir="~/ck", run_name="-odd")):
        prep = prepare_run(cfg, tmp_path / "runs", report=report)
        shown = preview_argv(cfg, tmp_path / "runs", report)
        assert [a.replace(RUN_ID_PLACEHOLDER, prep.run_id) for a in shown] == prep.argv


def test_a_run_whose_checkpoints_cannot_fit_is_refused_saying_by_how_much(tmp_path, monkeypatch):
    """The disk rule of the preflight refuses the launch too, before the run folder exists."""
    from collections import namedtuple

    from core import disk_plan
    from core.launch import LaunchError, prepare_run
    from tui.testing import fake_report

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(disk_plan.shutil, "disk_usage", lambda p: Usage(10**9, 10**9, 1000))
    cfg = offline_preset().replace(max_steps=40, save_steps=10)  # 4 checkpoints of gpt2-tiny (~3 MB each)
    with pytest.raises(LaunchError, match=r"4 checkpoint\(s\).*short"):
        prepare_run(cfg, tmp_path / "runs", report=fake_report(1, gpus=0))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_output_dir_with_checkpoints_needs_overwrite_output_dir(tmp_path):
    from core.launch import LaunchError, prepare_run
    from tui.testing import fake_report

    out = tmp_path / "out"
    ck = out / "checkpoint-500"
    ck.mkdir(parents=True)
    (ck / "config.json").write_text("{}")
    (ck / "model_state.pdparams").write_bytes(b"x")
    cfg = offline_preset().replace(output_dir=str(out), max_steps=2)
    with pytest.raises(LaunchError, match="checkpoint-500.*--overwrite_output_dir true"):
        prepare_run(cfg, tmp_path / "runs", report=fake_report(1, gpus=0))
    prep = prepare_run(cfg.replace(overwrite_output_dir=True), tmp_path / "runs", report=fake_report(1, gpus=0))
    assert prep.output_dir == str(out)
