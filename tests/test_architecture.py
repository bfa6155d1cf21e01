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


def import_graph(package: Path = KERNEL, *, type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (``from a import b`` counts ``a.b`` when it is a module).

    ``type_checking``: imports under ``if TYPE_CHECKING:`` count too (what the type checker follows).
    """
    files = {_module_name(p, package.parent): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        deps: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in (ast.walk(tree) if type_checking else _runtime_nodes(tree)):
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
    return [_cycle_through(graph, set(c)) for c in import_components(graph)]


def import_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
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
    return components


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


# Type-only cycles: imports under ``if TYPE_CHECKING:`` never run, so they cannot break an
# import; but a cycle there means two layers know each other's types.  The ones left are
# named here with the reason they stay (docs/architecture.md, "Layers and contracts"); a new
# one fails, and one that is gone must leave the list.
TYPE_ONLY_CYCLES = {
    frozenset({"twpcore.kinds", "twpcore.plugin_context"}):
        "one API in two modules: the instance context (kinds) builds on KernelCalls, whose signatures name Kind and PluginType",
}
SPLIT_IN_PROGRESS = {
    "twpcore.directory.": "issue 13 splits the directory service into modules that name its types; remove this entry when the split ends",
}
"""Packages whose type-only cycles among their own modules are tolerated, with the reason (they must stay inside the package)."""


def test_type_only_cycles_are_the_known_ones():
    graph = import_graph(type_checking=True)
    found = {frozenset(c) for c in import_components(graph)
             if not any(all(m.startswith(p) for m in c) for p in SPLIT_IN_PROGRESS)}
    new = [" -> ".join(_cycle_through(graph, set(c))) for c in found - set(TYPE_ONLY_CYCLES)]
    assert not new, "import cycles through `if TYPE_CHECKING:` imports (name a Protocol, or move the type down a layer):\n" + "\n".join(new)
    gone = [sorted(c) for c in set(TYPE_ONLY_CYCLES) - found]
    assert not gone, f"these type-only cycles are gone: remove them from TYPE_ONLY_CYCLES: {gone}"


def test_the_type_only_check_sees_type_checking_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n")
    (package / "b.py").write_text("from pkg import a\n")
    assert import_components(import_graph(package)) == []
    assert import_components(import_graph(package, type_checking=True)) == [["pkg.a", "pkg.b"]]


# SQL belongs to the services and the store, not to the handlers (docs/architecture.md): a
# handler reads the request, runs a service function (``store.run(service.fn, ...)``) and answers.
STORE_MODULES = ("sqlalchemy", "twpcore.store")
SQL_CALLS = {"execute", "exec_driver_sql", "scalar", "scalars"}
"""Connection methods that run SQL: a handler calling one builds its query itself, even with the table passed in."""


def sql_in_handlers(http: Path) -> dict[str, list[str]]:
    """Module -> what in it holds SQL: an import of sqlalchemy or of the store, or a call of a connection method."""
    found: dict[str, list[str]] = {}
    for path in sorted(http.glob("*.py")):
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):  # a type named under TYPE_CHECKING runs no SQL
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            what = [f"imports {n}" for n in names if any(n == m or n.startswith(m + ".") for m in STORE_MODULES)]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                what.append(f"line {node.lineno}: .{node.func.attr}()")
            if what:
                found.setdefault(f"{http.parent.name}.{http.name}.{path.stem}", []).extend(what)
    return found


def test_http_handlers_hold_no_sql():
    found = sql_in_handlers(KERNEL / "http")
    assert not found, "HTTP handlers holding SQL (move the queries into a service module and call it with store.run):\n" + "\n".join(
        f"{module}: {', '.join(what)}" for module, what in found.items())


def test_the_sql_check_sees_imports_and_queries(tmp_path):
    """The check above can fail: a handler importing the store, or running a query through a connection, is found."""
    http = tmp_path / "pkg" / "http"
    http.mkdir(parents=True)
    (http / "ok.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy as sa\nasync def h(store):\n"
                                "    return await store.run(service.rows, 1)\n")
    (http / "imports.py").write_text("from twpcore.store import schema as t\n")
    (http / "queries.py").write_text("async def h(store, table):\n    return await store.run(lambda c: c.execute(table.select()).all())\n")
    assert sql_in_handlers(http) == {"pkg.http.imports": ["imports twpcore.store"], "pkg.http.queries": ["line 2: .execute()"]}


# A service receives what it uses in its constructor, not the kernel to reach through
# (docs/architecture.md, "Layers and contracts"); the kernel (twpcore.app) wires them.
# The plugin API's contexts wrap the kernel on purpose: they are what a plugin gets instead of it.
TAKES_THE_KERNEL = {
    "twpcore.plugin_context.KernelCalls": "the plugin API's facade: typed calls into the running server, the kernel kept private",
    "twpcore.plugin_context.PluginContext": "the plugin API's facade: what a plugin's hooks receive instead of the kernel",
    "twpcore.kinds.InstanceContext": "the plugin API's facade: what an instance receives instead of the kernel",
}
ABOVE_THE_SERVICES = ("twpcore.app", "twpcore.server", "twpcore.cli", "twpcore.http", "twpcore.testing", "twpcore.plugin_check", "twpcore.scaffold")


def _mentions_kernel(name: str, annotation: ast.expr | None) -> bool:
    return name.lstrip("_") == "kernel" or (annotation is not None and "Kernel" in ast.unparse(annotation).replace("KernelCalls", ""))


def classes_taking_the_kernel(package: Path = KERNEL, above: tuple[str, ...] = ABOVE_THE_SERVICES) -> set[str]:
    """Classes whose constructor takes a ``kernel`` (or a ``Kernel``), or whose attrs fields hold one."""
    found = set()
    for path in sorted(package.rglob("*.py")):
        module = _module_name(path, package.parent)
        if any(module == a or module.startswith(a + ".") for a in above):
            continue
        for cls in (n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.ClassDef)):
            takes = False
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.posonlyargs + item.args.args[1:] + item.args.kwonlyargs
                    takes |= any(_mentions_kernel(a.arg, a.annotation) for a in args)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    takes |= _mentions_kernel(item.target.id, item.annotation)
            if takes:
                found.add(f"{module}.{cls.name}")
    return found


def test_services_receive_their_dependencies_not_the_kernel():
    taking = classes_taking_the_kernel()
    unexpected = sorted(taking - set(TAKES_THE_KERNEL))
    assert not unexpected, f"these classes take the kernel: {unexpected}; give each the store, config section, event bus, " \
        "registries or services it uses, and build it in Kernel.__init__ (twpcore/app.py)"
    assert not set(TAKES_THE_KERNEL) - taking, f"no longer take the kernel: remove from TAKES_THE_KERNEL: {sorted(set(TAKES_THE_KERNEL) - taking)}"


def test_the_kernel_check_sees_constructors_and_fields(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "svc.py").write_text(
        "import attrs\nclass A:\n    def __init__(self, kernel): ...\nclass B:\n    def __init__(self, store, owner: 'Kernel'): ...\n"
        "@attrs.define\nclass C:\n    _kernel: object\nclass D:\n    def __init__(self, store, events): ...\n"
        "class E:\n    def run(self, kernel): ...\n")
    (package / "top.py").write_text("class Root:\n    def __init__(self, kernel): ...\n")
    assert classes_taking_the_kernel(package, above=("pkg.top",)) == {"pkg.svc.A", "pkg.svc.B", "pkg.svc.C"}
