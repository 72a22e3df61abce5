"""Launching: argv lists only (no shell), the environment for CPU ranks, bad input refused early."""

import json
import sqlite3

import pytest
from conftest import gpt2_tui

from core.config import offline_preset
from core.launch import launch_argv, launch_env, make_run_dir, runs_root_for


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
