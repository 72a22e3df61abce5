"""The fast path's safety net, as pure rules (no paddle): which error is which, and the next level down.

Before the first step a trial forward and backward on the longest micro-batch runs under the chosen
path. A kernel or dtype error steps down one level (flash attention off, then fused QKV off, then
fp32); an out-of-memory error halves the micro-batch (more accumulation, the same global batch). The
trial repeats until it passes or nothing is left to step down (then the error stands). An error after
the trial fails the run as before.
"""

from __future__ import annotations

from typing import Any

OOM_MARKS = ("out of memory", "resourceexhausted", "resource exhausted", "cudaerrormemoryallocation")


def error_kind(exc: BaseException) -> str:
    """'oom' or 'kernel' (any other error: an unsupported kernel or dtype, a bad shape for a fused op)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, MemoryError) or any(m in text for m in OOM_MARKS):
        return "oom"
    return "kernel"


def step_down(fast: dict[str, Any], accumulation: int, rows_per_step: int, kind: str,
              ) -> tuple[dict[str, Any], int, str] | None:
    """(fast path, accumulation, what changed) one level down, or None when nothing is left to drop.

    ``rows_per_step``: this rank's rows in one optimiser step (per-device batch x configured accumulation)."""
    if kind == "oom":
        if accumulation * 2 > rows_per_step:
            return None
        micro = -(-rows_per_step // (accumulation * 2))
        return fast, accumulation * 2, f"out of memory: micro-batch down to {micro} rows, accumulating " \
                                       f"{accumulation * 2} per step (the same global batch)"
    new = dict(fast)
    if fast.get("flash_attention"):
        new.update(flash_attention=False, dropout_zeroed=False)
        what = "flash attention off (dropout as configured)"
    elif fast.get("fuse_attention_qkv"):
        new["fuse_attention_qkv"] = False
        what = "fused QKV off"
    elif fast.get("amp_dtype"):
        new.update(amp_dtype=None, amp_level=None, master_grad=False, grad_scaler=False)
        what = "mixed precision off: fp32"
    else:
        return None
    return new, accumulation, what


def level(fast: dict[str, Any]) -> int:
    """How far down a fast path is (0 = all on); ranks agree on the deepest level any of them needed."""
    return 3 - sum(bool(fast.get(k)) for k in ("flash_attention", "fuse_attention_qkv", "amp_dtype"))


def worth_trying(fast: dict[str, Any], device: str) -> bool:
    """The trial runs where something can fail: an accelerator, or any fast-path feature switched on."""
    return device != "cpu" or level(fast) < 3
