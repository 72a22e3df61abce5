"""Bad input: every mistake is one clear message (what, where, how to fix), exit code 2, no traceback, no run.

The full matrix calls ``core.cli.main`` in-process (fast, and an escaping exception fails the test); a
sample of each kind goes through the installed `gpt2-tui` to show the same from a user's shell.
"""

import dataclasses
import shutil
import sqlite3

import pytest
from conftest import ROOT, gpt2_tui

from core import cli
from core.config import RunConfig
from core.devices import CpuInfo, DeviceError, DeviceReport, GpuInfo
from core.launch import prepare_run

NUMERIC = [f for f in dataclasses.fields(RunConfig) if f.type in ("int", "float")]


def _cases():
    for f in NUMERIC:
        lo, hi = f.metadata["min"], f.metadata["max"]
        step = 1 if f.type == "int" else 0.5
        yield pytest.param(f.name, str(lo if f.metadata.get("exclusive_min") else lo - step), "must be",
                           id=f"{f.name}-below")
        yield pytest.param(f.name, str(hi + step), "must be <=", id=f"{f.name}-above")
        yield pytest.param(f.name, "ten", "expected an integer" if f.type == "int" else "expected a number",
                           id=f"{f.name}-text")
        if f.type == "int":
            yield pytest.param(f.name, "2.5", "expected an integer", id=f"{f.name}-fraction")
        else:
            yield pytest.param(f.name, "inf", "finite", id=f"{f.name}-inf")


def _no_run_was_made(tmp_path):
    db = tmp_path / "runs.db"
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _main(tmp_path, capsys, *args):
    rc = cli.main(["--db", str(tmp_path / "runs.db"), *args])
    return rc, capsys.readouterr().err


def test_every_numeric_field_has_bounds():
    assert len(NUMERIC) >= 14
    for f in NUMERIC:
        assert f.metadata.get("min") is not None and f.metadata.get("max") is not None, f.name


@pytest.mark.parametrize(("name", "value", "needle"), list(_cases()))
def test_every_numeric_flag_out_of_range_or_mistyped_is_exit_2(tmp_path, capsys, monkeypatch, name, value,
                                                                  needle):
    monkeypatch.chdir(tmp_path)
    rc, err = _main(tmp_path, capsys, "train", f"--{name}={value}")
    assert rc == 2, err
    assert f"  {name}: " in err and needle in err, err  # names the field, says what is allowed
    assert err.startswith("Invalid run configuration:")
    _no_run_was_made(tmp_path)


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("max_steps", '"ten"', "expected an integer"),
    ("learning_rate", "[1, 2]", "expected a number"),
    ("warmup_ratio", "2.0", "must be <= 1.0"),
    ("stop_on_nan", '"maybe"', "true or false"),
    ("run_name", "3", "expected text"),
])
def test_a_bad_value_in_a_toml_file_is_exit_2_naming_the_key(tmp_path, capsys, monkeypatch, name, value, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(f"[run]\n{name} = {value}\n")
    rc, err = _main(tmp_path, capsys, "train", "--config", "run.toml")
    assert rc == 2 and name in err and needle in err, err
    _no_run_was_made(tmp_path)


def test_the_cli_says_it_without_a_traceback(tmp_path):
    for args, needle in [
        (["--learning_rate", "5"], "learning_rate: must be <= 1.0, got 5.0"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size: must be >= 1, got 0"),
        (["--max_seq_length", "many"], "max_seq_length: expected an integer, got 'many'"),
        (["--nnodes", "2", "--node_rank", "1"], "master: multi-node jobs need master HOST:PORT"),
        (["--node_rank", "3"], "node_rank: must be < nnodes (1), got 3"),
        (["--master=-h:80", "--nnodes", "2"], "master: multi-node jobs need master HOST:PORT"),
    ]:
        r = gpt2_tui("--db", "runs.db", "train", *args, cwd=tmp_path)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    _no_run_was_made(tmp_path)


def test_unknown_model_names_the_nearest(tmp_path):
    r = gpt2_tui("--db", "runs.db", "train", "--model_name_or_path", "gpt2-medum-en", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Unknown model 'gpt2-medum-en'" in r.stderr and "Did you mean 'gpt2-medium-en'?" in r.stderr
    assert "gpt2-tiny" in r.stderr  # and lists what is known
    r = gpt2_tui("--db", "runs.db", "train", "--model_name_or_path", "./no/such/model", cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    _no_run_was_made(tmp_path)


def test_a_missing_data_dir_says_what_to_pass(tmp_path):
    r = gpt2_tui("--db", "runs.db", "train", "--data_dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{tmp_path / 'nope'}: data folder not found" in r.stderr and "--data_dir" in r.stderr
    _no_run_was_made(tmp_path)


def test_toml_syntax_error_names_line_and_column_and_unknown_keys_the_nearest(tmp_path):
    (tmp_path / "bad.toml").write_text("[run]\nlearning_rate = 1e-3\nmax_steps = = 4\n")
    r = gpt2_tui("--db", "runs.db", "train", "--config", "bad.toml", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "bad.toml:3:" in r.stderr and "TOML syntax error" in r.stderr
    line_col = r.stderr.split("bad.toml:3:")[1].split(":")[0]
    assert line_col.isdigit()  # the column
    (tmp_path / "keys.toml").write_text("[run]\nper_device_train_batch = 8\nwarmup = 0.1\n")
    r = gpt2_tui("--db", "runs.db", "train", "--config", "keys.toml", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "per_device_train_batch: unknown key (did you mean 'per_device_train_batch_size'?)" in r.stderr
    assert "warmup: unknown key (did you mean 'warmup_" in r.stderr  # every problem, at once
    _no_run_was_made(tmp_path)


# ---------------------------------------------------------------------------- data files
DATA_CASES = {
    "wrong header": ("train.tsv", "text\tlabel\ngood\t1\n", ":1: wrong header", "Make the first line"),
    "header lacks a column": ("train.tsv", "sentence\ngood\n", ":1: wrong header", "(1 column)"),
    "row lacks its label": ("dev.tsv", "sentence\tlabel\ngood film\t1\nbad film\n", ":3: row has no tab",
                            "Separate the columns"),
    "label 2": ("dev.tsv", "sentence\tlabel\ngood film\t1\nmeh\t2\n", ":3: label is '2'", "SST-2 is binary"),
    "label word": ("train.tsv", "sentence\tlabel\ngood film\tpositive\n", ":2: label is 'positive'", "0 (negative)"),
    "header only": ("train.tsv", "sentence\tlabel\n", ":1: only a header", "Add one row"),
    "blank file": ("dev.tsv", "\n\n", "file is empty", "starts with the header"),
    "latin-1": ("train.tsv", b"sentence\tlabel\ncaf\xe9 film\t1\n", ":2: not valid UTF-8", "iconv"),
    "test.tsv index": ("test.tsv", "index\tsentence\nfirst\tgood film\n", ":2: index is 'first'", "test.tsv rows"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_a_bad_data_file_is_exit_2_naming_file_line_and_fix(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "sst2"
    shutil.copytree(ROOT / "assets" / "sst2-sample", data)
    name, content, where, fix = DATA_CASES[case]
    (data / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    rc, err = _main(tmp_path, capsys, "train", "--data_dir", str(data))
    assert rc == 2, err
    assert f"{data / name}" in err and where in err and fix in err, err
    _no_run_was_made(tmp_path)


# ---------------------------------------------------------------------------- devices
def _fake_report(n_gpus: int, cores: int = 2) -> DeviceReport:
    gpus = [GpuInfo(i, "Fake GPU", f"GPU-{i}", 2**34, 0, 0.0, 30.0, 50.0, 300.0, "nvidia") for i in range(n_gpus)]
    return DeviceReport(gpus, CpuInfo(cores, cores, 2**34, 2**33, [0.0] * cores, "fake cpu"), [], "nvml")


def test_device_mistakes_are_exit_2_before_anything_starts(tmp_path):
    r = gpt2_tui("--db", "runs.db", "train", "--devices", "cpu:64", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cpu:64 asks for 64 processes but this machine has" in r.stderr
    r = gpt2_tui("--db", "runs.db", "train", "--devices", "gpu:3", cwd=tmp_path)
    assert r.returncode == 2 and "asks for a GPU but none was found" in r.stderr and "cpu:N" in r.stderr
    _no_run_was_made(tmp_path)


def test_a_gpu_id_that_does_not_exist_is_named_before_the_run_folder_exists(tmp_path):
    from core.presets import offline_preset

    root = tmp_path / "runs"
    with pytest.raises(DeviceError, match="GPU 3 does not exist; this machine has GPU 0, 1"):
        prepare_run(offline_preset().replace(devices="gpu:0,3"), root, report=_fake_report(2))
    assert not root.exists()
