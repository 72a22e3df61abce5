"""Scale-out: two "nodes" (two launchers) on one machine, one CPU rank each, over 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, gpt2_tui

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(cwd: Path, *args: str) -> subprocess.Popen:
    cwd.mkdir()
    return subprocess.Popen([str(BIN), "--db", "runs.db", "train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def show(cwd: Path, ref: str = "last") -> dict:
    return json.loads(gpt2_tui("--db", "runs.db", "show", ref, "--json", cwd=cwd, check=True).stdout)


def test_two_nodes_train_to_the_end_with_per_rank_health(tmp_path):
    master = f"127.0.0.1:{free_port()}"
    common = ["--devices", "cpu:1", "--max_steps", "12", "--eval_steps", "6", "--save_steps", "12"]
    a = start_node(tmp_path / "a", "--nnodes", "2", "--node_rank", "0", "--master", master, *common)
    b = start_node(tmp_path / "b", "--join", master, "--node_rank", "1", *common)
    out_a, err_a = a.communicate(timeout=300)
    out_b, err_b = b.communicate(timeout=60)
    assert a.returncode == 0, err_a[-2000:]
    assert b.returncode == 0, err_b[-2000:]
    assert "--join " + master in err_a  # the master printed the command for the other node
    rec = show(tmp_path / "a")
    assert rec["status"] == "finished" and rec["world_size"] == 2 and rec["nnodes"] == 2
    assert [s["step"] for s in rec["steps"]] == list(range(1, 13))
    assert sorted(h["rank"] for h in rec["ranks"]) == [0, 1]
    assert all(h["step_time"] and h["step_time"] > 0 for h in rec["ranks"])
    assert show(tmp_path / "b")["status"] == "finished"  # the worker node's record


def test_killing_the_second_nodes_launcher_fails_the_job_named(tmp_path):
    master = f"127.0.0.1:{free_port()}"
    common = ["--devices", "cpu:1", "--max_steps", "5000", "--eval_steps", "5000", "--save_steps", "5000"]
    a = start_node(tmp_path / "a", "--nnodes", "2", "--node_rank", "0", "--master", master, *common)
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    rid = gpt2_tui("--db", "runs.db", "train", "--join", master, "--node_rank", "1", "--detach", *common,
                   cwd=b_dir, check=True).stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        recs = list((tmp_path / "a").glob("runs/*/events.jsonl"))
        if recs and recs[0].read_text().count('"type":"step"') >= 3:
            break
        time.sleep(0.5)
    else:
        a.kill()
        raise AssertionError("the job never stepped")
    sup = json.loads(next((b_dir / "runs").glob("*/supervisor.json")).read_text())
    os.kill(sup["launcher_pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    a.communicate(timeout=120)
    took = time.monotonic() - killed_at
    rec = show(tmp_path / "a")
    assert rec["status"] == "failed" and a.returncode == 1
    assert "rank 1" in rec["error"], rec["error"]
    assert took < 90  # gloo's own timeout decides; about 30 s here
    # Node b's supervisor ends its orphaned rank (SIGTERM, up to ORPHAN_GRACE_S) and records it; node a
    # can fail first (its rank sees the connection reset at once), so wait for b's outcome, briefly.
    deadline = time.monotonic() + 30
    while (rb := show(b_dir, rid))["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rb["status"] == "failed"  # its orphaned rank was ended by its supervisor


# ---------------------------------------------------------------------------- a node with its own address
def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    """Node b's network namespace, joined to the host by a veth pair: 10.77.N.1 here, 10.77.N.2 there.

    Needs root and iproute2 (`ip netns`); skipped, saying why, where either is missing.
    """
    tag = f"gt{os.getpid() % 100000}"
    ns, here, there = f"{tag}ns", f"{tag}a", f"{tag}b"
    if os.geteuid() != 0 or _sh("ip", "netns", "add", ns).returncode != 0:
        pytest.skip("needs root and iproute2 to make a network namespace")
    subnet = f"10.77.{os.getpid() % 250}"
    try:
        for cmd in (["ip", "link", "add", here, "type", "veth", "peer", "name", there],
                    ["ip", "link", "set", there, "netns", ns],
                    ["ip", "addr", "add", f"{subnet}.1/24", "dev", here], ["ip", "link", "set", here, "up"],
                    ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{subnet}.2/24", "dev", there],
                    ["ip", "netns", "exec", ns, "ip", "link", "set", there, "up"],
                    ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]):
            r = _sh(*cmd)
            if r.returncode != 0:
                pytest.skip(f"could not set up the namespace ({' '.join(cmd)}: {r.stderr.strip()})")
        yield {"ns": ns, "host_ip": f"{subnet}.1", "host_if": here, "node_ip": f"{subnet}.2", "node_if": there}
    finally:
        _sh("ip", "link", "del", here)  # takes its peer with it
        _sh("ip", "netns", "del", ns)


def test_a_node_in_its_own_network_namespace_and_hostname_joins_over_its_own_address(tmp_path, netns):
    with socket.socket() as s:
        s.bind((netns["host_ip"], 0))
        master = f"{netns['host_ip']}:{s.getsockname()[1]}"
    common = ["--devices", "cpu:1", "--max_steps", "12", "--eval_steps", "12", "--save_steps", "12"]
    # Neither node is told its address: each takes the one on its route to the master (POD_IP for paddle's
    # launcher, GLOO_SOCKET_IFNAME for gloo). Left to the hostname, node b's gloo would dial 127.0.0.1.
    env = {k: v for k, v in os.environ.items() if k not in ("POD_IP", "GLOO_SOCKET_IFNAME")}
    (tmp_path / "a").mkdir()
    a = subprocess.Popen([str(BIN), "--db", "runs.db", "train", "--nnodes", "2", "--node_rank", "0", "--master",
                          master, *common], cwd=tmp_path / "a", env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    (tmp_path / "b").mkdir()
    b = subprocess.Popen(["ip", "netns", "exec", netns["ns"], "unshare", "--uts", "sh", "-c",
                          'hostname node-b && exec "$@"', "sh", str(BIN), "--db", "runs.db", "train",
                          "--join", master, "--node_rank", "1", *common],
                         cwd=tmp_path / "b", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err_a = a.communicate(timeout=300)
        _, err_b = b.communicate(timeout=60)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    assert a.returncode == 0, err_a[-2000:]
    assert b.returncode == 0, err_b[-2000:]
    assert f"node address {netns['host_ip']} (gloo on {netns['host_if']})" in err_a
    assert f"node address {netns['node_ip']} (gloo on {netns['node_if']})" in err_b
    rec = show(tmp_path / "a")
    assert rec["status"] == "finished" and rec["world_size"] == 2 and rec["nnodes"] == 2
    assert [s["step"] for s in rec["steps"]] == list(range(1, 13))
    hosts = {h["rank"]: h["host"] for h in rec["ranks"]}
    assert hosts[1] == "node-b" and hosts[0] == socket.gethostname()  # each rank reports where it ran
    # Rank 1's traffic really crossed the veth: its launcher and gloo endpoint are node b's address.
    env_log = (tmp_path / "b" / "runs").glob("*/logs/envlog.0")
    assert any(netns["node_ip"] in p.read_text() for p in env_log)
    assert show(tmp_path / "b")["status"] == "finished"
