"""Run settings as TOML files: read (errors name file:line:column) and written (each field with its help)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from core.config import ConfigError, RunConfig


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file; syntax errors become a ConfigError naming file, line and column.

    A ``[run]`` table is accepted as well as top-level keys.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([(str(p), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([(str(p), f"cannot read: {e}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        where = f"{p}:{m.group(1)}:{m.group(2)}" if m else str(p)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise ConfigError([(where, f"TOML syntax error: {msg}")]) from None
    if isinstance(data.get("run"), dict):
        data = data["run"]
    return data


def dump_toml(cfg: RunConfig) -> str:
    out = ["[run]"]
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out.append(f"# {f.metadata.get('help', '')}")
        out.append(f"{f.name} = {_toml_value(v)}")
    return "\n".join(out) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)
