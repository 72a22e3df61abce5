"""A pasted PaddleNLP command line → RunConfig values, and what could not be mapped.

Users arrive with commands such as ::

    CUDA_VISIBLE_DEVICES=0,1 python3 -m paddle.distributed.launch --gpus "0,1" run_glue.py \\
        --model_name_or_path gpt2-medium-en --task_name SST-2 --do_train true ...

``parse_command`` reads one (shlex rules, backslash-newline continuations, ``--flag value`` and
``--flag=value``), maps every flag that has a RunConfig field (or an old spelling of one, ``FLAG_ALIASES``)
and the launcher's device flags, and returns the rest as text for the user to see. Values stay strings:
RunConfig.from_dict coerces and validates them, so a pasted ``--learning_rate abc`` is reported like a
typed one. Used by ``gpt2-tui train --from_command`` and the configure screen's paste box.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from core.config import RunConfig

# Older run_glue.py spellings (PaddleNLP's examples before TrainingArguments) → our field.
FLAG_ALIASES = {"batch_size": "per_device_train_batch_size", "warmup_proportion": "warmup_ratio"}
_BOOL_FIELDS = {f for f in RunConfig.field_names() if isinstance(getattr(RunConfig(), f), bool)}
# paddle.distributed.launch's flags: the ones that choose devices or nodes are mapped, the others are ours
# to set (we pick the log folder, the job id ...) and are listed as not mapped.
_LAUNCH_VALUE_FLAGS = {"gpus", "devices", "nproc_per_node", "nnodes", "master", "rank", "log_dir", "job_id",
                       "ips", "run_mode", "log_level", "max_restart", "elastic_level", "elastic_timeout",
                       "host", "legacy", "log_overwrite", "training_script"}
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Parsed:
    """RunConfig values (strings, by field name), and each pasted item we did not map, as the user wrote it."""

    values: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    script: str = ""


def field_for_flag(name: str) -> str | None:
    """The RunConfig field a run_glue / TrainingArguments flag name sets, or None."""
    name = name.replace("-", "_")
    if name in FLAG_ALIASES:
        return FLAG_ALIASES[name]
    return name if name in RunConfig.field_names() else None


def _split(text: str) -> list[str]:
    text = re.sub(r"\\\r?\n", " ", text.strip())  # shell line continuations
    try:
        return shlex.split(text, comments=True)
    except ValueError as e:  # an unclosed quote
        raise ValueError(f"cannot read the command: {e}") from None


def _flags(tokens: list[str]) -> list[tuple[str, str | None, str]]:
    """(name, value or None, the text as pasted) for each --flag; a bare flag has value None."""
    out: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("-") or tok in ("-", "--"):
            out.append(("", None, tok))  # a stray word: reported as is
            i += 1
            continue
        name, eq, value = tok.lstrip("-").partition("=")
        if eq:
            out.append((name, value, tok))
            i += 1
        elif i + 1 < len(tokens) and not _is_flag(tokens[i + 1]):
            out.append((name, tokens[i + 1], f"{tok} {shlex.quote(tokens[i + 1])}"))
            i += 2
        else:
            out.append((name, None, tok))
            i += 1
    return out


def _is_flag(tok: str) -> bool:
    # '-1', '-0.5' and '-1e-5' are values, '--x' and '-x' flags.
    return tok.startswith("-") and re.fullmatch(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", tok) is None


def parse_command(text: str) -> Parsed:
    """Read a whole run_glue (or launcher + run_glue) command. Raises ValueError on unreadable quoting."""
    out = Parsed()
    tokens = _split(text)
    env: dict[str, str] = {}
    while tokens and _ENV.match(tokens[0]):
        var, _, assigned = tokens.pop(0).partition("=")
        env[var] = assigned
    # The interpreter and `-m paddle.distributed.launch` with its own flags, up to the script.
    launch: list[tuple[str, str | None, str]] = []
    if tokens and re.fullmatch(r"(\S*/)?python[0-9.]*", tokens[0]):
        tokens.pop(0)
        # the interpreter's own options (-u, -B, -X dev, -W ignore) before -m or the script
        while tokens and tokens[0].startswith("-") and tokens[0] != "-m":
            takes = tokens[0] in ("-X", "-W") and len(tokens) > 1
            del tokens[:2 if takes else 1]
    if tokens and tokens[0] in ("fleetrun",):
        tokens.pop(0)
        tokens[:0] = ["-m", "paddle.distributed.launch"]
    if len(tokens) >= 2 and tokens[0] == "-m" and tokens[1] in ("paddle.distributed.launch",
                                                                 "paddle.distributed.fleet.launch"):
        tokens = tokens[2:]
        i = 0
        while i < len(tokens) and tokens[i].startswith("-"):
            name = tokens[i].lstrip("-").partition("=")[0]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else "-"
            # Nearly every launcher flag takes a value; the script (*.py) ends the launcher's part.
            takes_value = "=" not in tokens[i] and not nxt.startswith("-") and (
                name in _LAUNCH_VALUE_FLAGS or not nxt.endswith(".py"))
            i += 2 if takes_value else 1
        launch = _flags(tokens[:i])
        tokens = tokens[i:]
    if tokens and not tokens[0].startswith("-"):
        out.script = tokens.pop(0)  # run_glue.py or whatever its copy is called: not ours to run
    _map_devices(out, env, launch)
    for name, value, raw in _flags(tokens):
        target = field_for_flag(name) if name else None
        if target is None:
            out.unmapped.append(raw)
        elif value is None and target not in _BOOL_FIELDS:
            out.unmapped.append(f"{raw} (no value)")
        else:
            out.values[target] = "true" if value is None else value
    return out


def _map_devices(out: Parsed, env: dict[str, str], launch: list[tuple[str, str | None, str]]) -> None:
    visible = [d for d in env.pop("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    chosen: list[str] | None = None
    for name, value, raw in launch:
        if name in ("gpus", "devices") and value:
            ids = [d.strip() for d in value.split(",") if d.strip()]
            # With CUDA_VISIBLE_DEVICES set, the launcher's ids index the visible list.
            try:
                chosen = [visible[int(d)] for d in ids] if visible else ids
            except (IndexError, ValueError):
                out.unmapped.append(f"{raw} (with CUDA_VISIBLE_DEVICES={','.join(visible)})")
        elif name == "nproc_per_node" and value and value.isdigit():
            out.values["devices"] = f"cpu:{value}"
        elif name in ("nnodes", "master") and value:
            out.values[name] = value
        elif name == "rank" and value:
            out.values["node_rank"] = value
        else:
            out.unmapped.append(raw)
    if chosen is None and visible:
        chosen = visible
    if chosen:
        out.values["devices"] = "gpu:" + ",".join(chosen)
    out.unmapped[:0] = [f"{k}={shlex.quote(v)}" for k, v in env.items()]


def describe_unmapped(parsed: Parsed) -> str:
    """One line for the user: what of the pasted command was left out, or '' when everything mapped."""
    if not parsed.unmapped:
        return ""
    return "not mapped (ignored): " + "  ".join(parsed.unmapped)
