"""The wheel: it holds the bundled model, data and stylesheets, it never asks for a paddle build, pip
leaves an installed GPU build alone, and a wheel install runs from an empty folder.

Offline: the wheel is built from a copy of the tree with the venv's setuptools (no build isolation),
and installs use ``--no-index``. The "installed" packages of the throwaway venvs are metadata copied
from this venv (the installed-distribution boundary), so pip resolves our real dependency tree.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.paddle_build import detect_paddle

ROOT = Path(__file__).resolve().parent.parent
PADDLE_NAMES = {"paddlepaddle", "paddlepaddle-gpu", "paddle-iluvatar-gpu"}
FAKE_GPU_INIT = "# the user's GPU build: must survive our install\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("core", "tui", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)  # a fresh tree: no stale build/ files
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("gpt2_tui-*.whl")
    return whl


def _names(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def _requires(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def test_the_wheel_holds_the_assets_the_stylesheets_and_every_module(wheel):
    names = _names(wheel)
    for folder in ("gpt2-tiny", "sst2-sample"):
        files = sorted(p.name for p in (ROOT / "assets" / folder).iterdir() if p.is_file())
        assert files and all(f"core/assets/{folder}/{f}" in names for f in files), folder
    assert {"tui/app.tcss", "tui/history.tcss"} <= names
    # pyproject lists the packages by hand (core.assets is mapped from assets/): a new one must be added.
    modules = {p.relative_to(ROOT).as_posix() for d in ("core", "tui") for p in (ROOT / d).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set()


def test_the_wheel_never_requires_paddle_unless_asked(wheel):
    """Requiring paddlepaddle would overwrite a user's paddlepaddle-gpu (both write paddle/)."""
    paddle = [r for r in _requires(wheel) if re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() in PADDLE_NAMES]
    assert paddle == ['paddlepaddle==3.3.1; extra == "cpu"']


def _bare_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    return next((path / "lib").glob("python3*/site-packages"))


def _copy_installed_metadata(site: Path, skip: set[str]) -> None:
    """This venv's installed distributions, as metadata only: what pip reads to decide what is missing."""
    for dist in md.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        meta = dist.read_text("METADATA")
        if name in skip or meta is None:
            continue
        info = site / f"{name.replace('-', '_')}-{dist.version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(meta)


def _fake_gpu_build(site: Path) -> None:
    info = site / "paddlepaddle_gpu-3.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paddlepaddle-gpu\nVersion: 3.3.1\n")
    (site / "paddle" / "version").mkdir(parents=True)
    (site / "paddle" / "__init__.py").write_text(FAKE_GPU_INIT)
    (site / "paddle" / "version" / "__init__.py").write_text("cuda_version = '12.6'\n")


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *args, "--no-index"],
                          capture_output=True, text=True, timeout=300)


def test_pip_leaves_an_installed_gpu_build_alone(wheel, tmp_path):
    site = _bare_venv(tmp_path / "venv")
    _copy_installed_metadata(site, skip={"gpt2-tui"} | PADDLE_NAMES)
    _fake_gpu_build(site)
    python = tmp_path / "venv" / "bin" / "python"
    report = tmp_path / "report.json"
    r = _pip(python, "install", "-q", "--find-links", str(wheel.parent), "--report", str(report), "gpt2-tui")
    assert r.returncode == 0, r.stderr  # had anything asked for paddlepaddle, --no-index could not find it
    installed = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert installed == ["gpt2-tui"]
    assert (site / "paddle" / "__init__.py").read_text() == FAKE_GPU_INIT
    assert not list(site.glob("paddlepaddle-*.dist-info"))
    assert detect_paddle([str(site)]).kind == "cuda"
    # The [cpu] extra is what asks for the CPU build (and --no-index has none to give).
    r = _pip(python, "install", "--dry-run", "--find-links", str(wheel.parent), "gpt2-tui[cpu]")
    assert r.returncode != 0 and "paddlepaddle==3.3.1" in r.stderr


@pytest.mark.slow
def test_a_wheel_install_runs_from_an_empty_folder(wheel, tmp_path):
    """The wheel alone provides core/ and tui/ (this venv's packages come in through a .pth line, which
    does not run this venv's editable finder), and finds its assets inside the package."""
    site = _bare_venv(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    r = _pip(python, "install", "-q", "--no-deps", str(wheel))
    assert r.returncode == 0, r.stderr
    ours = Path(md.distribution("psutil").locate_file(""))  # this venv's site-packages
    (site / "zz_project_venv.pth").write_text(f"{ours}\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CUDA_VISIBLE_DEVICES")}
    code = ("import core.config as c, core.models as m; print(c.__file__); print(m.resolve_model('gpt2-tiny')); "
            "print(c.SAMPLE_DATA_DIR)")
    out = subprocess.run([str(python), "-c", code], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    config_file, tiny, sample = out.stdout.split()
    assert config_file.startswith(str(site)) and tiny.startswith(str(site)) and sample.startswith(str(site))
    assert (Path(tiny) / "model_state.pdparams").is_file() and (Path(sample) / "train.tsv").is_file()
    r = subprocess.run([str(tmp_path / "venv" / "bin" / "gpt2-tui"), "devices", "--json"], cwd=empty, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cpu"]["cores_logical"] >= 1
    # The offline default, shortened: the installed trainer, the bundled gpt2-tiny and sample, a checkpoint.
    r = subprocess.run([str(tmp_path / "venv" / "bin" / "gpt2-tui"), "train", "--max_steps", "3", "--devices",
                        "cpu:1", "--eval_steps", "3", "--json"], cwd=empty, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "finished" and rec["model"] == "gpt2-tiny" and len(rec["evals"]) == 1
    assert rec["checkpoints"] and Path(rec["checkpoints"][-1]["path"]).is_relative_to(empty)
    assert (empty / "runs.db").is_file()
