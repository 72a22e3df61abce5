"""Where the trainer runs: the device, the library versions, and the collectives between ranks."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist
import psutil


def versions() -> dict[str, str]:
    import paddlenlp

    return {"python": platform.python_version(), "paddle": paddle.__version__, "paddlenlp": paddlenlp.__version__}


# paddle.distributed.launch sets PADDLE_DISTRI_BACKEND=gloo, so init_parallel_env opens a TCP store on rank
# 0 (PADDLE_MASTER) that the other ranks connect to. A rank that gets there before rank 0 has opened it
# logs "Retry to connect to ... while the server is not yet listening" and tries again 3 s later
# (paddle's tcp_utils.cc): 3 s of the launch, in about half of the 2-rank CPU launches measured here
# (whichever rank finishes importing first). So the other ranks first wait, polling every 20 ms, until the
# port listens, when rank 0 is on this machine (/proc/net/tcp: nothing connects, nothing is sent).
STORE_POLL_S = 0.02
STORE_WAIT_S = 120.0  # then paddle's own connect (and its own timeout) as before


def master_endpoint(env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """Where rank 0's TCP store listens, as init_parallel_env finds it (MASTER_ADDR/PORT, PADDLE_MASTER,
    the first trainer endpoint)."""
    env = os.environ if env is None else env
    if env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        ep = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    else:
        ep = env.get("PADDLE_MASTER") or env.get("PADDLE_TRAINER_ENDPOINTS", "").split(",")[0]
    host, _, port = ep.strip().rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def is_local_host(host: str) -> bool:
    if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0") or host.startswith("127."):
        return True
    with contextlib.suppress(Exception):
        return any(a.address.split("%")[0] == host for addrs in psutil.net_if_addrs().values() for a in addrs)
    return False


def listening_ports(tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[int]:
    """TCP ports in the LISTEN state on this machine (Linux); empty when /proc cannot say."""
    ports: set[int] = set()
    for table in tables:
        try:
            with open(table) as fh:
                next(fh, None)  # header
                for line in fh:
                    f = line.split()
                    if len(f) > 3 and f[3] == "0A":  # st 0A = LISTEN
                        ports.add(int(f[1].rpartition(":")[2], 16))
        except (OSError, ValueError):
            continue
    return ports


def wait_for_store(rank: int, timeout: float = STORE_WAIT_S, poll: float = STORE_POLL_S,
                   env: Mapping[str, str] | None = None) -> float:
    """Ranks other than 0: wait until rank 0's TCP store listens (when it is on this machine); the wait in s."""
    ep = master_endpoint(env)
    if rank == 0 or ep is None or not is_local_host(ep[0]) or not os.path.exists("/proc/net/tcp"):
        return 0.0
    t0 = time.monotonic()
    while ep[1] not in listening_ports() and time.monotonic() - t0 < timeout:
        time.sleep(poll)
    return time.monotonic() - t0


def init_parallel_env(rank: int) -> None:
    """dist.init_parallel_env, without paddle's 3 s retry when this rank is early (wait_for_store)."""
    from core.paddlenlp_lean import plain_requested

    if not plain_requested():  # GPT2_TUI_PLAIN_IMPORTS=1: the "before" arm of bench/train_startup.py
        wait_for_store(rank)
    dist.init_parallel_env()


def pick_device(cfg_device: str = "auto", devices: str = "auto") -> str:
    """'gpu' (CUDA), a custom device type such as 'iluvatar_gpu' (PaddleCustomDevice), or 'cpu'.

    An accelerator is used when this paddle build has one and nothing asked for the CPU.
    """
    if cfg_device == "cpu" or devices.startswith("cpu"):
        return "cpu"
    with contextlib.suppress(Exception):  # a broken driver is a CPU run, not a crash
        if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return "gpu"
    with contextlib.suppress(Exception):
        custom = paddle.device.get_all_custom_device_type() or []
        if custom and paddle.device.get_available_custom_device():
            return str(custom[0])
    if cfg_device == "gpu":
        raise RuntimeError("--device gpu was asked for, but this paddle build sees no CUDA or custom GPU")
    return "cpu"


def set_device(kind: str) -> None:
    """This process's device: the one the launcher selected for this rank (FLAGS_selected_*)."""
    if kind == "cpu":
        paddle.set_device("cpu")
    else:
        paddle.set_device(f"{kind}:{dist.ParallelEnv().device_id}")


def device_label(kind: str, local_rank: int) -> str:
    if kind == "cpu":
        return f"cpu:{local_rank}"
    dev_id = dist.ParallelEnv().device_id
    if kind == "gpu":
        with contextlib.suppress(Exception):
            return f"gpu:{dev_id} {paddle.device.cuda.get_device_name(dev_id)}"
    return f"{kind}:{dev_id}"


def local_rank(rank: int) -> int:
    """This process's rank on its node, as paddle's launcher sets it."""
    return int(os.environ.get("PADDLE_LOCAL_RANK", os.environ.get("PADDLE_RANK_IN_NODE", rank)))


def gpu_capability() -> tuple[int, int]:
    major, minor = paddle.device.cuda.get_device_capability()
    return int(major), int(minor)


def flash_attention_importable() -> bool:
    try:
        from paddle.nn.functional.flash_attention import flash_attention  # noqa: F401
    except ImportError:
        return False
    return True


class Collectives:
    """What the ranks say to each other; every call is a no-op with a single process."""

    def __init__(self, world: int):
        self.world = world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = []
        dist.all_gather_object(out, obj)
        return out

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = paddle.to_tensor(np.asarray(values, dtype=np.float64))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [float(x) for x in t.numpy()]

    def all_gather_rows(self, row: list[float]) -> np.ndarray:
        if self.world == 1:
            return np.asarray([row], dtype=np.float64)
        t = paddle.to_tensor(np.asarray(row, dtype=np.float64))
        parts: list[Any] = []
        dist.all_gather(parts, t)
        return np.stack([p.numpy() for p in parts])


class Probe:
    """This rank's memory and utilisation, for heartbeats and the ranks table."""

    def __init__(self) -> None:
        self.device = "cpu"
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)  # start the CPU-time window for the first `util`
        self._nvml: Any = None

    def attach(self, device: str) -> None:
        self.device = device
        self._nvml = _nvml_handle(device)

    def mem_bytes(self) -> int:
        if self.device == "gpu":
            with contextlib.suppress(Exception):
                return int(paddle.device.cuda.memory_reserved())
        elif self.device != "cpu":
            with contextlib.suppress(Exception):
                return int(paddle.device.memory_reserved())
        return int(self.proc.memory_info().rss)

    def util(self) -> float:
        """GPU utilisation % (NVML) on a GPU; on a CPU the process's CPU % (100 = one core busy)."""
        if self.device != "cpu" and self._nvml is not None:
            with contextlib.suppress(Exception):
                import pynvml

                return float(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)
        return float(self.proc.cpu_percent(None))


def _nvml_handle(device: str) -> Any:
    if device == "cpu":
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        dev_id = dist.ParallelEnv().device_id
        ids = [s for s in visible.split(",") if s.strip()]
        index = int(ids[dev_id]) if dev_id < len(ids) and ids[dev_id].strip().isdigit() else dev_id
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:
        return None
