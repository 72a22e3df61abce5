"""Loaded by Python at start-up in a command run by ``gpt2-tui watch`` (this folder is first on its PYTHONPATH).

It imports nothing heavy: a meta-path finder waits for ``paddlenlp.trainer.trainer`` to be imported by the
script, then wraps ``Trainer.__init__`` so every Trainer gets core.watch_callback's callback, which writes
our events to ``$GPT2_TUI_WATCH_EVENTS``. A script that never imports the Trainer is untouched. Another
sitecustomize further down sys.path (a distribution's own) still runs: this one shadows it, so it loads it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

TARGET = "paddlenlp.trainer.trainer"


def _patch(module):  # type: ignore[no-untyped-def]
    trainer = getattr(module, "Trainer", None)
    if trainer is None or getattr(trainer, "_gpt2_tui_watched", False):
        return
    original = trainer.__init__

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        try:
            from core.watch_callback import EventsCallback

            self.add_callback(EventsCallback(os.environ["GPT2_TUI_WATCH_EVENTS"]))
        except Exception as e:  # the script must train even if the hook cannot: its log lines remain
            print(f"gpt2-tui watch: could not add the events callback ({type(e).__name__}: {e})", file=sys.stderr)

    trainer.__init__ = __init__
    trainer._gpt2_tui_watched = True


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            run(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _chain() -> None:
    """Run the sitecustomize this one shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    mine = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        spec = importlib.util.find_spec("sitecustomize")
        if spec is not None and spec.loader is not None:
            other = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(other)
    except Exception:
        pass
    finally:
        sys.path[:] = saved
        if mine is not None:
            sys.modules["sitecustomize"] = mine


if os.environ.get("GPT2_TUI_WATCH_EVENTS"):
    sys.meta_path.insert(0, _Finder())
_chain()
