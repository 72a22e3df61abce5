"""No shell anywhere; hostile names and paths are data, never code; private files; no escape through '..'."""

import ast
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, gpt2_tui
from faultkit import alive, reaper  # noqa: F401  (fixture)

from core import data
from core.launch import LaunchError, make_run_dir

SHELL_CALLS = {("os", "system"), ("os", "popen"), ("os", "execlp"), ("subprocess", "getoutput"),
               ("subprocess", "getstatusoutput"), ("pty", "spawn")}


def _sources():
    for folder in ("core", "tui"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_shell_anywhere_in_core_or_tui():
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{path}:{node.lineno}: shell=")
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in SHELL_CALLS:
                found.append(f"{path}:{node.lineno}: {f.value.id}.{f.attr}")
            # subprocess.run("a string") goes through no shell, but a string command is a smell: argv lists only
            if isinstance(f, ast.Attribute) and f.attr in ("run", "Popen", "call", "check_call", "check_output") \
                    and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                found.append(f"{path}:{node.lineno}: {f.attr} with a string command")
    assert not found, found
    assert len(list(_sources())) > 20  # the scan really saw the code


# ---------------------------------------------------------------------------- a real run with hostile names
@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("sec")
    work = base / "work dir 'q' \"dq\" $(touch x)"  # even the folder the user works in
    work.mkdir()
    marks = [base / f"PWNED{i}" for i in range(4)]
    canary = base / "canary"
    canary.write_text("still here")
    name = (f"-x ../../escaped; $(touch {marks[0]}) `touch {marks[1]}` 'q' \"dq\" && rm -rf {canary} "
            f"| touch {marks[2]} # ünïcode")
    out_dir = work / f"out dir; $(touch {marks[3]}) 'q' -o"
    env = {"CUDA_VISIBLE_DEVICES": "0"}  # set on a machine without CUDA: must not reach the CPU ranks
    r = gpt2_tui("--db", "runs.db", "train", f"--run_name={name}", "--output_dir", str(out_dir),
                 "--max_steps", "3", "--eval_steps", "100", "--save_steps", "3", "--json", cwd=work, env=env,
                 timeout=300)
    return base, work, name, out_dir, marks, canary, r


@pytest.mark.slow
def test_a_hostile_run_name_and_output_dir_are_data_not_code(hostile_run):
    base, work, name, out_dir, marks, canary, r = hostile_run
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "finished"
    assert not [m for m in marks if m.exists()] and canary.read_text() == "still here"
    assert not list(base.rglob("escaped"))
    assert rec["name"] == name and rec["config"]["run_name"] == name  # stored verbatim
    assert f"--run_name={name}" in rec["command"]  # one argv element; '=' because it starts with '-'
    assert rec["output_dir"] == str(out_dir)
    assert (out_dir / "checkpoint-3" / "model_state.pdparams").exists()
    found = json.loads(gpt2_tui("--db", "runs.db", "show", name, "--json", cwd=work, check=True).stdout)
    assert found["id"] == rec["id"]  # the name finds the run
    run_dir = Path(rec["run_dir"])
    assert run_dir.parent == (work / "runs").resolve()  # '..' in the name built no path
    assert not alive(run_dir)


@pytest.mark.slow
def test_the_cpu_ranks_never_see_cuda_visible_devices(hostile_run):
    _, work, _, _, _, _, r = hostile_run
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    envlogs = sorted((Path(rec["run_dir"]) / "logs").glob("envlog.*"))
    assert len(envlogs) == 2  # paddle writes each rank's environment
    for log in envlogs:
        names = {ln.split("=", 1)[0] for ln in log.read_text().splitlines()}
        assert "PADDLE_TRAINER_ID" in names and "CUDA_VISIBLE_DEVICES" not in names, log


@pytest.mark.slow
def test_truncated_sentences_are_counted_in_the_train_output(hostile_run):
    r = hostile_run[-1]
    # The bundled sample has sentences longer than the offline preset's 64 tokens: a count, not an error.
    line = next(ln for ln in r.stderr.splitlines() if "truncated" in ln)
    assert line.startswith("warning: truncated ") and " of 3000 train and " in line
    assert "max_seq_length=64" in line


@pytest.mark.slow
def test_run_folders_and_the_database_are_private(hostile_run):
    _, work, _, _, _, _, r = hostile_run
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    run_dir = Path(rec["run_dir"])
    assert stat.S_IMODE((work / "runs").stat().st_mode) == 0o700
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "logs").stat().st_mode) == 0o700
    from core.store import Store

    store = Store(work / "runs.db")  # open, so the -wal and -shm files exist too
    store.get_run(rec["id"])
    files = list(work.glob("runs.db*"))
    assert len(files) == 3
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    store.close()
    assert stat.S_IMODE((run_dir / "events.jsonl").stat().st_mode) == 0o600


# ---------------------------------------------------------------------------- '..' in paths the app builds
@pytest.mark.parametrize("run_id", ["../outside", "a/../../b", "/etc/x", "..", "a/b"])
def test_a_run_id_cannot_leave_the_runs_folder(tmp_path, run_id):
    root = tmp_path / "runs"
    with pytest.raises((LaunchError, OSError)):
        make_run_dir(root, run_id)
    assert [p for p in tmp_path.rglob("*") if p != root] == []


def test_a_hostile_zip_cannot_write_outside_the_data_folder(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for split in ("train", "dev", "test"):
            z.writestr(f"../../evil/SST-2/{split}.tsv", "sentence\tlabel\ngood\t1\n" if split != "test"
                       else "index\tsentence\n0\tgood\n")
        z.writestr("../../evil/other.sh", "echo pwned")
    root = tmp_path / "cache" / "deep"
    root.mkdir(parents=True)
    (root / "SST.zip").write_bytes(buf.getvalue())
    data._unpack(root / "SST.zip", root, root / "SST-2", "file://test")
    assert sorted(p.name for p in (root / "SST-2").iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]
    assert not list(tmp_path.rglob("evil")) and not list(tmp_path.rglob("other.sh"))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        os.path.join("cache", "deep", "SST-2", n) for n in ("dev.tsv", "test.tsv", "train.tsv")] + [
        os.path.join("cache", "deep", "SST.zip")]


@pytest.mark.parametrize("value", ["-x", "--max_steps", "-1e9", "-", "-x=y"])
def test_a_value_that_looks_like_a_flag_reaches_the_trainer_as_a_value(tmp_path, value):
    """What core/train.py's argparse makes of the command (its parser, rebuilt here without paddle)."""
    import argparse
    import dataclasses

    from core.config import RunConfig
    from core.launch import TRAIN_SCRIPT, launch_argv
    from core.presets import offline_preset

    argv = launch_argv(offline_preset().replace(run_name=value), tmp_path / "r", "/m", "/d", "/o", "cpu", [], 2)
    p = argparse.ArgumentParser(exit_on_error=False)
    for extra in ("--run_dir", "--model_dir", "--resume_from"):
        p.add_argument(extra)
    for f in dataclasses.fields(RunConfig):
        p.add_argument(f"--{f.name}")
    ns = p.parse_args(argv[argv.index(str(TRAIN_SCRIPT)) + 1:])
    assert ns.run_name == value and ns.max_steps == "-1"
