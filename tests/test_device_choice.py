"""A device choice is honoured or refused, never swapped: GPU specs where paddle cannot use a GPU.

Fakes only at the hardware boundary: NVML (FakeNvml) and the installed paddle build (PaddleBuild).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_devices import CUDA_BUILD, FakeNvml

from core import devices
from core.config import RunConfig
from core.devices import DeviceError, parse_devices
from core.paddle_build import PaddleBuild, detect_paddle
from core.presets import offline_preset

BIN = Path(sys.executable).parent / "gpt2-tui"
CPU_BUILD = PaddleBuild(("paddlepaddle",), "3.3.1", None)


def report(n=2, paddle=CUDA_BUILD, cuda=12080):
    return devices.detect(nvml=FakeNvml(n, cuda=cuda), cpu_interval=None, paddle=paddle)


@pytest.mark.parametrize("spec", ["gpu", "gpu:0", "auto"])
def test_gpus_with_the_cpu_build_are_refused_with_the_fix(spec):
    with pytest.raises(DeviceError) as info:
        parse_devices(spec, report(paddle=CPU_BUILD), env={})
    msg = str(info.value)
    assert "paddle cannot use them" in msg and "CPU build" in msg and "\n" not in msg
    assert "pip uninstall -y paddlepaddle && " in msg and "paddlepaddle-gpu==3.3.1 -i " in msg
    assert "--devices cpu:N" in msg


def test_the_installed_cpu_build_is_what_the_rule_sees():
    """No fake paddle: detect() reads the real install (the CPU build here), so fake GPUs are refused."""
    rep = devices.detect(nvml=FakeNvml(1), cpu_interval=None)
    assert rep.paddle == detect_paddle()
    if rep.paddle.kind != "cpu":
        pytest.skip(f"this venv has {rep.paddle.describe()}, not the CPU build")
    with pytest.raises(DeviceError, match="CPU build"):
        parse_devices("gpu:0", rep, env={})
    assert "warning: paddle cannot use these GPUs" in devices.render_text(rep)
    assert "paddlepaddle-gpu==3.3.1" in devices.to_json(rep)["gpu_problem"]


def test_a_build_for_a_newer_cuda_than_the_driver_is_refused():
    with pytest.raises(DeviceError, match=r"needs a driver for CUDA 12\.6.*CUDA 12\.2 at most"):
        parse_devices("gpu:0", report(cuda=12020), env={})


def test_cuda_visible_devices_hiding_a_gpu_is_refused():
    with pytest.raises(DeviceError, match="GPU 1 is hidden from paddle by CUDA_VISIBLE_DEVICES=0"):
        parse_devices("gpu:1", report(), env={"CUDA_VISIBLE_DEVICES": "0"})
    with pytest.raises(DeviceError, match="hides every GPU"):
        parse_devices("gpu", report(), env={"CUDA_VISIBLE_DEVICES": "-1"})
    with pytest.raises(DeviceError, match="by UUID"):
        parse_devices("gpu", report(), env={"CUDA_VISIBLE_DEVICES": "GPU-0001"})
    # auto / gpu take the GPUs paddle will see, in NVML's numbering (paddle's launcher matches them).
    assert parse_devices("auto", report(4), env={"CUDA_VISIBLE_DEVICES": "3,1"}).ids == [1, 3]
    assert parse_devices("gpu:3", report(4), env={"CUDA_VISIBLE_DEVICES": "1,3"}).ids == [3]


def test_no_driver_and_a_missing_id():
    no_gpu = devices.detect(nvml=FakeNvml(0), cpu_interval=None, paddle=CUDA_BUILD)
    with pytest.raises(DeviceError, match="none was found"):
        parse_devices("gpu", no_gpu, env={})
    with pytest.raises(DeviceError, match="GPU 7 does not exist"):
        parse_devices("gpu:7", report(), env={})


def test_device_gpu_is_never_narrowed_to_the_cpu():
    assert RunConfig(device="gpu", devices="auto").device_spec() == "gpu"
    assert offline_preset().replace(device="gpu").device_spec() == "gpu"  # the preset's cpu:2 yields
    assert RunConfig(device="gpu", devices="gpu:1").device_spec() == "gpu:1"


def test_train_device_gpu_here_exits_2_with_the_reason_and_no_run_folder(tmp_path):
    """This machine has no NVIDIA driver: `train --device gpu` used to train on the CPU without a word."""
    if devices.detect(cpu_interval=None).gpus:
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PPNLP_HOME"] = str(tmp_path / "ppnlp")
    r = subprocess.run([str(BIN), "--db", str(tmp_path / "runs.db"), "train", "--device", "gpu"],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "asks for a GPU but none was found" in r.stderr and "--devices cpu:N" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
