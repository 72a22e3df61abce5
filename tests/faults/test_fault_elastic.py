"""Elastic restart: a run under paddle's launcher with an etcd master (`--master etcd://HOST:PORT
--max_restart N`) loses a rank to SIGKILL; the launcher restarts the pod and the trainer continues from
the run's latest checkpoint, in the same run. Needs an etcd server (Debian: etcd-server) and the etcd3
client (`pip install 'gpt2-tui[elastic]'`); skipped, saying which is missing, without them.
"""

import importlib.util
import shutil
import socket
import subprocess
import time

import pytest
from faultkit import alive, cli, events, kill_all, rank_process, show, start_detached, step_events, wait_for

from tui.alerts import AlertMonitor
from tui.runstate import LOSS, RunState

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def etcd(tmp_path):
    exe = shutil.which("etcd")
    if exe is None:
        pytest.skip("needs an etcd server on PATH (Debian: apt-get install etcd-server)")
    if importlib.util.find_spec("etcd3") is None:
        pytest.skip("needs the etcd3 client (pip install 'gpt2-tui[elastic]')")
    client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    log = open(tmp_path / "etcd.log", "wb")
    proc = subprocess.Popen([exe, "--data-dir", str(tmp_path / "etcd-data"), "--listen-client-urls", client,
                             "--advertise-client-urls", client, "--listen-peer-urls", peer,
                             "--initial-advertise-peer-urls", peer, "--initial-cluster", f"default={peer}"],
                            stdout=log, stderr=subprocess.STDOUT)
    host, port = client.removeprefix("http://").split(":")

    def up() -> bool:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(up, 20, "etcd to listen")
        yield f"etcd://{host}:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_a_killed_rank_is_restarted_and_the_run_continues_from_its_checkpoint(tmp_path, etcd):
    rid, run_dir = start_detached(tmp_path, "--master", etcd, "--max_restart", "2", "--max_steps", "600",
                                  "--save_steps", "50", "--eval_steps", "100000")
    try:
        wait_for(lambda: (run_dir / "checkpoints" / "checkpoint-50").is_dir() and len(step_events(run_dir)) > 60,
                 180, "the first checkpoint and a few more steps")
        victim = rank_process(run_dir, 1)
        victim.kill()
        rec = wait_for(lambda: (r := show(tmp_path, rid))["status"] != "running" and r, 300, "the run to end")
        assert rec["status"] == "finished", rec["error"]
        evs = events(run_dir)
        starts = [e for e in evs if e["type"] == "start"]
        assert [s.get("restart") for s in starts] == [0, 1]
        resumed = starts[1]["resumed_from_step"]
        assert resumed >= 50 and resumed % 50 == 0  # a checkpoint the first incarnation saved
        logs = [e.get("text", "") for e in evs if e["type"] == "log"]
        assert f"restart 1 of 2 by the elastic launcher: continuing from checkpoint-{resumed}" in logs
        assert [e["status"] for e in evs if e["type"] == "end"] == ["finished"]  # one end: the run's
        # Every step is in the store once (redone steps replaced), up to the last; the final checkpoint too.
        assert [s["step"] for s in rec["steps"]] == list(range(1, 601))
        assert rec["checkpoints"][-1]["step"] == 600
        assert rec["started_at"] == starts[0]["t"]  # the run started at its first incarnation
        # The dashboard's alert monitor, replaying the event file, raises the restart once.
        restarts = [a for a in AlertMonitor().observe(evs, now=time.time()) if a.kind == "restart"]
        assert len(restarts) == 1 and f"continuing from step {resumed}" in restarts[0].message
        # ... and its live charts, fed the same events, hold every step once: the redone ones replaced.
        state = RunState()
        delta = state.apply(evs)
        assert delta.truncate_after == resumed and state.restarts == 1
        assert list(delta[LOSS][0]) == list(range(1, 601))
        wait_for(lambda: not alive(run_dir), 60, "the launcher and ranks to exit after the end event")
    finally:
        kill_all(run_dir)


def test_an_etcd_master_nobody_answers_is_refused_before_anything_starts(tmp_path):
    if importlib.util.find_spec("etcd3") is None:
        pytest.skip("needs the etcd3 client (pip install 'gpt2-tui[elastic]')")
    port = _free_port()
    r = cli(tmp_path, "train", "--master", f"etcd://127.0.0.1:{port}", "--max_restart", "1")
    assert r.returncode == 2, r.stderr
    assert f"master etcd://127.0.0.1:{port}: no etcd server answers there" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "runs").glob("*"))
