"""The layers hold: no import cycles (lazy imports included), core never imports Textual or Rich (every
module, each in a fresh interpreter), and no core module names the tui package."""

from __future__ import annotations

import ast
import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(pkg: str, root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for f in sorted((root / pkg).rglob("*.py")):
        name = ".".join(f.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imported_names(mod: str, path: Path) -> set[str]:
    """Every module name an import in the file names: top level, inside functions, import_module('x')."""
    names: set[str] = set()
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call):
            fn = node.func
            called = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if called in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def _cycles(pkgs: tuple[str, ...], root: Path = ROOT) -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph of the packages."""
    mods: dict[str, Path] = {}
    for pkg in pkgs:
        mods.update(_modules(pkg, root))

    def own(name: str) -> str | None:  # core.launch.spawn (a function) -> core.launch
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {t for n in _imported_names(m, f) if (t := own(n)) and t != m} for m, f in mods.items()}
    # Tarjan, iterative: no recursion limit to think about.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in mods:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    """The check itself can fail: a function-level import back is a cycle."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("x = 1\ndef f():\n    from . import a\n")
    (pkg / "c.py").write_text("import importlib\nimportlib.import_module('pkg.a')\n")
    assert _cycles(("pkg",), tmp_path) == [["pkg.a", "pkg.b"]]
    (pkg / "b.py").write_text("x = 1\n")
    assert _cycles(("pkg",), tmp_path) == []


def test_no_import_cycles_in_core():
    assert _cycles(("core",)) == []


def test_no_import_cycles_between_core_and_tui_outside_the_screens():
    cycles = [c for c in _cycles(("core", "tui")) if not all(m.startswith("tui.screens.") for m in c)]
    assert cycles == []


def test_no_import_cycles_among_the_screens():
    assert _cycles(("core", "tui")) == []


# Runs in a fresh interpreter: imports one module and says who imported textual or rich, if anyone did.
# paddlenlp pulls rich in through httpx's command line module (httpx._main): a third party's import, not
# ours, so rich is blamed on the module whose code ran the import statement; textual on anyone.
WHO_IMPORTS_UI = """
import importlib, json, sys
seen = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("textual", "rich") and top not in seen:
            frame = sys._getframe(1)
            while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
                frame = frame.f_back
            seen[top] = frame.f_globals.get("__name__", "?") if frame else "?"
        return None
sys.meta_path.insert(0, Watch())
importlib.import_module(sys.argv[1])
print(json.dumps(seen))
"""


def _ours(module: str) -> bool:
    return module.split(".")[0] in ("core", "tui", "__main__")


def test_every_core_module_imports_without_textual_or_rich():
    """Each module in a fresh interpreter (one alone can pull Textual in; a shared one would hide it)."""
    import core

    names = [m.name for m in pkgutil.walk_packages(core.__path__, "core.")]
    assert "core.launch" in names and "core.control" in names and "core.probes" in names
    bad = {}
    for name in ["core", *names]:
        out = subprocess.run([sys.executable, "-c", WHO_IMPORTS_UI, name], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
        assert out.returncode == 0, f"{name}: {out.stderr[-2000:]}"
        seen = json.loads(out.stdout.splitlines()[-1])
        blamed = {top: who for top, who in seen.items() if top == "textual" or _ours(who)}
        if blamed:
            bad[name] = blamed
    assert bad == {}


def test_the_ui_import_watch_blames_our_own_import(tmp_path):
    """The watch can fail: a core module of ours that imports rich is named (a stand-in core package)."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "pretty.py").write_text("import rich.text\n")
    out = subprocess.run([sys.executable, "-c", WHO_IMPORTS_UI, "core.pretty"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {"rich": "core.pretty"}


def test_no_core_module_names_the_tui_package():
    named = {m: sorted(n for n in _imported_names(m, f) if n == "tui" or n.startswith("tui."))
             for m, f in _modules("core").items()}
    assert {m: n for m, n in named.items() if n} == {}
