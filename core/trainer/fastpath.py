"""What makes a GPU run fast, decided once and reported in the ``start`` event (pure: no paddle here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def choose_fast_path(device: str, use_amp: bool, capability: Callable[[], tuple[int, int]],
                     flash_importable: Callable[[], bool]) -> dict[str, Any]:
    """``capability`` and ``flash_importable`` are asked only on a CUDA GPU."""
    fp: dict[str, Any] = {"device": device, "amp_dtype": None, "amp_level": None, "master_grad": False,
                          "grad_scaler": False, "flash_attention": False, "fuse_attention_qkv": False}
    if device == "cpu":
        fp["note"] = "cpu: fp32, no flash attention"
        return fp
    if not use_amp:
        fp["note"] = "use_amp is false: fp32"
        return fp
    if device != "gpu":
        # A PaddleCustomDevice accelerator (Iluvatar shows up as 'iluvatar_gpu'): fp16 O2 with loss
        # scaling works on every such card; flash attention is CUDA-only here. Untested on the hardware.
        fp.update(amp_dtype="float16", amp_level="O2", master_grad=True, grad_scaler=True,
                  fuse_attention_qkv=True, note=f"custom device {device}: fp16 O2, no flash attention")
        return fp
    major, minor = capability()
    fp["compute_capability"] = f"{major}.{minor}"
    fp["amp_dtype"] = "bfloat16" if major >= 8 else "float16"
    fp["amp_level"] = "O2"
    fp["master_grad"] = True
    fp["grad_scaler"] = fp["amp_dtype"] == "float16"
    fp["fuse_attention_qkv"] = True
    fp["flash_attention"] = major >= 8 and flash_importable()  # FA2/FA3 kernels need Ampere or newer
    fp["dropout_zeroed"] = fp["flash_attention"]
    return fp
