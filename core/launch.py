"""Start and stop a run's processes: argv lists only, never a shell (core.control is the run API).

A run lives in ``<runs_root>/<run-id>/``: config.json, command.json, events.jsonl (rank 0), logs/
(paddle's workerlog.N), launcher.log, supervisor.json, exit.json (written by core.supervise when the
launcher exits) and stop (a graceful stop request the trainer polls every step).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from core.checkpoint_files import is_complete
from core.config import RunConfig
from core.probes import processes_of, wait_for_exit
from core.probes import read_exit as read_exit  # their old home, for callers not yet on core.probes
from core.probes import supervisor_alive as supervisor_alive
from core.procs import signal_all
from core.reconcile import reconcile
from core.records import RunRow
from core.store import Store

PKG_DIR = Path(__file__).resolve().parent
TRAIN_SCRIPT = PKG_DIR / "train.py"
# --engine paddlenlp: PaddleNLP's own Trainer, launched the same way with the same flags (core/engines.py).
PADDLENLP_SCRIPT = PKG_DIR / "engine_paddlenlp.py"
EVAL_SCRIPT = PKG_DIR / "evaluate.py"
# The trainer saves a checkpoint on a stop request; GPT-2 Medium takes ~10 s to save on a slow disk.
STOP_GRACE_S = 60.0
# What the command preview shows for the run id that launch picks when the run starts.
RUN_ID_PLACEHOLDER = "RUN_ID"


class LaunchError(RuntimeError):
    """The run could not be started; the message says why."""


@dataclass
class Prepared:
    """Everything decided before a run starts: checked inputs and the exact command."""

    run_id: str
    run_dir: Path
    cfg: RunConfig
    argv: list[str]
    env: dict[str, str]
    model_dir: str
    data_dir: str
    output_dir: str
    devices: str
    nprocs: int
    resume_from: str | None = None
    parent_run: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more columns for the runs row


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def runs_root_for(db_path: str | os.PathLike[str]) -> Path:
    """Run folders sit next to the database: ``runs.db`` → ``runs/``."""
    return Path(db_path).resolve().parent / "runs"


def launch_argv(cfg: RunConfig, run_dir: Path, model_dir: str, data_dir: str, output_dir: str,
                kind: str, ids: list[int], nprocs: int, resume_from: str | None = None,
                python: str = sys.executable) -> list[str]:
    """The exact command: paddle's launcher around the engine's worker script, every flag spelled out."""
    argv = [python, "-m", "paddle.distributed.launch", "--log_dir", str(run_dir / "logs")]
    if kind == "gpu":
        argv += ["--devices", ",".join(str(i) for i in ids)]
    else:
        argv += ["--nproc_per_node", str(nprocs)]
    if cfg.elastic:
        # Elastic: the launcher registers with etcd and restarts the pod when a rank fails (level 1).
        argv += ["--master", cfg.master, "--nnodes", "1", "--job_id", f"gpt2tui-{run_dir.name}",
                 "--max_restart", str(cfg.max_restart), "--elastic_level", "1"]
    elif cfg.nnodes > 1:
        argv += ["--nnodes", str(cfg.nnodes), "--master", cfg.master, "--rank", str(cfg.node_rank)]
    argv += [str(PADDLENLP_SCRIPT if cfg.engine == "paddlenlp" else TRAIN_SCRIPT), "--run_dir", str(run_dir), "--model_dir", model_dir]
    # The trainer decodes these with RunConfig.add_arguments: one codec, both ways.
    argv += cfg.replace(data_dir=data_dir, output_dir=output_dir).to_argv()
    if resume_from:
        argv += ["--resume_from", resume_from]
    return argv


def launch_env(kind: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    if kind == "cpu":
        # A set CUDA_VISIBLE_DEVICES kills CPU workers ("global group is not initialized"): docs/ARCHITECTURE.md.
        env.pop("CUDA_VISIBLE_DEVICES", None)
        # Two ranks on two cores: one math thread each, or they fight over the cores.
        env.setdefault("OMP_NUM_THREADS", "1")
    # The launcher and the workers import core/ from the checkout or the installed package alike.
    root = str(PKG_DIR.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def make_run_dir(root: Path, run_id: str) -> Path:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir = (root / run_id).resolve()
    if run_dir.parent != root.resolve():
        raise LaunchError(f"run id {run_id!r} would leave {root}")
    run_dir.mkdir(mode=0o700)
    (run_dir / "logs").mkdir(mode=0o700)
    return run_dir


def spawn(store: Store, prep: Prepared, kind: str = "train", extra: dict[str, Any] | None = None) -> RunRow:
    """Record the run, then start the supervisor in a new session; returns the stored run."""
    cfg = prep.cfg
    (prep.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    (prep.run_dir / "command.json").write_text(json.dumps({"argv": prep.argv}, indent=2))
    # The row exists before any process does: no process runs that the store does not know about.
    row = {
        "id": prep.run_id, "kind": kind, "name": cfg.run_name or prep.run_id, "status": "running",
        "created_at": time.time(), "config": cfg.to_dict(), "command": prep.argv, "run_dir": str(prep.run_dir),
        "output_dir": prep.output_dir, "model": cfg.model_name_or_path, "devices": prep.devices,
        "world_size": prep.nprocs * cfg.nnodes, "nnodes": cfg.nnodes, "host": os.uname().nodename,
        "resumed_from": prep.resume_from, "parent_run": prep.parent_run, **prep.extra, **(extra or {}),
    }
    try:
        store.create_run(row)
    except BaseException:
        # A store that fails now (damaged further in than its header) must not leave a run folder behind.
        shutil.rmtree(prep.run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            prep.run_dir.parent.rmdir()  # only when empty
        raise
    log = open(prep.run_dir / "launcher.log", "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.supervise", str(prep.run_dir), "--", *prep.argv],
            env=prep.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=str(prep.run_dir),
        )
    except OSError as e:
        store.finish_run(prep.run_id, "failed", error=f"could not start: {e}")
        raise LaunchError(f"could not start the launcher: {e}") from None
    finally:
        log.close()
    store.update_run(prep.run_id, pgid=proc.pid, launcher_pid=proc.pid)
    run = store.get_run(prep.run_id)
    assert run is not None
    return run


# ---------------------------------------------------------------------------- stopping a run
def request_stop(run: Mapping[str, Any]) -> None:
    """Ask the trainer to save and stop at its next step (it polls this file)."""
    run_dir = Path(run["run_dir"])
    (run_dir / "stop").write_text(str(time.time()))


def stop_run(store: Store, run: Mapping[str, Any], grace: float = STOP_GRACE_S) -> str:
    """Graceful first: the stop file, then SIGTERM to the whole group, then SIGKILL. Returns the status."""
    if run["status"] != "running":
        return run["status"]
    request_stop(run)
    if not wait_for_exit(run, grace):
        # SIGTERM reaches the launcher, which ends its ranks (~1 s); the supervisor stays to record it.
        signal_all(processes_of(run), signal.SIGTERM)
        if not wait_for_exit(run, 10):
            signal_all(processes_of(run), signal.SIGKILL)
            wait_for_exit(run, 5)
    run = reconcile(store, run["id"], stopping=True)
    return run["status"]


# ---------------------------------------------------------------------------- preparing a run
def prepare_run(cfg: RunConfig, runs_root: Path, resume_from: str | None = None, parent_run: str | None = None,
                progress: Any = None, report: Any = None) -> Prepared:
    """Check everything a run needs, then make its folder and command. Raises a user error on bad input.

    Order matters: all checks come before the run folder exists, so a mistake leaves nothing behind.
    """
    from core import data, devices, engines, models

    cfg.check()
    if resume_from and (why := engines.resume_problem(cfg.engine, resume_from)):
        raise LaunchError(why)
    if cfg.elastic:
        check_etcd(cfg.master)
    elif cfg.nnodes > 1 and cfg.node_rank == 0:
        check_master_port(cfg.master)
    report = report if report is not None else devices.detect(cpu_interval=None)
    sel = devices.parse_devices(cfg.device_spec(), report)
    data_dir = str(data.resolve_data_dir(cfg.data_dir, progress=progress))
    data.validate_dir(data_dir)
    # Absolute paths: the ranks start in the run folder, not where the user typed the command.
    model_dir = str(Path(models.resolve_model(cfg.model_name_or_path, progress=progress)).resolve())
    if cfg.output_dir:
        check_output_dir(cfg.output_dir)
        check_output_unused(cfg, resume_from)
    # Rank 0 writes the checkpoints: refuse a run whose checkpoints cannot fit. (Tests of a disk that fills
    # up during the run skip this estimate with GPT2_TUI_TEST_SKIP_DISK_PLAN=1.)
    if cfg.node_rank == 0 and os.environ.get("GPT2_TUI_TEST_SKIP_DISK_PLAN") != "1":
        from core import disk_plan, eval_cost

        out = absolute_path(cfg.output_dir) if cfg.output_dir else runs_root
        _, short = disk_plan.check(cfg, out, eval_cost.rows_of(data_dir)[0], sel.nprocs * cfg.nnodes)
        if short:
            raise LaunchError(f"not enough disk for this run: {short}")
    env = launch_env(sel.kind)
    if cfg.elastic:
        # etcd3's generated protobuf code predates protobuf 4: only the pure-Python implementation loads it.
        env.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    elif cfg.nnodes > 1:
        env.update(node_network_env(cfg.master, env))
    run_id = new_run_id()
    run_dir = make_run_dir(runs_root, run_id)
    output_dir = output_dir_for(cfg, run_dir)
    argv = run_command(cfg, run_dir, model_dir, data_dir, sel, resume_from=resume_from)
    devices_text = f"{sel.kind}:{','.join(map(str, sel.ids))}" if sel.kind == "gpu" else f"cpu:{sel.nprocs}"
    return Prepared(run_id=run_id, run_dir=run_dir, cfg=cfg, argv=argv, env=env,
                    model_dir=model_dir, data_dir=data_dir, output_dir=output_dir, devices=devices_text,
                    nprocs=sel.nprocs, resume_from=resume_from, parent_run=parent_run)


def run_command(cfg: RunConfig, run_dir: Path, model_dir: str, data_dir: str, sel: Any,
                resume_from: str | None = None, python: str = sys.executable) -> list[str]:
    """The command of a run in ``run_dir`` on the devices ``sel`` (a DeviceSelection): what prepare_run
    starts and preview_argv shows. Paths are absolute: the ranks start in the run folder."""
    return launch_argv(cfg, run_dir, str(Path(model_dir).resolve()), str(Path(data_dir).resolve()),
                       output_dir_for(cfg, run_dir), sel.kind, sel.ids, sel.nprocs, resume_from=resume_from,
                       python=python)


def preview_argv(cfg: RunConfig, runs_root: Path, sel: Any, python: str = sys.executable) -> list[str]:
    """The command prepare_run will start, before anything exists: nothing is downloaded or created, the
    model and data are named where they will be, and RUN_ID stands for the run id launch picks."""
    from core import data, models

    name = cfg.model_name_or_path.strip()
    if name == models.TINY:
        model_dir = models.ASSETS / models.TINY
    elif name in models.known_models():
        model_dir = models.cache_dir(name)
    else:
        model_dir = Path(name).expanduser()
    data_dir = data.glue_sst2_dir() if cfg.data_dir == "glue" else data.resolve_data_dir(cfg.data_dir)
    return run_command(cfg, runs_root.resolve() / RUN_ID_PLACEHOLDER, str(model_dir), str(data_dir), sel,
                       python=python)


def output_dir_for(cfg: RunConfig, run_dir: Path) -> str:
    """Where the run's checkpoints go: output_dir made absolute, or runs/<run-id>/checkpoints."""
    return str(absolute_path(cfg.output_dir)) if cfg.output_dir else str(run_dir / "checkpoints")


def absolute_path(path: str) -> Path:
    """A user's path made absolute (~ expanded) without resolving symlinks: the folder they named."""
    return Path(os.path.abspath(Path(path).expanduser()))


def check_output_unused(cfg: RunConfig, resume_from: str | None) -> None:
    """PaddleNLP's rule: an output_dir that already holds checkpoints is not written over unless
    overwrite_output_dir says so (a resume continues in its own folder)."""
    from core import checkpoint_files

    if cfg.overwrite_output_dir or resume_from:
        return
    found = checkpoint_files.list_checkpoints(absolute_path(cfg.output_dir))
    if found:
        names = ", ".join(p.name for _, p in found[-3:])
        raise LaunchError(f"output_dir {absolute_path(cfg.output_dir)} already holds checkpoints ({names}): pass "
                          "--overwrite_output_dir true to write into it, continue a run with `gpt2-tui train "
                          "--resume RUN`, or choose another --output_dir")


def check_output_dir(output_dir: str) -> Path:
    """The absolute output folder, if the ranks will be able to create and write it; else a LaunchError.

    Checked before launch so a bad path fails in a second with exit 2, not after the model loaded. Tests run
    as root, where permission bits do not stop writes; a path under a regular file or a read-only mount
    does fail, and so does this check.
    """
    p = absolute_path(output_dir)
    fix = "Pass --output_dir a writable folder, or leave it empty for runs/<run-id>/checkpoints"
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise LaunchError(f"output_dir {p}: {probe} is a file, not a folder. {fix}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LaunchError(f"output_dir {p}: {probe} is not writable. {fix}")
    return p


def check_master_port(master: str) -> None:
    """The master node binds HOST:PORT for the rendezvous; a port in use fails late and obscurely."""
    import socket

    host, _, port = master.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host if host not in ("", "localhost") else "127.0.0.1", int(port)))
    except OSError as e:
        raise LaunchError(f"master {master}: cannot listen there ({e.strerror or e}); this node is rank 0, so "
                          f"HOST must be one of its addresses and PORT free — pick another --master port") from None


def check_etcd(master: str) -> None:
    """An elastic launch needs the etcd3 client where the launcher runs and an etcd server that answers."""
    import importlib.util
    import socket

    if importlib.util.find_spec("etcd3") is None:
        raise LaunchError(f"master {master}: elastic restarts need the etcd3 client in this environment "
                          "(pip install 'gpt2-tui[elastic]'); or use no master for a one-node run") from None
    host, _, port = master.removeprefix("etcd://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as e:
        raise LaunchError(f"master {master}: no etcd server answers there ({e.strerror or e}); start one "
                          f"(etcd --listen-client-urls http://{host}:{port} --advertise-client-urls "
                          f"http://{host}:{port}) or fix the address") from None


def node_address(master: str) -> tuple[str, str | None]:
    """This node's address towards the master, and the interface that holds it: (ip, interface or None).

    The kernel's route to the master decides (a UDP socket's connect sends nothing). A LaunchError when
    the master's host does not resolve or no route leads there.
    """
    import socket

    host, _, port = master.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host or "127.0.0.1", int(port)))
            ip = s.getsockname()[0]
    except (OSError, ValueError) as e:
        raise LaunchError(f"master {master}: cannot find a route to it from this node ({getattr(e, 'strerror', None) or e});"
                          " check the address, or the network between the nodes") from None
    iface = next((name for name, addrs in psutil.net_if_addrs().items()
                  for a in addrs if a.family == socket.AF_INET and a.address == ip), None)
    return ip, iface


def node_network_env(master: str, env: dict[str, str]) -> dict[str, str]:
    """POD_IP (paddle's launcher) and GLOO_SOCKET_IFNAME (gloo) for a multi-node job, from the route to
    the master, where the user has not set them: left to themselves, both take the address the hostname
    resolves to, often a loopback (127.0.1.1) or the wrong interface, and the other nodes cannot connect
    back (docs/SCALING.md)."""
    if "POD_IP" in env and "GLOO_SOCKET_IFNAME" in env:
        return {}
    ip, iface = node_address(master)
    out = {} if "POD_IP" in env else {"POD_IP": ip}
    if iface and "GLOO_SOCKET_IFNAME" not in env:
        out["GLOO_SOCKET_IFNAME"] = iface
    return out


def worker_commands(cfg: RunConfig, program: str = "gpt2-tui") -> list[list[str]]:
    """The command to start on each other node of a multi-node job (argv lists; shlex.join to show)."""
    from core.presets import PRESETS

    if cfg.nnodes <= 1:
        return []
    skip = ("nnodes", "node_rank", "master", "run_name")

    def diffs(base: RunConfig) -> list[str]:
        return [n for n in RunConfig.field_names() if n not in skip and getattr(cfg, n) != getattr(base, n)]

    # Name the preset the config is closest to, then only what differs: a short, exact command.
    preset = min(PRESETS, key=lambda p: len(diffs(PRESETS[p]())))
    out = []
    for r in range(1, cfg.nnodes):
        argv = [program, "train", "--join", cfg.master, "--nnodes", str(cfg.nnodes), "--node_rank", str(r),
                "--preset", preset]
        out.append(argv + cfg.to_argv(diffs(PRESETS[preset]())))
    return out


def resume_point(store: Store, ref_run: Mapping[str, Any]) -> tuple[RunRow, RunConfig, str]:
    """What `train --resume RUN` continues from: (the old run reconciled, its config, latest checkpoint)."""
    parent = reconcile(store, ref_run["id"])  # a dead 'running' run becomes lost first
    if parent["status"] == "running":
        raise LaunchError(f"run {parent['id']} is still running; stop it first (gpt2-tui stop {parent['id']})")
    # The newest checkpoint still on disk (a folder deleted by hand is skipped, not a crash in the ranks).
    ckpts = [c for c in store.checkpoints(parent["id"]) if is_complete(Path(c["path"]))]
    if not ckpts:
        raise LaunchError(f"run {parent['id']} has no checkpoint (left on disk) to resume from")
    cfg = RunConfig.from_dict(parent["config"], source=f"run {parent['id']}")
    return parent, cfg, ckpts[-1]["path"]
