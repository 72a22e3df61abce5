"""tui.preflight and tui.command: the checklist and the previewed command, without Textual."""

from __future__ import annotations

import shlex
from collections import namedtuple

import pytest

from core.config import RunConfig
from core.devices import DeviceError
from core.presets import offline_preset, reference_preset
from tui import preflight
from tui.command import RUN_ID_PLACEHOLDER, preview_argv, preview_text
from tui.preflight import FAIL, OK, WARN, blocking, run_preflight, summary_line
from tui.testing import fake_report

Usage = namedtuple("Usage", "total used free")


@pytest.fixture(autouse=True)
def _empty_paddlenlp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))  # nothing downloaded


def by_name(checks):
    return {c.name: c for c in checks}


def idle_cpu_report():
    report = fake_report(1, gpus=0)
    report.cpu.load_per_core = [5.0] * len(report.cpu.load_per_core)
    return report


def test_offline_preset_passes_on_cpu(tmp_path):
    checks = by_name(run_preflight(offline_preset(), tmp_path / "runs", idle_cpu_report()))
    assert checks["data"].status == OK and "train" in checks["data"].detail
    assert checks["model"].status == OK and "locally" in checks["model"].detail
    assert checks["disk"].status == OK
    assert checks["devices"].status == OK and "2 CPU process" in checks["devices"].detail
    busy = fake_report(1, gpus=0)
    busy.cpu.load_per_core = [95.0] * 8
    assert preflight.check_devices(offline_preset(), busy).status == WARN


def test_reference_preset_warns_about_downloads_and_busy_gpus(tmp_path):
    checks = by_name(run_preflight(reference_preset(), tmp_path / "runs", fake_report(1, gpus=2)))
    assert checks["data"].status == WARN and "not downloaded" in checks["data"].detail
    assert checks["model"].status == WARN and "1.4 GB" in checks["model"].detail
    assert checks["devices"].status == WARN and "in use" in checks["devices"].detail  # the fake GPUs are busy
    assert not blocking(list(checks.values()))
    assert summary_line(list(checks.values())).startswith("ready, 3 warning")


def test_bad_data_folder_fails_with_the_reason(tmp_path):
    bad = tmp_path / "sst2"
    bad.mkdir()
    (bad / "train.tsv").write_text("sentence\tlabel\nfine\t1\n")
    cfg = offline_preset().replace(data_dir=str(bad))
    c = preflight.check_data(cfg)
    assert c.status == FAIL and "dev.tsv" in c.detail


def test_unknown_model_fails_and_names_the_known_ones(tmp_path):
    c = preflight.check_model(offline_preset().replace(model_name_or_path=str(tmp_path / "nope")))
    assert c.status == FAIL and "does not exist" in c.detail


def test_disk_space_for_the_whole_runs_checkpoints(tmp_path, monkeypatch):
    """The reference recipe saves 13 checkpoints of ~4.3 GB (weights + two AdamW moments): 55 GB unless
    save_total_limit prunes them; the preflight fails short of that and says by how much."""
    from core import disk_plan

    cfg = reference_preset()
    plan = disk_plan.plan(cfg, 67_349)
    each = plan.weights_bytes + plan.optimizer_bytes
    assert 4.0e9 < each < 4.6e9 and plan.saves == 13 and plan.need_bytes == 13 * each
    monkeypatch.setattr(disk_plan.shutil, "disk_usage", lambda p: Usage(10**13, 0, 20 * 10**9))
    c = preflight.check_disk(cfg, tmp_path)
    assert c.status == FAIL and "13 checkpoint(s)" in c.detail and "short" in c.detail
    assert "--save_total_limit" in c.detail  # the way out that fits
    limited = cfg.replace(save_total_limit=2)
    assert preflight.check_disk(limited, tmp_path).status in (OK, WARN)
    monkeypatch.setattr(disk_plan.shutil, "disk_usage", lambda p: Usage(10**13, 0, 10**12))
    assert preflight.check_disk(cfg, tmp_path).status == OK


def test_devices_that_do_not_exist_fail(tmp_path):
    report = fake_report(1, gpus=2)
    c = preflight.check_devices(offline_preset().replace(devices="gpu:5"), report)
    assert c.status == FAIL and "GPU 5 does not exist" in c.detail
    c = preflight.check_devices(offline_preset().replace(devices="gpu:0"), fake_report(1, gpus=0))
    assert c.status == FAIL and "none was found" in c.detail
    assert preflight.check_devices(offline_preset(), None).status == WARN


def test_a_crashing_check_is_a_failed_check(tmp_path, monkeypatch):
    def boom(cfg):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(preflight, "check_model", boom)
    checks = by_name(run_preflight(offline_preset(), tmp_path, fake_report(1, gpus=0)))
    assert checks["model"].status == FAIL and "disk on fire" in checks["model"].detail


def test_preview_is_launch_argv_shell_quoted(tmp_path):
    cfg = offline_preset().replace(run_name="it's mine")
    argv = preview_argv(cfg, tmp_path / "runs", fake_report(1, gpus=0))
    assert argv[1:3] == ["-m", "paddle.distributed.launch"]
    assert argv[argv.index("--nproc_per_node") + 1] == "2"
    assert argv[argv.index("--run_dir") + 1] == str((tmp_path / "runs").resolve() / RUN_ID_PLACEHOLDER)
    text = preview_text(cfg, tmp_path / "runs", fake_report(1, gpus=0))
    assert shlex.split(text) == argv  # pasteable: quoting round-trips, the name with a quote included
    gpu = preview_argv(reference_preset().replace(devices="gpu:1"), tmp_path, fake_report(1, gpus=2))
    assert gpu[gpu.index("--devices") + 1] == "1"


def test_preview_refuses_devices_that_cannot_be_had(tmp_path):
    with pytest.raises(DeviceError):
        preview_argv(RunConfig(devices="gpu:0"), tmp_path, fake_report(1, gpus=0))


def test_multinode_preview_adds_the_command_for_each_other_node(tmp_path):
    cfg = offline_preset().replace(nnodes=3, master="10.0.0.1:6170", devices="cpu:1", max_steps=40)
    text = preview_text(cfg, tmp_path / "runs", fake_report(1, gpus=0))
    master, rest = text.split("\n\n# then on each other node:\n")
    assert shlex.split(master) == preview_argv(cfg, tmp_path / "runs", fake_report(1, gpus=0))
    workers = [shlex.split(line) for line in rest.splitlines()]
    assert [w[w.index("--node_rank") + 1] for w in workers] == ["1", "2"]
    for w in workers:
        assert w[1:4] == ["train", "--join", "10.0.0.1:6170"]
        assert w[w.index("--max_steps") + 1] == "40" and w[w.index("--devices") + 1] == "cpu:1"
    # a worker node's own form shows just its command
    assert "other node" not in preview_text(cfg.replace(node_rank=1), tmp_path / "runs", fake_report(1, gpus=0))


def test_a_busy_gpu_names_the_processes_holding_it():
    from core.devices import GpuProcess

    report = fake_report(1, gpus=2)
    report.gpus[0].processes = [GpuProcess(4242, "alice", "python", 30 * 1024**3, "compute"),
                                GpuProcess(777, None, None, None, "graphics")]
    c = preflight.check_devices(reference_preset().replace(devices="gpu:0"), report)
    assert c.status == WARN
    assert "GPU 0 in use" in c.detail and "by pid 4242 (alice, python, 30.0 GiB), pid 777 (?, ?, ?)" in c.detail


def test_gpus_this_paddle_cannot_use_fail_a_gpu_run_and_warn_a_cpu_run():
    from core.paddle_build import PaddleBuild

    report = fake_report(1, gpus=2)
    report.paddle, report.driver_cuda = PaddleBuild(("paddlepaddle",), "3.3.1", None), "12.8"
    gpu = preflight.check_devices(reference_preset().replace(devices="gpu:0"), report)
    assert gpu.status == FAIL and "CPU build" in gpu.detail and "pip uninstall -y paddlepaddle" in gpu.detail
    cpu = preflight.check_devices(offline_preset(), report)
    assert cpu.status == WARN and "2 CPU process" in cpu.detail
    assert "paddlepaddle-gpu==3.3.1 -i https://www.paddlepaddle.org.cn/packages/stable/cu126/" in cpu.detail


def test_device_gpu_without_a_gpu_fails_the_preflight_never_runs_on_the_cpu():
    c = preflight.check_devices(offline_preset().replace(device="gpu"), idle_cpu_report())
    assert c.status == FAIL and "asks for a GPU but none was found" in c.detail


def test_the_recipe_check_of_paddlenlps_engine_names_its_numerics_not_our_fast_path():
    gpus = fake_report(1, gpus=2)
    ours = preflight.check_recipe(reference_preset(), gpus)
    assert ours.detail.startswith("fast path:")
    ref = preflight.check_recipe(reference_preset().replace(engine="paddlenlp"), gpus)
    assert ref.status == OK and "no fast path" in ref.detail and "use_amp" in ref.detail
    cpu = preflight.check_recipe(offline_preset().replace(engine="paddlenlp"), fake_report(1, gpus=0))
    assert cpu.detail.endswith("fp32")
