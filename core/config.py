"""RunConfig: one fine-tuning run, with PaddleNLP run_glue.py's flag names.

Every field carries a one-line help text (``metadata["help"]``) that the CLI and the configure form
show. Validation returns every problem at once, each naming its field, so a form can mark them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.engines import ENGINES
from core.engines import problems as engine_problems


def _assets_dir() -> Path:
    """The bundled gpt2-tiny and SST-2 sample: the checkout's top-level assets/ (a source tree or an
    editable install), else the copy a wheel installs as core/assets/ (pyproject's package-dir)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "assets"
    return checkout if (checkout / "gpt2-tiny").is_dir() else here / "assets"


# The one place that says where the assets are: core.models and core.data import it.
ASSETS = _assets_dir()
SAMPLE_DATA_DIR = ASSETS / "sst2-sample"
TINY_MODEL = "gpt2-tiny"
REFERENCE_MODEL = "gpt2-medium-en"


STRATEGIES = ("no", "steps", "epoch")
# The field groups ("group" in each field's metadata), as the CLI's --help and the form title them.
GROUP_TITLES = {"model": "model & data", "optim": "optimisation", "schedule": "schedule & checkpoints",
                "devices": "devices", "compat": "PaddleNLP compatibility"}
TRUE_WORDS = ("1", "true", "yes", "y", "t", "on")
FALSE_WORDS = ("0", "false", "no", "n", "f", "off")


def parse_bool(raw: Any) -> bool:
    """A boolean the way PaddleNLP's argument parser reads one (strtobool): true/false, 1/0, yes/no, on/off."""
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in TRUE_WORDS:
        return True
    if s in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


class ConfigError(ValueError):
    """A user mistake in a config: ``problems`` is a list of (where, what) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{w}: {m}" for w, m in problems))

    def render(self) -> str:
        lines = ["Invalid run configuration:"]
        lines += [f"  {where}: {what}" for where, what in self.problems]
        return "\n".join(lines)


def _f(default: Any, help: str, group: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, "group": group, **kw})


@dataclass
class RunConfig:
    # --- model & data
    model_name_or_path: str = _f(
        REFERENCE_MODEL, "Model: gpt2-medium-en, gpt2-en, gpt2-tiny (bundled) or a local PaddleNLP model folder.", "model"
    )
    task_name: str = _f("sst-2", "GLUE task; only sst-2 is supported.", "model")
    data_dir: str = _f(
        "glue", "SST-2 folder with train.tsv and dev.tsv; 'sample' = the bundled sample, 'glue' = download.",
        "model",
    )
    max_seq_length: int = _f(128, "Longest input in tokens; longer sentences are truncated.", "model", min=8, max=1024)
    # --- optimisation
    per_device_train_batch_size: int = _f(32, "Training batch size on each device (rank).", "optim", min=1, max=4096)
    per_device_eval_batch_size: int = _f(32, "Evaluation batch size on each device.", "optim", min=1, max=4096)
    learning_rate: float = _f(2e-5, "Peak learning rate of AdamW.", "optim", min=0.0, max=1.0, exclusive_min=True)
    weight_decay: float = _f(0.0, "AdamW weight decay (not applied to biases and norms).", "optim", min=0.0, max=1.0)
    warmup_ratio: float = _f(0.0, "Fraction of steps for linear warm-up, then linear decay.", "optim", min=0.0, max=1.0)
    use_amp: bool = _f(False, "Mixed precision on GPU (bf16 where supported, else fp16).", "optim")
    seed: int = _f(42, "Random seed for initialisation and data order.", "optim", min=0, max=2**31 - 1)
    warmup_steps: int = _f(0, "Linear warm-up over this many steps; > 0 overrides warmup_ratio (as in PaddleNLP).",
                           "optim", min=0, max=10**9)
    gradient_accumulation_steps: int = _f(1, "Micro-batches summed into each optimiser step.", "optim",
                                          min=1, max=4096)
    max_grad_norm: float = _f(1.0, "Clip gradients to this global norm; 0 = no clipping.", "optim",
                              min=0.0, max=1e6)
    adam_epsilon: float = _f(1e-8, "AdamW epsilon.", "optim", min=0.0, max=1.0, exclusive_min=True)
    fp16: bool = _f(False, "Mixed precision in float16 on a GPU (PaddleNLP's --fp16); implies use_amp.", "optim")
    bf16: bool = _f(False, "Mixed precision in bfloat16 on a GPU (PaddleNLP's --bf16); implies use_amp.", "optim")
    fp16_opt_level: str = _f("O2", "AMP level, O1 or O2 (PaddleNLP's default is O1; the fast path uses O2).",
                             "optim")
    fast_path: str = _f("auto", "GPU fast path: auto (fused QKV; flash attention where allowed; use_amp's "
                                "mixed precision) or off (the recipe's numerics exactly: fp32 unless fp16/bf16 are "
                                "set).", "optim")
    flash_attention_drops_dropout: bool = _f(False, "Let the fast path run flash attention by setting dropout to 0 "
                                                    "(changes the recipe's numerics; off keeps dropout).", "optim")
    scale_loss: float = _f(32768.0, "Initial loss scale for float16 training (the old run_glue's --scale_loss).",
                           "optim", min=1.0, max=2.0**32)
    # --- schedule & checkpoints
    num_train_epochs: float = _f(3.0, "Epochs over the training set (ignored when max_steps > 0).", "schedule",
                                 min=0.0, max=1000.0, exclusive_min=True)
    max_steps: int = _f(-1, "Stop after this many optimiser steps; -1 = use num_train_epochs.", "schedule",
                        min=-1, max=10**9)
    logging_steps: int = _f(1, "Write a step event every N steps.", "schedule", min=1, max=10**6)
    save_steps: int = _f(500, "Save a checkpoint every N steps (and at the end).", "schedule", min=1, max=10**9)
    eval_steps: int = _f(500, "Evaluate on dev.tsv every N steps (and at the end).", "schedule", min=1, max=10**9)
    output_dir: str = _f("", "Where checkpoints go; empty = runs/<run-id>/checkpoints.", "schedule")
    stop_on_nan: bool = _f(True, "Stop (and save) when the loss becomes NaN or infinite.", "schedule")
    do_eval: bool = _f(True, "Evaluate on dev.tsv during training (per evaluation_strategy) and at the end.",
                       "schedule")
    evaluation_strategy: str = _f("steps", "When to evaluate: steps (every eval_steps), epoch, or no (only at the "
                                           "end). gpt2-tui's default is steps, so eval_steps acts alone.", "schedule")
    save_strategy: str = _f("steps", "When to save: steps (every save_steps), epoch, or no (only at the end).",
                            "schedule")
    save_total_limit: int = _f(0, "Keep the newest N checkpoints plus the best by dev accuracy; 0 = keep all.",
                               "schedule", min=0, max=10**6)
    overwrite_output_dir: bool = _f(False, "Allow an output_dir that already holds checkpoints.", "schedule")
    # --- devices
    device: str = _f("auto", "run_glue's --device: auto, cpu or gpu. 'devices' picks which ones.", "devices")
    devices: str = _f("auto", "auto, cpu:N (N CPU processes) or gpu:0,1,... (one rank per GPU).", "devices")
    nnodes: int = _f(1, "Number of nodes in the job.", "devices", min=1, max=1024)
    node_rank: int = _f(0, "This node's rank (0 = master).", "devices", min=0, max=1023)
    master: str = _f("", "HOST:PORT of the master node for multi-node jobs, or etcd://HOST:PORT (elastic).",
                     "devices")
    max_restart: int = _f(0, "Elastic: how often paddle's launcher restarts the job after a rank fails (it "
                             "continues from the latest checkpoint); needs master etcd://HOST:PORT.", "devices",
                          min=0, max=100)
    run_name: str = _f("", "A name to find the run by; free text.", "devices")
    engine: str = _f("gpt2-tui", "Who trains: gpt2-tui (ours) or paddlenlp (PaddleNLP's own Trainer, run_glue's "
                                 "setup: the reference to compare against).", "devices", choices=ENGINES)

    # --- PaddleNLP flags kept for compatibility (a run_glue command carries them)
    do_train: bool = _f(True, "Train (run_glue's --do_train); false is refused: `gpt2-tui eval` evaluates alone.",
                        "compat")
    model_type: str = _f("", "The old run_glue's --model_type: gpt or gpt2 (or empty); the model is "
                             "model_name_or_path.", "compat")
    dataloader_num_workers: int = _f(0, "Must be 0: the data is tokenised once and batched from memory.", "compat",
                                     min=0, max=64)
    logging_dir: str = _f("", "Must be empty: metrics go to runs.db (`gpt2-tui export` writes them out).", "compat")

    # ------------------------------------------------------------------ helpers
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def help_for(cls, name: str) -> str:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}[name]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from a mapping of raw values (strings from a form are coerced)."""
        problems: list[tuple[str, str]] = []
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                problems.append((f"{source}: {key}", f"unknown key{_nearest(key, list(known))}"))
                continue
            try:
                kwargs[key] = _coerce(known[key], raw)
            except ValueError as e:
                problems.append((key, str(e)))
        if problems:
            raise ConfigError(problems)
        cfg = cls(**kwargs)
        return cfg

    # ------------------------------------------------------------------ the argv codec
    def to_argv(self, names: Iterable[str] | None = None) -> list[str]:
        """Every field (or those named) as ``--name value``: the trainer's flags, decoded by add_arguments.

        Booleans are true/false. A value starting with '-' (a run name '-x') would read as a flag, so it
        goes as ``--name=value``; a negative number ('-1') is a value to argparse and stays apart.
        """
        out: list[str] = []
        for name in self.field_names() if names is None else names:
            v = getattr(self, name)
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            out += [f"--{name}={text}"] if text.startswith("-") and not _is_number(text) else [f"--{name}", text]
        return out

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, defaults: RunConfig | None = None,
                      grouped: bool = False, typed: bool = True) -> None:
        """One ``--name`` argument per field, typed like from_dict (bools by parse_bool), help from the field.

        A boolean flag alone means true (``--do_train``), as in PaddleNLP's parser. ``typed=False`` keeps
        the values as text, for a caller that coerces them with from_dict and so reports every bad value
        at once instead of argparse stopping at the first.

        ``defaults`` gives each argument its default; None leaves every default None, so the namespace
        tells which flags were given (from_namespace fills the rest from a base). ``grouped`` puts the
        flags in argument groups titled by GROUP_TITLES.
        """
        groups: dict[str, Any] = {}
        for f in fields(cls):
            target: Any = parser
            if grouped:
                g = f.metadata.get("group", "model")
                if g not in groups:
                    groups[g] = parser.add_argument_group(GROUP_TITLES.get(g, g))
                target = groups[g]
            shown = getattr(defaults, f.name) if defaults is not None else f.default
            is_bool = _type_name(f) == "bool"
            target.add_argument(f"--{f.name}", type=_converter(f) if typed else None,
                                default=None if defaults is None else shown,
                                nargs="?" if is_bool else None, const=("true" if not typed else True) if is_bool else None,
                                metavar="BOOL" if is_bool else f.name.upper(),
                                help=f"{f.metadata.get('help', '')} (default: {shown!r})")

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
        """The config an add_arguments namespace holds; a flag left None (not given) keeps ``base``'s value."""
        values = (base or cls()).to_dict()
        for name in cls.field_names():
            v = getattr(ns, name, None)
            if v is not None:
                values[name] = v
        return cls.from_dict(values, source="flags")

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> list[tuple[str, str]]:
        """Every problem with this config as (field, message); empty when valid."""
        problems: list[tuple[str, str]] = []
        for f in fields(self):
            v = getattr(self, f.name)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and (v < lo or (f.metadata.get("exclusive_min") and v == lo)):
                op = ">" if f.metadata.get("exclusive_min") else ">="
                problems.append((f.name, f"must be {op} {lo}, got {v}"))
            if hi is not None and v > hi:
                problems.append((f.name, f"must be <= {hi}, got {v}"))
        if self.task_name.lower() not in ("sst-2", "sst2"):
            problems.append(("task_name", f"only sst-2 is supported, got {self.task_name!r}"))
        if self.device not in ("auto", "cpu", "gpu"):
            problems.append(("device", f"must be auto, cpu or gpu, got {self.device!r}"))
        if not re.fullmatch(r"auto|cpu(:\d+)?|gpu(:\d+(,\d+)*)?", self.devices):
            problems.append(("devices", f"must be auto, cpu:N or gpu:0,1,..., got {self.devices!r}"))
        elif self.devices.startswith("cpu:") and int(self.devices[4:]) < 1:
            problems.append(("devices", "cpu:N needs N >= 1"))
        if self.nnodes > 1 or self.master:
            # A host never starts with '-' (it would read as a flag of the launcher).
            if not re.fullmatch(r"(etcd://)?[A-Za-z0-9_.][A-Za-z0-9_.\-]*:\d{1,5}", self.master or ""):
                problems.append(("master", f"multi-node jobs need master HOST:PORT, got {self.master!r}"))
            elif self.elastic and self.nnodes > 1:
                problems.append(("master", "an etcd:// master is supported for one node (elastic restarts); "
                                           "a multi-node job needs master HOST:PORT"))
        if self.max_restart > 0 and not self.elastic:
            problems.append(("max_restart", f"restarts need an elastic launcher: set master etcd://HOST:PORT (an "
                                            f"etcd server), got master {self.master!r}"))
        if self.node_rank >= self.nnodes and 0 <= self.node_rank <= 1023:
            problems.append(("node_rank", f"must be < nnodes ({self.nnodes}), got {self.node_rank}"))
        problems += self._refusals()
        problems += engine_problems(self)
        if not self.model_name_or_path.strip():
            problems.append(("model_name_or_path", "is empty"))
        if not self.data_dir.strip():
            problems.append(("data_dir", "is empty"))
        if "\x00" in self.run_name or "\n" in self.run_name:
            problems.append(("run_name", "must be one line of text"))
        return problems

    def _refusals(self) -> list[tuple[str, str]]:
        """PaddleNLP flags that gpt2-tui takes but cannot honour as given: one sentence each, why and instead."""
        out: list[tuple[str, str]] = []
        for name in ("evaluation_strategy", "save_strategy"):
            if getattr(self, name) not in STRATEGIES:
                out.append((name, f"must be one of {', '.join(STRATEGIES)}, got {getattr(self, name)!r}"))
        if not self.do_train:
            out.append(("do_train", "false would train nothing; to evaluate a checkpoint use `gpt2-tui eval "
                                    "--init_checkpoint_path DIR` instead"))
        if self.fp16 and self.bf16:
            out.append(("bf16", "fp16 and bf16 are both true; choose one"))
        if self.fast_path not in ("auto", "off"):
            out.append(("fast_path", f"must be auto or off, got {self.fast_path!r}"))
        if self.fp16_opt_level not in ("O1", "O2"):
            out.append(("fp16_opt_level", f"must be O1 or O2, got {self.fp16_opt_level!r}"))
        if self.model_type.lower() not in ("", "gpt", "gpt2"):
            out.append(("model_type", f"{self.model_type!r}: gpt2-tui fine-tunes GPT-2 only; use --model_type gpt "
                                      "or leave it out"))
        if self.dataloader_num_workers:
            out.append(("dataloader_num_workers", "gpt2-tui tokenises the data once and batches it from memory, "
                                                  "so there are no loader workers to start; leave it 0"))
        if self.logging_dir:
            out.append(("logging_dir", "gpt2-tui writes no VisualDL logs during training: metrics go to runs.db; "
                                       "leave it empty and use `gpt2-tui export RUN`"))
        return out

    def check(self) -> RunConfig:
        problems = self.validate()
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def amp_dtype(self) -> str | None:
        """The mixed-precision request: 'float16', 'bfloat16', 'auto' (use_amp: the fast path picks) or None."""
        if self.fp16:
            return "float16"
        if self.bf16:
            return "bfloat16"
        return "auto" if self.use_amp else None

    @property
    def elastic(self) -> bool:
        """An etcd master: paddle's launcher runs the job elastically (restarts after a rank fails)."""
        return self.master.startswith("etcd://")

    def device_spec(self) -> str:
        """The devices spec a launch uses: run_glue's --device picks the kind, --devices which ones.

        --device cpu with devices auto/gpu means 2 CPU processes; --device gpu with devices auto/cpu
        means every GPU, never the CPU: where no GPU is usable parse_devices refuses it with the reason.
        """
        if self.device == "cpu" and not self.devices.startswith("cpu"):
            return "cpu:2"
        if self.device == "gpu" and not self.devices.startswith("gpu"):
            return "gpu"
        return self.devices

    def resolved_data_dir(self) -> str:
        return str(SAMPLE_DATA_DIR) if self.data_dir == "sample" else self.data_dir


def _nearest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid keys: {', '.join(names)})"


def _is_number(text: str) -> bool:
    # argparse's own test for a negative number that is a value, not a flag ('-1' yes, '-inf' no).
    return re.fullmatch(r"-\d+|-\d*\.\d+", text) is not None


def _type_name(f: dataclasses.Field[Any]) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def _converter(f: dataclasses.Field[Any]) -> Any:
    """argparse's type= for a field: _coerce's rule and message ('expected an integer, got 'x'')."""
    def convert(raw: str) -> Any:
        try:
            return _coerce(f, raw)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = _type_name(f)
    return convert


def _coerce(f: dataclasses.Field[Any], raw: Any) -> Any:
    typ = _type_name(f)
    if typ == "bool":
        return parse_bool(raw)
    if typ == "int":
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if typ == "float":
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        try:
            v = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return v
    if not isinstance(raw, str):
        raise ValueError(f"expected text, got {raw!r}")
    return raw
