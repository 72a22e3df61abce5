"""What makes a GPU run fast, decided once and reported in the ``start`` event (pure: no paddle here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.config import RunConfig

AMP_NAMES = {"float16": "fp16", "bfloat16": "bf16"}


def amp_request(cfg: RunConfig) -> str | None:
    """The precision asked for: fp16/bf16 always; use_amp's 'auto' only with the fast path on."""
    if cfg.fast_path == "off" and cfg.amp_dtype == "auto":
        return None
    return cfg.amp_dtype


def recipe_changes(cfg: RunConfig, gpu: bool) -> list[str]:
    """What the fast path changes in the recipe's numerics on this hardware (shown before launch)."""
    if not gpu:
        return []
    out: list[str] = []
    amp = amp_request(cfg)
    if amp == "auto":
        out.append("mixed precision instead of fp32 (bf16 on Ampere or newer, fp16 before; use_amp)")
    elif amp:
        out.append(f"{AMP_NAMES[amp]} mixed precision instead of fp32 ({AMP_NAMES[amp]} is set)")
    if cfg.fast_path == "auto" and amp:
        out.append("dropout set to 0 for flash attention (flash_attention_drops_dropout)"
                   if cfg.flash_attention_drops_dropout else
                   "dropout kept, so no flash attention (flash_attention_drops_dropout true allows it)")
    return out


def choose_fast_path(device: str, amp_request: str | None, amp_level: str,
                     capability: Callable[[], tuple[int, int]], flash_importable: Callable[[], bool],
                     fast_path: str = "auto", drop_dropout: bool = False) -> dict[str, Any]:
    """``amp_request`` is amp_request(cfg): 'float16' or 'bfloat16' (forced), 'auto' (the device's
    best), None (fp32). ``amp_level`` is O1 or O2. ``capability`` and ``flash_importable`` are asked
    only on a CUDA GPU with mixed precision. ``fast_path`` off: no fused QKV, no flash attention;
    flash attention also needs ``drop_dropout`` (it runs with dropout 0 only)."""
    fp: dict[str, Any] = {"device": device, "amp_dtype": None, "amp_level": None, "master_grad": False,
                          "grad_scaler": False, "flash_attention": False, "fuse_attention_qkv": False}
    if device == "cpu":
        if amp_request:
            asked = AMP_NAMES.get(amp_request, "use_amp")
            fp["note"] = f"cpu: fp32 ({asked} was asked for; paddle's mixed precision runs on a GPU only)"
        else:
            fp["note"] = "cpu: fp32, no flash attention"
        return fp
    if not amp_request:
        fp["note"] = "use_amp is false: fp32"
        return fp
    forced = amp_request if amp_request in AMP_NAMES else None
    fp["amp_level"] = amp_level
    fp["master_grad"] = amp_level == "O2"
    if device != "gpu":
        # A PaddleCustomDevice accelerator (Iluvatar shows up as 'iluvatar_gpu'): fp16 O2 with loss
        # scaling works on every such card; flash attention is CUDA-only here. Untested on the hardware.
        fp.update(amp_dtype=forced or "float16", fuse_attention_qkv=fast_path != "off")
        fp["grad_scaler"] = fp["amp_dtype"] == "float16"
        fp["note"] = (f"custom device {device}: {AMP_NAMES[fp['amp_dtype']]} {amp_level}, no flash attention")
        return fp
    major, minor = capability()
    fp["compute_capability"] = f"{major}.{minor}"
    fp["amp_dtype"] = forced or ("bfloat16" if major >= 8 else "float16")
    fp["grad_scaler"] = fp["amp_dtype"] == "float16"
    fp["fuse_attention_qkv"] = fast_path != "off"
    # FA2/FA3 kernels need Ampere or newer, and dropout 0 (FA3 refuses more): only when the user allows it
    fp["flash_attention"] = fast_path != "off" and drop_dropout and major >= 8 and flash_importable()
    fp["dropout_zeroed"] = fp["flash_attention"]
    if fast_path != "off" and not drop_dropout and major >= 8:
        fp["note"] = "dropout kept, so no flash attention (flash_attention_drops_dropout true allows it)"
    if forced == "bfloat16" and major < 8:
        fp["note"] = f"bf16 was asked for on compute capability {major}.{minor}, which has no fast bf16 (fp16 has)"
    return fp
