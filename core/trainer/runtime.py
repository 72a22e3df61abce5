"""Where the trainer runs: the device, the library versions, and the collectives between ranks."""

from __future__ import annotations

import contextlib
import inspect
import os
import platform
import time
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist
import psutil


def versions() -> dict[str, str]:
    import paddlenlp

    return {"python": platform.python_version(), "paddle": paddle.__version__, "paddlenlp": paddlenlp.__version__}


# paddle's CPU (gloo) init_parallel_env starts a KV server process on rank 0 that checks its stop flag
# every 3 s, and rank 0 waits for it to stop: 3.1-3.3 s of every 2-rank CPU launch went there (phases in
# workerlog.N), while the rendezvous itself takes ~0.1 s. The same server, checking every 50 ms (and its
# HTTP thread polling for shutdown every 50 ms rather than socketserver's 0.5 s).
KV_SERVER_POLL_S = 0.05


def _start_kv_server(port: int, http_server_d: Any, size: dict[str, int]) -> None:
    """paddle.distributed.parallel._start_kv_server (3.3.1) with KV_SERVER_POLL_S instead of 3 s."""
    import threading

    from paddle.distributed.fleet.utils.http_server import KVServer

    http_server = KVServer(int(port), size=size)
    # KVServer.start(), with a shorter shutdown poll
    http_server.listen_thread = threading.Thread(
        target=lambda: http_server.http_server.serve_forever(poll_interval=KV_SERVER_POLL_S))
    http_server.listen_thread.start()
    while http_server_d.get("running", False) or not http_server.should_stop():
        time.sleep(KV_SERVER_POLL_S)
    http_server.stop()


def init_parallel_env() -> None:
    """dist.init_parallel_env, with rank 0's KV server stopping within 50 ms instead of 3 s.

    Only when paddle's function is the one we replace (same parameters); otherwise paddle's own."""
    from paddle.distributed import parallel

    from core.paddlenlp_lean import plain_requested

    if plain_requested():  # the "before" arm of bench/train_startup.py
        dist.init_parallel_env()
        return
    theirs: Any = getattr(parallel, "_start_kv_server", None)
    ours = theirs is not None and list(inspect.signature(theirs).parameters) == ["port", "http_server_d", "size"]
    if ours:
        setattr(parallel, "_start_kv_server", _start_kv_server)  # noqa: B010 (mypy: paddle's own type)
    try:
        dist.init_parallel_env()
    finally:
        if ours:
            setattr(parallel, "_start_kv_server", theirs)  # noqa: B010


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
