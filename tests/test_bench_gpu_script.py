"""bench/gpu_throughput.py is prepared for a GPU we do not have: it must fail cleanly on a CPU and its
code path must run end to end (--dry-run: tiny model on the CPU), so the few minutes of a lent GPU are
not spent on a crash."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = ROOT / "bench" / "gpu_throughput.py"


def test_without_a_gpu_it_says_so_and_exits_2(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "no CUDA GPU" in r.stdout + r.stderr
    assert json.loads(out.read_text())["status"] == "no_gpu"


@pytest.mark.slow
def test_dry_run_measures_every_configuration(tmp_path):
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True, text=True,
                   timeout=300, cwd=tmp_path, check=True)
    res = json.loads(out.read_text())
    assert res["status"] == "done"
    assert set(res["best_samples_per_s"]) == {"fp32", "fast-random", "fast"}
    assert all(v > 0 for v in res["best_samples_per_s"].values())
    assert res["speedup_vs_fp32"]["fp32"] == pytest.approx(1.0)
