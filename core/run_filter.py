"""The runs filter: one line that picks rows of the runs table (the history's filter, ``runs --filter``).

    gpu baseline          free words: each must be in the id, name, model, devices, status, tags or note
    "higher lr"           a quoted phrase, spaces included
    tag:best              a run tagged best (any case)
    status:failed  model:medium  name:"my run"  engine:paddlenlp
    lr>1e-4  acc>=0.9  steps<100  bs=32  use_amp:true   numbers and booleans compare as such
    model_name_or_path:gpt2-medium-en                   any run setting (a RunConfig field) by its name
    -tag:broken  -cpu  -"old try"                       '-' keeps the rows a term does not match

Every term must match. ``key:value`` on text is "contains" (any case), ``key=value`` "is"; on numbers
both are "equals". A run without the value (a watched run has no learning rate) matches no comparison.
``parse`` raises ``FilterError`` (a ValueError) naming what is wrong; matching never raises.

Rows are the dicts of ``core.export.runs_table``: ``config`` may be a dict, JSON text, or the lazy
``core.export.LazyJson`` (decoded only when a term asks for a setting: decoding 10,000 configs costs ~0.2 s).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.config import RunConfig, parse_bool
from core.store.runs import tag_list
from core.store.schema import STATUSES

# The runs table's own columns, by the names a filter uses.
TEXT_COLUMNS = {"id": "id", "name": "name", "status": "status", "devices": "devices", "note": "note"}
NUMBER_COLUMNS = {"steps": "steps", "total_steps": "total_steps", "acc": "best_accuracy",
                  "accuracy": "best_accuracy", "best_accuracy": "best_accuracy", "loss": "final_loss",
                  "final_loss": "final_loss", "sps": "mean_samples_per_s", "samples_per_s": "mean_samples_per_s",
                  "mean_samples_per_s": "mean_samples_per_s", "duration": "duration_s", "duration_s": "duration_s"}
# Short names of run settings.
ALIASES = {"model": "model_name_or_path", "lr": "learning_rate", "bs": "per_device_train_batch_size",
           "seq": "max_seq_length", "epochs": "num_train_epochs"}
SPECIAL = ("tag", "tags", "engine")
DEFAULT_ENGINE = "gpt2-tui"  # a config written before the engine setting existed ran our trainer
# The keys an error message lists (every RunConfig field is known too, but 40 names make no message).
SHORT_KEYS = ("id", "name", "status", "model", "devices", "tag", "note", "engine", "steps", "acc", "loss", "sps",
              "duration", "lr", "bs", "seq", "epochs")
FREE_WORD_FIELDS = ("id", "name", "model", "devices", "status")
OPERATORS = (">=", "<=", "!=", ":", "=", ">", "<")
ORDERING = {">=", "<=", ">", "<"}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `cpu:2`, `gpu:0,1`, `iluvatar_gpu:0` are devices, not keys: an unknown key with a value of digits and
# commas is a free word, as before the filter had keys.
_DEVICE_VALUE = re.compile(r"[\d,]+")


class FilterError(ValueError):
    """A malformed filter; the message names the term and what is wrong with it."""


def _config_kinds() -> dict[str, str]:
    kinds = {}
    for f in dataclasses.fields(RunConfig):
        t = str(f.type)
        kinds[f.name] = "bool" if t == "bool" else "number" if t in ("int", "float") else "text"
    kinds.setdefault("engine", "text")
    return kinds


CONFIG_KINDS = _config_kinds()


# ---------------------------------------------------------------------------- terms
@dataclass(frozen=True)
class Term:
    """One term of a filter: ``negate`` flips it."""

    text: str  # as typed, for messages
    negate: bool

    def test(self, row: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def matches(self, row: Mapping[str, Any]) -> bool:
        return self.test(row) != self.negate


@dataclass(frozen=True)
class Words(Term):
    """A free word or a quoted phrase: contained in the row's text columns, tags or note (any case)."""

    needle: str

    def test(self, row: Mapping[str, Any]) -> bool:
        return self.needle in haystack(row)


@dataclass(frozen=True)
class Compare(Term):
    """``key OP value`` on one of the row's values (a column, a setting, the tags, the engine)."""

    key: str  # the canonical key: a column of the row, a RunConfig field, 'tag' or 'engine'
    source: str  # 'column', 'config', 'tag', 'engine', 'model'
    kind: str  # 'text', 'number', 'bool', 'status', 'tag'
    op: str
    value: Any

    def test(self, row: Mapping[str, Any]) -> bool:
        if self.kind == "tag":
            return (self.value in [t.lower() for t in tag_list(row.get("tags"))]) != (self.op == "!=")
        got = self._value(row)
        if got is None:
            return False
        if self.kind == "number":
            try:
                x = float(got)
            except (TypeError, ValueError):
                return False
            if math.isnan(x):
                return False
            return _compare_numbers(x, self.op, self.value)
        if self.kind == "bool":
            try:
                same = parse_bool(got) == self.value
            except ValueError:
                return False
            return same if self.op != "!=" else not same
        text = str(got).lower()
        if self.op == ":" and self.kind == "text":
            return self.value in text
        return (text == self.value) != (self.op == "!=")

    def _value(self, row: Mapping[str, Any]) -> Any:
        if self.source == "column":
            return row.get(self.key)
        cfg = config_of(row)
        if self.source == "engine":
            return cfg.get("engine") or DEFAULT_ENGINE
        if self.source == "model":
            return row.get("model") or cfg.get("model_name_or_path")
        return cfg.get(self.key)


def _compare_numbers(x: float, op: str, y: float) -> bool:
    if op in (":", "="):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0) or x == y
    if op == "!=":
        return not (math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0) or x == y)
    return {">": x > y, "<": x < y, ">=": x >= y, "<=": x <= y}[op]


@dataclass(frozen=True)
class RunFilter:
    """A parsed filter: ``matches(row)`` is True when every term matches (an empty filter matches all)."""

    terms: tuple[Term, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(t.matches(row) for t in self.terms)

    __call__ = matches

    def select(self, rows: Iterable[Any]) -> list[Any]:
        return [r for r in rows if self.matches(r)] if self.terms else list(rows)


# ---------------------------------------------------------------------------- row values
def config_of(row: Mapping[str, Any]) -> Mapping[str, Any]:
    cfg = row.get("config")
    if isinstance(cfg, str):
        try:
            cfg = json.loads(cfg)
        except ValueError:
            return {}
    return cfg if isinstance(cfg, Mapping) else {}


def haystack(row: Mapping[str, Any]) -> str:
    """What free words search: the row's text columns, its tags and its note, lower case."""
    parts = [str(row.get(k) or "") for k in FREE_WORD_FIELDS]
    parts += tag_list(row.get("tags"))
    parts.append(str(row.get("note") or ""))
    return " ".join(parts).lower()


# ---------------------------------------------------------------------------- parsing
def tokens(text: str) -> Iterator[tuple[str, str, list[bool]]]:
    """(as typed, the token without its quotes, which of its characters were quoted) for each token.

    Tokens are split on whitespace outside double quotes; an unclosed quote is an error."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        chars: list[str] = []
        quoted: list[bool] = []
        while i < n and not text[i].isspace():
            if text[i] == '"':
                end = text.find('"', i + 1)
                if end < 0:
                    raise FilterError(f"unclosed quote in {text[start:]!r} (column {i + 1}); close it with \"")
                chars += text[i + 1:end]
                quoted += [True] * (end - i - 1)
                i = end + 1
            else:
                chars.append(text[i])
                quoted.append(False)
                i += 1
        yield text[start:i], "".join(chars), quoted


def parse(text: str) -> RunFilter:
    """Parse a filter; raises ``FilterError`` with the term and what is wrong."""
    terms: list[Term] = []
    for raw, tok, quoted in tokens(text):
        negate = False
        if tok.startswith("-") and not quoted[0]:
            negate, tok, quoted = True, tok[1:], quoted[1:]
            if not tok:
                raise FilterError(f"'{raw}': nothing after '-' (write -word to leave out runs with it)")
        if not tok:
            if raw.strip('"'):
                raise FilterError(f"'{raw}': empty")
            continue  # "" matches everything: nothing to add
        term = _field_term(raw, tok, quoted, negate)
        terms.append(term or Words(raw, negate, tok.lower()))
    return RunFilter(tuple(terms))


def _field_term(raw: str, tok: str, quoted: list[bool], negate: bool) -> Term | None:
    """``key OP value`` when the token has an unquoted operator after a key; None for a free word."""
    m = _KEY.match(tok)
    if not m or m.end() == len(tok) or any(quoted[: m.end() + 1]):
        return None
    op = next((o for o in OPERATORS if tok.startswith(o, m.end())), None)
    if op is None:
        return None
    key, value = tok[: m.end()], tok[m.end() + len(op):]
    lkey = key.lower()
    known = resolve(lkey)
    if known is None:
        if op == ":" and _DEVICE_VALUE.fullmatch(value):
            return None  # cpu:2, gpu:0,1: a devices value, searched as a word
        raise FilterError(f"'{raw}': {unknown_key(key)}")
    source, canon, kind = known
    if not value:
        raise FilterError(f"'{raw}': no value after '{key}{op}' (e.g. {_example(lkey, kind)})")
    if op in ORDERING and kind != "number":
        raise FilterError(f"'{raw}': '{op}' compares numbers, and {key} is {'a ' + kind if kind != 'text' else 'text'};"
                          f" use {key}:{value}")
    parsed: Any
    if kind == "number":
        try:
            parsed = float(value)
        except ValueError:
            raise FilterError(f"'{raw}': {value!r} is not a number ({key} is compared as a number, "
                              f"e.g. {_example(lkey, kind)})") from None
        if math.isnan(parsed):
            raise FilterError(f"'{raw}': {value!r} is not a number")
    elif kind == "bool":
        try:
            parsed = parse_bool(value)
        except ValueError as e:
            raise FilterError(f"'{raw}': {key}: {e}") from None
    elif kind == "status":
        if value.lower() not in STATUSES:
            raise FilterError(f"'{raw}': unknown status {value!r} (one of {', '.join(STATUSES)})")
        parsed = value.lower()
    else:
        parsed = value.lower()
    return Compare(raw, negate, canon, source, kind, op, parsed)


def resolve(key: str) -> tuple[str, str, str] | None:
    """(source, canonical key, kind) of a filter key, or None when it is not one."""
    if key in ("tag", "tags"):
        return "tag", "tags", "tag"
    if key == "engine":
        return "engine", "engine", "text"
    if key == "status":
        return "column", "status", "status"
    if key == "model":
        return "model", "model", "text"
    if key in TEXT_COLUMNS:
        return "column", TEXT_COLUMNS[key], "text"
    if key in NUMBER_COLUMNS:
        return "column", NUMBER_COLUMNS[key], "number"
    name = ALIASES.get(key, key)
    if name in CONFIG_KINDS:
        return "config", name, CONFIG_KINDS[name]
    return None


def known_keys() -> list[str]:
    return sorted({*TEXT_COLUMNS, *NUMBER_COLUMNS, *ALIASES, *SPECIAL, "status", *CONFIG_KINDS})


def unknown_key(key: str) -> str:
    near = difflib.get_close_matches(key.lower(), known_keys(), n=1, cutoff=0.75)
    hint = f"; did you mean {near[0]}?" if near else ""
    return (f"unknown key {key!r}{hint} (known: {', '.join(SHORT_KEYS)}, or any run setting such as "
            f"learning_rate or per_device_train_batch_size)")


def _example(key: str, kind: str) -> str:
    return {"number": f"{key}>=1e-4" if key in ("lr", "learning_rate") else f"{key}>10",
            "bool": f"{key}:true", "status": "status:finished", "tag": "tag:baseline"}.get(kind, f"{key}:gpt2")


def select(rows: Iterable[Any], text: str) -> list[Any]:
    """The rows ``text`` matches (raises FilterError for a malformed filter)."""
    return parse(text).select(rows)
