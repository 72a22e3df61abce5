"""core.paddle_build: which paddle build is installed, read from fake site-packages folders (the
installed-distribution boundary), and the fix each mismatch prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.paddle_build import PaddleBuild, build_for_driver, detect_paddle, gpu_problem

INDEX = "https://www.paddlepaddle.org.cn/packages/stable"


def fake_install(site, dist: str, version: str, cuda: str | None) -> None:
    """What pip leaves: NAME-VERSION.dist-info/METADATA and paddle/version/__init__.py (setup.py's)."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (site / "paddle" / "version").mkdir(parents=True, exist_ok=True)
    (site / "paddle" / "version" / "__init__.py").write_text(
        f"full_version     = '{version}'\ncuda_version     = '{cuda or 'False'}'\ncudnn_version    = 'False'\n")


def test_a_cuda_build_is_told_by_its_name_and_its_version_file(tmp_path):
    fake_install(tmp_path, "paddlepaddle-gpu", "3.0.0", "12.6")
    build = detect_paddle([str(tmp_path)])
    assert (build.kind, build.version, build.cuda) == ("cuda", "3.0.0", "12.6")


def test_the_cpu_build_and_two_builds_over_one_folder(tmp_path):
    fake_install(tmp_path, "paddlepaddle", "3.3.1", None)
    assert detect_paddle([str(tmp_path)]) == PaddleBuild(("paddlepaddle",), "3.3.1", None)
    fake_install(tmp_path, "paddlepaddle-gpu", "3.0.0", "11.8")
    assert detect_paddle([str(tmp_path)]).kind == "conflict"
    assert detect_paddle([str(tmp_path / "empty")]).kind == "none"


def test_the_installed_build_agrees_with_paddle_itself():
    """Reading the files must say what importing paddle says (the README's CPU commands install the CPU
    build here; a GPU developer's venv has a CUDA one)."""
    build = detect_paddle()
    code = "import paddle; print(paddle.is_compiled_with_cuda(), paddle.version.cuda())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    with_cuda, cuda = out.stdout.split()[-2:]
    assert (build.kind == "cuda") == (with_cuda == "True")
    assert build.cuda == (cuda if build.kind == "cuda" else None)


@pytest.mark.parametrize(("driver", "tag"), [("13.0", "cu129"), ("12.9", "cu129"), ("12.8", "cu126"),
                                            ("12.4", "cu118"), ("11.8", "cu118"), ("11.4", None), (None, "cu118")])
def test_the_build_a_driver_runs(driver, tag):
    assert build_for_driver(driver) == tag


def test_a_cpu_build_with_nvidia_gpus_prints_the_exact_replacement():
    cpu = PaddleBuild(("paddlepaddle",), "3.3.1", None)
    msg = gpu_problem(cpu, {"nvidia"}, "12.8")
    assert "CPU build" in msg and "-m pip uninstall -y paddlepaddle &&" in msg
    assert f"install paddlepaddle-gpu==3.3.1 -i {INDEX}/cu126/" in msg and sys.executable in msg


def test_a_build_newer_than_the_driver_is_a_mismatch_an_older_one_is_fine():
    cu126 = PaddleBuild(("paddlepaddle-gpu",), "3.3.1", "12.6")
    msg = gpu_problem(cu126, {"nvidia"}, "12.2")
    assert "CUDA 12.6" in msg and "CUDA 12.2 at most" in msg and f"{INDEX}/cu118/" in msg
    assert gpu_problem(cu126, {"nvidia"}, "12.6") is None and gpu_problem(cu126, {"nvidia"}, "13.0") is None
    assert "update the NVIDIA driver" in gpu_problem(cu126, {"nvidia"}, "11.4")


def test_iluvatar_cards_need_iluvatars_build():
    assert "paddle-iluvatar-gpu" in gpu_problem(PaddleBuild(("paddlepaddle",), "3.3.1", None), {"iluvatar"}, None)
    assert gpu_problem(PaddleBuild(("paddle-iluvatar-gpu",), "3.1.0", None), {"iluvatar"}, None) is None


def test_detection_does_not_import_paddle():
    code = "import sys, core.paddle_build as p; p.detect_paddle(); print('paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
