"""Reading PaddleNLP's ``training_args.bin`` (a pickled ``TrainingArguments``) without running its code.

``pickle.load`` would import paddlenlp (~2.5 s, and paddle) and execute whatever the file names: an
imported folder is someone else's data. This unpickler builds no real object: every class the file names
becomes a stub that records its arguments and state, and the result is plain data (an enum member is
its value, an object its attribute dict).
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class _Stub:
    """Any class a pickle names (a subclass per name): records constructor arguments and state, runs nothing."""

    _qualname = ""
    _args: tuple[Any, ...] = ()
    _state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        obj = super().__new__(cls)
        obj._args = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self._state = state


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # NEWOBJ needs a real type: a fresh _Stub subclass named after what the file asked for.
        return type(name, (_Stub,), {"_qualname": f"{module}.{name}"})


def _plain(obj: Any, depth: int = 0) -> Any:
    if depth > 50:
        return None
    if isinstance(obj, _Stub):
        if isinstance(obj._state, dict):
            return {str(k): _plain(v, depth + 1) for k, v in obj._state.items()}
        if len(obj._args) == 1:
            return _plain(obj._args[0], depth + 1)  # an Enum member: its value
        return [_plain(a, depth + 1) for a in obj._args] or None
    if isinstance(obj, type) and issubclass(obj, _Stub):
        return obj._qualname
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def load_plain(data: bytes) -> Any:
    """The pickled object as plain data (dicts, lists, scalars). Raises ValueError on a broken pickle."""
    try:
        return _plain(_Unpickler(io.BytesIO(data)).load())
    except Exception as e:  # any malformed pickle: its opcodes decide what fails
        raise ValueError(f"not a readable pickle ({type(e).__name__}: {e})") from None
