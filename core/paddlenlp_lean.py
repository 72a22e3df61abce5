"""Import PaddleNLP's GPT-2 classes without running ``paddlenlp/__init__``'s eager imports.

``import paddlenlp`` (2.8.1) imports every subpackage: taskflow, dataaug, datasets (HF datasets, pyarrow),
metrics (seqeval, scikit-learn, scipy.stats), server, ..., and ``paddlenlp.transformers`` imports ~100 model
families. The workers use a tokenizer, a model class and a learning-rate schedule: measured here, importing
them through the package costs ~3.1 s CPU after paddle, through this module ~0.8 s (docs/BENCHMARKS.md §3).

``install()`` puts a *lazy* ``paddlenlp`` package into ``sys.modules``, built from PaddleNLP's own
``__init__.py``:

- every top-level statement that is not a relative import runs as written (``__version__``, the
  ``datasets``-imported-first warning, ``import paddle``, ``paddle.disable_signal_handler()``);
- a name the ``__init__`` imports explicitly (``from .x import Name``, ``from . import sub``) is imported
  from its submodule on first use (PEP 562 ``__getattr__``);
- any other name (what a ``from .x import *`` would have brought) runs the real ``__init__`` in full, once,
  and is then looked up: ``import *`` behaves as with a plain ``import paddlenlp``, at its price.

It then imports ``paddlenlp.data``, the first of the package's own eager imports, which imports the whole
of ``paddlenlp.transformers``. That order is not optional: ``transformers`` imported first fails on a
circular import (data_collator wants ``transformers.BertTokenizer``), and making ``transformers`` lazy as
well gains nothing, because ``from_pretrained`` imports ``paddlenlp.ops``, which needs all of it.

PaddleNLP's subpackages import each other in circles that only resolve in ``__init__``'s order (``peft`` →
``prompt`` → ``trainer`` → ``peft``): importing ``paddlenlp.trainer`` first fails. So only the subpackages
the GPT-2 path needs (LEAN_SUBPACKAGES, the ones ``from_pretrained``/``save_pretrained`` import) load on
their own; the first import of any other (``import paddlenlp.trainer``, ``paddlenlp.taskflow``) runs the
full ``__init__`` first, in its order (a meta-path finder).

So ``import paddlenlp.trainer`` and every attribute keep working; only what is used gets imported. The
classes are PaddleNLP's own (``GPTTokenizer``, ``GPTForSequenceClassification``, ...). When ``paddlenlp``
is already imported, ``install()`` changes nothing.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from typing import Any

# paddlenlp/__init__ imports `data` first (it pulls in `transformers`): the same order here.
FIRST_IMPORT = "paddlenlp.data"
# What loading, saving and running GPTForSequenceClassification / GPTForCausalLM and GPTTokenizer
# imports (measured: the first-level subpackages in sys.modules after from_pretrained + save_pretrained).
LEAN_SUBPACKAGES = frozenset({"data", "generation", "layers", "ops", "quantization", "transformers", "utils"})

# Set to 1: the workers import paddlenlp the package's own way and use paddle's init_parallel_env as it is
# (bench/train_startup.py's "before" arm; an escape hatch should a PaddleNLP release break the lean path).
PLAIN_ENV = "GPT2_TUI_PLAIN_IMPORTS"

# Imported by a plain `import paddlenlp` and never by the workers: tests check they stay out.
HEAVY_MODULES = ("paddlenlp.taskflow", "paddlenlp.dataaug", "paddlenlp.datasets", "paddlenlp.metrics",
                 "paddlenlp.server", "seqeval", "sklearn", "datasets")


class LazyPackage(types.ModuleType):
    """A package whose ``__init__`` imports its submodules only when a name from them is asked for."""

    _explicit: dict[str, tuple[str | None, str]]
    _full_code: Any
    _complete: bool
    _lock: threading.RLock

    def __getattr__(self, attr: str) -> Any:
        # Only called for names not (yet) in the module's dict.
        if attr.startswith("__") and attr.endswith("__") and attr != "__all__":
            raise AttributeError(attr)
        target = self._explicit.get(attr)
        if target is not None:
            sub, name = target
            if sub is None:  # from . import name
                return importlib.import_module(f"{self.__name__}.{name}")
            value = getattr(importlib.import_module(f"{self.__name__}.{sub}"), name)
            setattr(self, attr, value)
            return value
        self.complete()
        try:
            return self.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}") from None

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self._explicit))

    def complete(self) -> None:
        """Run the package's real ``__init__`` (what a plain import would have run), once."""
        with self._lock:
            if self._complete:
                return
            self._complete = True
            exec(self._full_code, self.__dict__)


def _relative_import(node: ast.AST) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.level > 0 for n in ast.walk(node))


def _lazy_package(name: str) -> LazyPackage:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an installed package")
    with open(spec.origin, encoding="utf-8") as fh:
        source = fh.read()
    tree = ast.parse(source, spec.origin)
    explicit: dict[str, tuple[str | None, str]] = {}
    eager: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if alias.name != "*":
                    explicit[alias.asname or alias.name] = (node.module, alias.name)
        elif not _relative_import(node):  # e.g. `if fast_tokenizer: from .x import *` waits for complete()
            eager.append(node)
    module = LazyPackage(name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = name
    module.__loader__ = spec.loader
    module._explicit = explicit
    module._full_code = compile(tree, spec.origin, "exec")
    module._complete = False
    module._lock = threading.RLock()
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    try:
        exec(compile(ast.Module(body=eager, type_ignores=[]), spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class _CompleteFirst(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Before a subpackage outside LEAN_SUBPACKAGES is imported, run paddlenlp's full ``__init__``.

    The full ``__init__`` imports that subpackage itself, in the package's own order; the import in
    progress then gets the module it made (``create_module`` hands it back, ``exec_module`` does nothing)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if len(parts) < 2 or parts[0] != "paddlenlp" or parts[1] in LEAN_SUBPACKAGES:
            return None
        package = sys.modules.get("paddlenlp")
        if not isinstance(package, LazyPackage) or package._complete:
            return None
        package.complete()
        module = sys.modules.get(fullname)
        if module is None:  # not one of __init__'s imports: the ordinary finders load it
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=hasattr(module, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return sys.modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        # module_from_spec set __spec__ and __loader__ to ours: give the module its own back.
        real = module.__dict__.get("__file__")
        spec = importlib.util.spec_from_file_location(module.__name__, real) if real else None
        if spec is not None:
            if hasattr(module, "__path__"):
                spec.submodule_search_locations = list(module.__path__)
            module.__spec__, module.__loader__ = spec, spec.loader


_FINDER = _CompleteFirst()


def install() -> bool:
    """Make the PaddleNLP packages lazy in this process; False when paddlenlp was already imported."""
    if "paddlenlp" in sys.modules:
        return False
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _lazy_package("paddlenlp")
    importlib.import_module(FIRST_IMPORT)
    return True


def plain_requested() -> bool:
    return os.environ.get(PLAIN_ENV, "") == "1"


def load() -> str:
    """What a worker calls before PaddleNLP is used: install(), or a plain import under PLAIN_ENV=1."""
    if plain_requested():
        import paddlenlp  # noqa: F401

        return "plain"
    return "lean" if install() else "already imported"


def heavy_modules_loaded() -> list[str]:
    """Which of HEAVY_MODULES this process has imported (the lean path imports none)."""
    return [m for m in HEAVY_MODULES if m in sys.modules]
