"""The packages' layers, read from the source without importing it: ``gan`` (models, training,
generation) imports neither ``eval`` nor ``dashboard``, ``eval`` does not import ``dashboard``, and no
modules import each other in a cycle.

Every import counts: at module top, inside functions, under ``if TYPE_CHECKING:``, and by a module name
written in the source: ``importlib.import_module("...")``, ``__import__``, ``importlib.util.find_spec``,
``pkgutil.resolve_name("mod:obj")``, ``runpy.run_module`` and ``[..., "-m", "mod", ...]`` command lines. An
import deferred into a function avoids the runtime error of a cycle but not the tangle, so it is no way
around this test. The checks run on a made-up tree too, to show that they fail where they should.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gan", "eval", "dashboard")
# Which top-level packages each package may import (besides itself).
ALLOWED = {"gan": set(), "eval": {"gan"}, "dashboard": {"gan", "eval"}}


# Calls whose first argument names a module (resolve_name's "mod:obj" counts by its module).
IMPORTERS = ("import_module", "__import__", "find_spec", "resolve_name", "run_module")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of :data:`PACKAGES` under ``root`` (a package is its
    ``__init__``)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that ``import name`` loads last: ``name`` itself or its longest prefix that
    is a module; None for modules outside the project."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``module`` imports anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` loads the submodule when there is one, else a name of pkg itself
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in IMPORTERS:
                names = [node.args[0].value.partition(":")[0]]
        elif isinstance(node, (ast.List, ast.Tuple)):  # a command line: [sys.executable, "-m", "eval.run"]
            items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            names = [b for a, b in zip(items, items[1:]) if a == "-m" and isinstance(b, str)]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def against_layers(graph: dict[str, set[str]]) -> list[str]:
    """``"a imports b"`` for each import that points against the layers (:data:`ALLOWED`)."""
    return [f"{m} imports {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
            if t.split(".")[0] != m.split(".")[0] and t.split(".")[0] not in ALLOWED[m.split(".")[0]]]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_tarjan_finds_cycles_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(strongly_connected(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_everywhere_in_a_file(tmp_path):
    pkg = tmp_path / "gan"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text("")
    src = pkg / "mod.py"
    src.write_text("import importlib\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import eval.x\n"
                   "def f():\n    from . import sub\n    importlib.import_module('dashboard.y')\n")
    modules = {"gan": pkg / "__init__.py", "gan.sub": pkg / "sub.py", "gan.mod": src,
               "eval.x": src, "dashboard.y": src}
    assert imports_of("gan.mod", src, modules) == {"eval.x", "gan.sub", "dashboard.y"}


def test_the_checks_fail_on_a_made_up_tree_that_breaks_the_layers(tmp_path):
    files = {
        "gan/__init__.py": "",
        "gan/a.py": "import importlib\ndef f():\n    return importlib.import_module('eval.m')\n",
        "gan/b.py": "from gan import c\n",
        "gan/c.py": "from . import b\n",
        "gan/d.py": "import pkgutil, subprocess, sys\npkgutil.resolve_name('dashboard.app:main')\n"
                    "subprocess.run([sys.executable, '-m', 'eval.m'])\n",
        "gan/ok.py": "import os\nfrom gan import a\nRUNS = 'eval.m'  # a string alone imports nothing\n",
        "eval/__init__.py": "",
        "eval/m.py": "import gan.a\nfrom gan.b import x\n",
        "dashboard/__init__.py": "",
        "dashboard/app.py": "import eval.m\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert against_layers(graph) == ["gan.a imports eval.m", "gan.d imports dashboard.app", "gan.d imports eval.m"]
    assert sorted(strongly_connected(graph)) == [["eval.m", "gan.a"], ["gan.b", "gan.c"]]
    assert graph["gan.ok"] == {"gan.a"} and graph["dashboard.app"] == {"eval.m"}


def test_layers_point_one_way():
    wrong = against_layers(import_graph())
    assert not wrong, "imports against the layers (gan <- eval <- dashboard):\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    cycles = strongly_connected(graph)
    lines = [" <-> ".join(c) + ":  " + "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c)
             for c in cycles]
    assert not cycles, "modules that import each other:\n" + "\n".join(lines)
