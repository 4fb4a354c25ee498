"""The layers of docs/ARCHITECTURE.md, enforced: imports (module-level and inside functions) read with ``ast``."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "fcnseg"

FOUNDATIONS = {
    "errors",
    "registry",
    "io",
    "imageio",
    "files",
    "writes",
    "yaml_safe",
    "json_safe",
    "home",
    "_lazy",
    "fcnseg",
}
LEAVES = {"models", "data", "losses", "metrics", "preprocessing", "viz", "pretrained", "floors", "config"}
UPPER = {"train", "inference", "export", "convert", "serve", "bench", "experiments", "cli"}
#: unit → the units it must never import (a unit is a top-level module or package of fcnseg)
FORBIDDEN: dict[str, set[str]] = {
    **{f: (LEAVES | UPPER | {"runtime", "weights"}) - {"fcnseg"} for f in FOUNDATIONS - {"fcnseg"}},
    "models": {"data", "runtime", "weights", *UPPER},
    "data": {"runtime", "weights", *UPPER},
    "losses": {"runtime", "weights", *UPPER},
    "metrics": {"runtime", "weights", *UPPER},
    "preprocessing": {"runtime", "weights", *UPPER},
    "viz": {"runtime", "weights", *UPPER},
    "config": {"runtime", "weights", *UPPER},
    # the weights registry converts Caffe files and opens checkpoints: above convert/ and runtime/, below the rest
    "weights": {"train", "inference", "export", "serve", "bench", "experiments", "cli"},
    "runtime": UPPER | {"weights"},
    "train": UPPER - {"train"},
    "inference": {"train", "serve", "bench", "experiments", "cli"},
    "export": {"train", "inference", "serve", "bench", "experiments", "cli"},
    "convert": {"train", "inference", "serve", "bench", "experiments", "cli", "weights"},
    "serve": {"train", "bench", "experiments", "cli"},
    "bench": {"train", "serve", "experiments", "cli"},
    "experiments": {"inference", "export", "convert", "serve", "cli"},
}
#: what the experiments may import from outside their package: public packages' ``__all__`` names only
PUBLIC = (
    "fcnseg",
    "fcnseg.config",
    "fcnseg.data",
    "fcnseg.models",
    "fcnseg.metrics",
    "fcnseg.losses",
    "fcnseg.preprocessing",
    "fcnseg.io",
    "fcnseg.viz",
    "fcnseg.errors",
    "fcnseg.train",
    "fcnseg.runtime",
    "fcnseg.bench",
    "fcnseg.pretrained",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(absolute module, imported names, line)`` of every fcnseg import in ``path`` (function bodies too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }  # for type checkers only: never imported at run time
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "fcnseg" or target.startswith("fcnseg."):
                found.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "fcnseg"]
    return found


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fcnseg"


def violations(edges: list[tuple[str, str, int]]) -> list[str]:
    """The edges (importer, imported, line) that break :data:`FORBIDDEN`, and any import of the command line."""
    bad = []
    for src, dst, line in edges:
        a, b = unit(src), unit(dst)
        if b in FORBIDDEN.get(a, set()) or (b == "cli" and a not in ("cli", "__main__")):
            bad.append(f"{src}:{line} imports {dst} ({a} must not import {b})")
    return bad


def _edges() -> list[tuple[str, str, int]]:
    edges = []
    for path in PACKAGE.rglob("*.py"):
        src = module_name(path)
        for target, names, line in imports(path):
            subs = [
                f"{target}.{n}"
                for n in names
                if (PACKAGE.parent / f"{target}.{n}".replace(".", "/")).exists()
                or (PACKAGE.parent / (f"{target}.{n}".replace(".", "/") + ".py")).exists()
            ]
            edges += [(src, t, line) for t in (subs or [target])]
    return edges


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    assert violations(_edges()) == []


@pytest.mark.parametrize(
    "edge",
    [
        ("fcnseg.train.amp", "fcnseg.inference.isa"),  # training climbing into inference (the 2026-12 review)
        ("fcnseg.inference.source", "fcnseg.train.checkpoint"),  # inference reaching into the training package
        ("fcnseg.convert.caffe", "fcnseg.train.checkpoint"),
        ("fcnseg.export.cache", "fcnseg.inference.auto"),
        ("fcnseg.models.fcn", "fcnseg.data.base"),  # models never import data
        ("fcnseg.runtime.checkpoint", "fcnseg.train.build"),
        ("fcnseg.inference.batch", "fcnseg.cli.commands._common"),  # the library never sees the command line
        ("fcnseg.errors", "fcnseg.models"),
        ("fcnseg.runtime.model_source", "fcnseg.weights.resolve"),  # opening a model never fetches by itself
        ("fcnseg.convert.caffe", "fcnseg.weights.table"),
        ("fcnseg.weights.cache", "fcnseg.inference.store"),
        ("fcnseg.weights.resolve", "fcnseg.train.build"),
        ("fcnseg.models.surgery", "fcnseg.weights.resolve"),
    ],
)
def test_the_rule_catches_the_imports_the_review_found(edge: tuple[str, str]) -> None:
    assert violations([(*edge, 1)])


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst, _ in _edges():
        if src != dst:
            graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_experiments_use_only_the_public_api() -> None:
    """The demo, the miniature and the paper experiments are clients: outside their package they import public
    packages' exported names only (no private names, no modules inside other packages)."""
    bad = []
    for path in (PACKAGE / "experiments").rglob("*.py"):
        for target, names, line in imports(path):
            if target.startswith("fcnseg.experiments"):
                continue
            if target not in PUBLIC:
                bad.append(f"{module_name(path)}:{line} imports {target}")
                continue
            exported = getattr(importlib.import_module(target), "__all__", [])
            bad += [
                f"{module_name(path)}:{line} imports {target}.{n}"
                for n in names
                if n.startswith("_") or n not in exported
            ]
    assert bad == []


def test_help_and_argument_errors_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom fcnseg.cli.main import main\nfor argv in (['--help'], ['predict', '--help'], "
        "['train', '--help'], ['predict', '--alpha', '2', 'x']):\n    try:\n        main(argv)\n"
        "    except SystemExit:\n        pass\nprint('torch' in sys.modules, 'torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stderr[-1000:]


def test_no_lazy_name_is_also_a_submodule_name() -> None:
    """A package's names loaded on first use (``_lazy``) must not share a name with one of its submodules: importing
    the submodule sets that attribute to the module, and ``from package import name`` then returns the module
    instead of the function (``fcnseg.runtime.evaluate`` did, until its module became ``evaluation``)."""
    import pkgutil

    bad = []
    for package in ("fcnseg", "fcnseg.runtime", "fcnseg.data"):
        module = importlib.import_module(package)
        subs = {m.name for m in pkgutil.iter_modules(module.__path__)}
        bad += [f"{package}.{name}" for name in module.__all__ if name in subs]
    assert bad == []


def test_a_lazy_name_stays_the_function_after_its_module_is_imported() -> None:
    import subprocess
    import sys

    code = (
        "import fcnseg.runtime.evaluation, fcnseg.data.registry\n"
        "from fcnseg.runtime import evaluate\nfrom fcnseg.data import get_dataset\n"
        "print(callable(evaluate) and evaluate.__module__, get_dataset.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["fcnseg.runtime.evaluation", "fcnseg.data.registry"], out.stderr[-1000:]
