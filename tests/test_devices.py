"""core.devices: fake NVML, the real (driverless) NVML, ixsmi parsing, device specs, process stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pynvml
import pytest

from core import devices
from core.devices import DeviceError, DeviceReport, parse_devices
from core.devices import nvml as nvml_backend
from core.devices.ixsmi import IxsmiBackend
from core.paddle_build import PaddleBuild

GIB = 1024**3
# The paddle build a GPU machine should have: tests about GPUs use it, so the CPU build installed here
# does not make every GPU spec a refusal (tests/test_device_choice.py covers that).
CUDA_BUILD = PaddleBuild(("paddlepaddle-gpu",), "3.3.1", "12.6")


class FakeNvml:
    """The slice of pynvml that core.devices uses, with n cards that all report every reading.

    ``compute`` / ``graphics``: GPU index -> [(pid, used bytes or None)], as NVML's running-process
    lists give them; ``cuda``: what nvmlSystemGetCudaDriverVersion answers (12080 = CUDA 12.8).
    """

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, n: int, fail_init: bool = False, power: bool = True, cuda: int = 12080,
                 compute: dict | None = None, graphics: dict | None = None):
        self.n, self.fail_init, self.power, self.cuda = n, fail_init, power, cuda
        self.compute, self.graphics = compute or {}, graphics or {}
        self.inits = self.shutdowns = 0

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return self.n

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("handle", i)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3" if h[1] % 2 else "NVIDIA A100-SXM4-40GB"

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h[1]:04d}"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=80 * GIB, used=(h[1] + 1) * GIB, free=0)

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=10 * h[1], memory=5)

    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 40 + h[1]

    def nvmlDeviceGetPowerUsage(self, h):
        if not self.power:
            raise RuntimeError("Not Supported")
        return 250_500  # milliwatts

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return 700_000

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.compute.get(h[1], [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.graphics.get(h[1], [])]


@pytest.mark.parametrize("n", [2, 8])
def test_fake_nvml_reports_every_gpu(n):
    fake = FakeNvml(n)
    report = devices.detect(nvml=fake, cpu_interval=None)
    assert report.backend == "nvml" and report.errors == []
    assert [g.index for g in report.gpus] == list(range(n))
    g1 = report.gpus[1]
    assert g1.name == "NVIDIA H100 80GB HBM3"  # bytes from old bindings are decoded
    assert g1.uuid == "GPU-0001" and g1.vendor == "nvidia"
    assert (g1.mem_total, g1.mem_used) == (80 * GIB, 2 * GIB)
    assert (g1.util, g1.temperature) == (10.0, 41.0)
    assert (g1.power_w, g1.power_limit_w) == (250.5, 700.0)
    assert fake.inits == fake.shutdowns == 1  # detect() is one-shot: it gives NVML back
    text = devices.render_text(report)
    assert "NVIDIA A100-SXM4-40GB" in text and f"{n - 1}  " in text
    assert json.loads(json.dumps(devices.to_json(report)))["gpus"][0]["mem_total"] == 80 * GIB


def test_unsupported_reading_is_none_not_failure():
    report = devices.detect(nvml=FakeNvml(2, power=False), cpu_interval=None)
    assert len(report.gpus) == 2 and report.gpus[0].power_w is None
    assert "?" in devices.render_text(report)


def test_failing_injected_nvml_is_a_report_line():
    report = devices.detect(nvml=FakeNvml(2, fail_init=True), cpu_interval=None)
    assert report.gpus == [] and report.backend == "none"
    assert any("Library Not Found" in e for e in report.errors)


def test_real_nvml_without_driver_does_not_raise():
    report = devices.detect(cpu_interval=None)
    assert report.cpu.cores_logical >= 1 and report.cpu.mem_total > 0
    assert len(report.cpu.load_per_core) == report.cpu.cores_logical
    if not report.gpus:  # this dev box: CPU only
        assert report.errors and report.backend == "none"
        assert "GPUs: none" in devices.render_text(report)


def test_sampler_keeps_nvml_open_until_closed():
    fake = FakeNvml(4)
    with devices.DeviceSampler(nvml=fake) as sampler:
        for _ in range(3):
            report = sampler.sample()
            assert len(report.gpus) == 4 and report.backend == "nvml"
        assert fake.inits == 1 and fake.shutdowns == 0
    assert fake.shutdowns == 1


def test_ixml_shim_maps_names_pynvml_asks_for(monkeypatch):
    """pynvml.nvmlInit → nvmlInitWithFlags, absent from libixml: the shim routes it to nvmlInit_v2."""
    calls = []

    class FakeIxml:  # ctypes-style: out-parameters arrive as byref() objects, return code 0 = success
        def nvmlInit_v2(self):
            calls.append("nvmlInit_v2")
            return 0

        def nvmlDeviceGetCount(self, ref):  # unversioned only, as in Iluvatar's device plugin
            ref._obj.value = 3
            return 0

        def nvmlShutdown(self):
            return 0

    monkeypatch.setattr(pynvml, "nvmlLib", None)
    monkeypatch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
    nvml_backend.use_shim(pynvml, FakeIxml())
    pynvml.nvmlInit()
    assert pynvml.nvmlDeviceGetCount() == 3 and calls == ["nvmlInit_v2"]
    pynvml.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError):
        pynvml.nvmlDeviceGetPowerUsage(None)  # not exported → FUNCTION_NOT_FOUND, as from real NVML


IXSMI_CSV = """\
0, Iluvatar BI-V150, GPU-6a8c1f2e-0000, 32768, 1024, 37, 45, 88.50, 350.00
1, Iluvatar BI-V150, GPU-6a8c1f2e-0001, 32768 MiB, 30720 MiB, 100 %, 71, [N/A], [N/A]
garbage line from a driver warning
"""


def test_ixsmi_csv_parsing():
    gpus = devices.parse_ixsmi_csv(IXSMI_CSV)
    assert [g.index for g in gpus] == [0, 1]
    g0, g1 = gpus
    assert g0.name == "Iluvatar BI-V150" and g0.vendor == "iluvatar"
    assert (g0.mem_total, g0.mem_used) == (32 * GIB, 1024 * 1024 * 1024)
    assert (g0.util, g0.temperature, g0.power_w, g0.power_limit_w) == (37.0, 45.0, 88.5, 350.0)
    assert g1.mem_used == 30 * GIB and g1.util == 100.0  # units left on are tolerated
    assert g1.power_w is None and g1.power_limit_w is None


def test_ixsmi_backend_runs_the_binary(tmp_path, monkeypatch):
    exe = tmp_path / "ixsmi"
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{IXSMI_CSV}EOF\n")
    exe.chmod(0o755)
    gpus = IxsmiBackend(str(exe)).read()
    assert len(gpus) == 2
    monkeypatch.setattr(subprocess, "run", _raise_timeout)
    errors: list[str] = []
    assert devices._read(IxsmiBackend(str(exe)), errors) == [] and "ixsmi" in errors[0]


def _raise_timeout(*a, **k):
    raise subprocess.TimeoutExpired("ixsmi", 5)


def _report(n_gpus: int, cores: int = 2) -> DeviceReport:
    report = devices.detect(nvml=FakeNvml(n_gpus), cpu_interval=None, paddle=CUDA_BUILD)
    report.cpu.cores_logical = cores
    return report


def test_parse_devices_auto_and_explicit():
    assert parse_devices("auto", _report(0, cores=2)) == devices.DeviceSelection("cpu", [], 2)
    assert parse_devices("auto", _report(0, cores=1)).nprocs == 1
    sel = parse_devices("auto", _report(4), env={})
    assert (sel.kind, sel.ids, sel.nprocs) == ("gpu", [0, 1, 2, 3], 4)
    assert parse_devices(" GPU:3,1 ", _report(4), env={}).ids == [3, 1]
    assert parse_devices("gpu", _report(2), env={}).ids == [0, 1]
    assert parse_devices("cpu:1", _report(0)).nprocs == 1


@pytest.mark.parametrize(
    ("spec", "gpus", "needle"),
    [
        ("gpu:0,5", 2, "GPU 5 does not exist; this machine has GPU 0, 1"),
        ("gpu:0", 0, "none was found"),
        ("cpu:3", 0, "2 logical cores"),
        ("cpu:0", 0, ">= 1"),
        ("cpu:x", 0, ">= 1"),
        ("gpu:1,1", 2, "repeat"),
        ("gpu:a", 2, "numbers"),
        ("tpu:0", 2, "unknown device spec"),
    ],
)
def test_parse_devices_errors_are_one_line(spec, gpus, needle):
    with pytest.raises(DeviceError) as info:
        parse_devices(spec, _report(gpus), env={})
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_process_stats_on_this_process():
    sampler = devices.DeviceSampler(nvml=FakeNvml(0))
    me = os.getpid()
    first = sampler.process_stats([me, 2**22 + 12345])  # the second pid does not exist
    assert [p.pid for p in first] == [me] and first[0].rss > 0
    sum(i * i for i in range(300_000))  # burn a little CPU so the cached Process sees a delta
    second = sampler.process_stats([me])
    assert second[0].cpu_percent >= 0.0 and second[0].rss > 0
    assert sampler.process_stats([]) == [] and sampler._procs == {}


def test_core_devices_imports_no_ui_and_no_paddle():
    code = "import sys, core.devices; print(sorted(m for m in ('paddle', 'textual', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_process_on_each_gpu_with_its_user_and_memory():
    """NVML's compute and graphics lists, merged by pid; this test's own pid stands in for a real owner."""
    me, ghost = os.getpid(), 2**22 + 4321  # ghost: a pid from another namespace, unknown to psutil
    fake = FakeNvml(2, compute={0: [(me, 3 * GIB), (ghost, None)]}, graphics={0: [(me, 1 * GIB)]})
    report = devices.detect(nvml=fake, cpu_interval=None, paddle=CUDA_BUILD)
    g0, g1 = report.gpus
    assert g1.processes == []
    mine, other = g0.processes if g0.processes[0].pid == me else g0.processes[::-1]
    assert (mine.kind, mine.gpu_memory) == ("compute+graphics", 3 * GIB)
    assert mine.user and mine.name  # psutil knows this process
    assert (other.pid, other.user, other.gpu_memory, other.kind) == (ghost, None, None, "compute")
    data = json.loads(json.dumps(devices.to_json(report)))
    assert {p["pid"] for p in data["gpus"][0]["processes"]} == {me, ghost} and data["driver_cuda"] == "12.8"
    text = devices.render_text(report)
    assert "Processes on the GPUs:" in text and f"{me}" in text and "3,072 MiB" in text and str(ghost) in text


def test_no_processes_says_so_and_a_driver_without_lists_is_not_a_failure():
    class NoLists(FakeNvml):
        def nvmlDeviceGetComputeRunningProcesses(self, h):
            raise RuntimeError("Not Supported")

    report = devices.detect(nvml=NoLists(1), cpu_interval=None, paddle=CUDA_BUILD)
    assert report.gpus[0].processes == [] and not report.errors
    assert "Processes on the GPUs: none" in devices.render_text(report)


def test_ixsmi_lists_the_processes_on_each_card(tmp_path):
    me = os.getpid()
    exe = tmp_path / "ixsmi"
    exe.write_text("#!/bin/sh\ncase \"$1\" in\n"
                   f"  --query-compute-apps=*) printf 'GPU-6a8c1f2e-0001, {me}, 2048\\nGPU-6a8c1f2e-0001, 77, [N/A]\\n' ;;\n"
                   f"  *) cat <<'EOF'\n{IXSMI_CSV}EOF\n ;;\nesac\n")
    exe.chmod(0o755)
    g0, g1 = IxsmiBackend(str(exe)).read()
    assert g0.processes == []
    assert [(p.pid, p.gpu_memory) for p in g1.processes] == [(me, 2 * GIB), (77, None)]
    assert g1.processes[0].user  # this test's own process: psutil knows its owner


def test_an_ixsmi_without_the_process_query_still_reports_the_cards(tmp_path):
    exe = tmp_path / "ixsmi"
    exe.write_text(f"#!/bin/sh\ncase \"$1\" in\n  --query-compute-apps=*) exit 6 ;;\n"
                   f"  *) cat <<'EOF'\n{IXSMI_CSV}EOF\n ;;\nesac\n")
    exe.chmod(0o755)
    gpus = IxsmiBackend(str(exe)).read()
    assert len(gpus) == 2 and all(g.processes == [] for g in gpus)
