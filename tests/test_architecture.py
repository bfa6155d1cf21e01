"""The kernel's layers hold: the contracts of ``.importlinter``, no import cycle, no SQL in HTTP handlers.

docs/architecture.md ("Layers and contracts") explains the layers: the CLI and the test kit,
the composition root (``twpcore.server``), the HTTP layer (``twpcore.http``), the kernel
and its services, the store and low-level modules.  These tests read the source: they
need no server.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "twpcore"


def test_layer_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"import-linter found broken contracts (.importlinter):\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout


def test_every_kernel_module_has_a_layer():
    """A new top-level module of twpcore must be placed in a layer, or the contract would not see it."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layered = set(config["importlinter:contract:layers"]["layers"].replace("|", " ").replace(":", " ").split())
    modules = {f"twpcore.{p.stem}" for p in KERNEL.glob("*.py") if p.stem != "__init__"}
    modules |= {f"twpcore.{p.parent.name}" for p in KERNEL.glob("*/__init__.py")}
    missing = sorted(modules - layered)
    assert not missing, f"modules in no layer of .importlinter: {missing}; add each to the layer it belongs to"


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs: imports at module level and inside functions count, ``if TYPE_CHECKING:`` bodies do not."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def import_graph(package: Path = KERNEL) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (``from a import b`` counts ``a.b`` when it is a module)."""
    files = {_module_name(p, package.parent): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        deps: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (known(alias.name) for alias in node.names)))
            elif isinstance(node, ast.ImportFrom):
                source = ".".join(base[:len(base) - node.level + 1] + [node.module or ""]).strip(".") if node.level else node.module or ""
                for alias in node.names:
                    target = known(f"{source}.{alias.name}")
                    deps.add(target if target == f"{source}.{alias.name}" else known(source) or "")
        deps.discard("")
        deps.discard(module)
        graph[module] = deps
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(graph, set(c)) for c in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle inside ``component`` from its first module, for a readable failure: a -> b -> ... -> a."""
    start = min(component)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    return sorted(component)  # pragma: no cover - a component always has a cycle


def test_no_import_cycle_in_twpcore():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles in twpcore (move the shared types down a layer):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_lazy_imports(tmp_path):
    """An import inside a function closes a cycle too; one under ``if TYPE_CHECKING:`` does not run and does not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nfrom pkg import a\nif TYPE_CHECKING:\n    from pkg import c2\n")
    (package / "c2.py").write_text("from pkg import c\n")
    assert import_cycles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.a"]]


# SQL belongs to the services and the store, not to the handlers (docs/architecture.md).
# The handlers below still hold queries: each leaves this list when its queries move into
# a service module; a module that no longer needs its entry makes the test fail, so the list
# only shrinks.
HANDLERS_WITH_SQL_YET = {
    "twpcore.http.callback",
    "twpcore.http.dialplan",
    "twpcore.http.negotiate",
    "twpcore.http.routes",
    "twpcore.http.sessions",
    "twpcore.http.telephony",
}
STORE_MODULES = ("sqlalchemy", "twpcore.store")


def test_http_handlers_hold_no_sql():
    holding = set()
    for path in (KERNEL / "http").glob("*.py"):
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):  # a type named under TYPE_CHECKING runs no SQL
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == m or n.startswith(m + ".") for n in names for m in STORE_MODULES):
                holding.add(_module_name(path))
    assert not holding - HANDLERS_WITH_SQL_YET, f"HTTP handlers importing sqlalchemy or the store: {sorted(holding - HANDLERS_WITH_SQL_YET)}; " \
        "move the queries into a service module and call it"
    assert not HANDLERS_WITH_SQL_YET - holding, f"these handlers hold no SQL any more: remove them from HANDLERS_WITH_SQL_YET: " \
        f"{sorted(HANDLERS_WITH_SQL_YET - holding)}"
