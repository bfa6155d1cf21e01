"""``twp plugins check NAME``: grade an installed plugin against the plugin author's checklist.

Each check gives a ``Finding``: it passed, or what to fix, naming the class, the option and
the value.  The checks (``docs/plugin-author-guide.md``, "Publishing, and a checklist"):

- ``loads``: the plugin is installed, imported and registered (state ``loaded``);
- ``registers``: it registers at least one type or implements at least one hook;
- ``api-version``: its hook module declares ``TWP_PLUGIN_API``;
- ``imports``: its package code imports nothing of TWP but ``twpcore.plugin_api`` (its
  ``testing`` modules may use the test kit ``twpcore.testing``);
- ``help``: every option of every ``Config`` it registers (and of its ``[plugins.<name>]``
  options) has a help text;
- ``secrets``: an option whose name looks secret (``password``, ``api_key``, ``token``...)
  is a ``Secret`` or declared ``setting(secret=True)``;
- ``server-side``: an option whose name says it is a path on the server (``path``,
  ``*_file``, ``*_dir``, ``keytab``, ``socket``...) is declared ``setting(server_side=...)``;
- ``tests``: its source tree has tests (``tests/test_*.py``).
"""

from __future__ import annotations

import ast
import json
import re
import typing
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from twpcore.kinds import Kind
from twpcore.plugin_context import API_VERSION
from twpcore.plugins import API_VERSION_ATTRIBUTE, ENTRY_POINT_GROUP, PluginState
from twpcore.schema import Secret, looks_secret

PATH_OPTION = re.compile(r"^(path|paths)$|(^|_)(file|files|dir|dirs|directory|folder|keytab|socket)$|(file|dir)_path$", re.I)
"""Option names that say the value is a path on the server: ``path``, ``ca_file``, ``trace_dir``, ``keytab``...
(not any ``*_path``: ``id_path`` of an HTTP gateway is a path in a JSON answer)."""
ALLOWED_IMPORTS = ("twpcore.plugin_api",)
TESTING_IMPORTS = ("twpcore.testing",)
"""What a plugin's ``testing`` module (a test kit it ships for its own and others' tests) may import besides."""


@attrs.frozen
class Finding:
    """One check of one plugin: passed or not, and what was found or what to fix."""

    check: str
    ok: bool
    detail: str


def _fail(check: str, detail: str) -> Finding:
    return Finding(check, False, detail)


def _ok(check: str, detail: str) -> Finding:
    return Finding(check, True, detail)


def _is_secret_type(tp: Any) -> bool:
    return tp is Secret or Secret in typing.get_args(tp)


def _holds_text(tp: Any) -> bool:
    """Whether a value of type ``tp`` may be a string (a ``bool`` named ``password_check`` is no secret)."""
    return tp is str or tp is Any or _is_secret_type(tp) or any(_holds_text(a) for a in typing.get_args(tp))


def _attrs_classes(tp: Any) -> Iterator[type]:
    if isinstance(tp, type) and attrs.has(tp):
        yield tp
    for arg in typing.get_args(tp):
        yield from _attrs_classes(arg)


def config_findings(owner: str, cls: type, seen: set[type] | None = None) -> list[Finding]:
    """Problems of the options of ``cls`` (an attrs ``Config`` class) as ``owner`` registers them."""
    seen = set() if seen is None else seen
    if cls in seen:
        return []
    seen.add(cls)
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # noqa: BLE001 - a broken annotation is the plugin's to fix
        return [_fail("help", f"{owner}: the type annotations of {cls.__qualname__} cannot be read ({type(exc).__name__}: {exc}); fix them")]
    out = []
    for field in attrs.fields(cls):
        name = field.alias or field.name
        where = f"{owner}: {cls.__qualname__}.{name}"
        meta = field.metadata
        tp = hints.get(field.name, Any)
        if not meta.get("help"):
            out.append(_fail("help", f'{where} has no help text; declare it with setting(..., help="what it is, its unit or format")'))
        if looks_secret(name) and _holds_text(tp) and not (_is_secret_type(tp) or meta.get("secret")):
            out.append(_fail("secrets", f"{where} looks like a secret but is not marked: type it Secret (or Secret | None) so it may be "
                                        'written { env = "VAR" } and is never shown, or declare setting(..., secret=True)'))
        if PATH_OPTION.search(name) and _holds_text(tp) and not meta.get("server_side"):
            out.append(_fail("server-side", f"{where} names a path on the server but is not marked: declare it "
                                            'setting(..., server_side=True) (or server_side=ServerSide("a file on the server")) so that only '
                                            "super users may set it"))
        for inner in _attrs_classes(tp):
            out += config_findings(owner, inner, seen)
    return out


def _source_dir(dist: metadata.Distribution | None, module: Any) -> Path | None:
    """Where the plugin's project lives: the directory pip installed it from, or the one holding its package."""
    if dist is not None:
        text = dist.read_text("direct_url.json")
        if text:
            url = json.loads(text).get("url", "")
            if url.startswith("file://"):
                return Path(url.removeprefix("file://"))
    path = Path(getattr(module, "__file__", "") or ".").resolve()
    for parent in path.parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return None


def _package_files(module: Any) -> list[Path]:
    top = module.__name__.split(".")[0]
    spec_file = getattr(__import__(top), "__file__", None)
    if not spec_file:
        return []
    root = Path(spec_file).parent
    if Path(spec_file).name != "__init__.py":
        return [Path(spec_file)]
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from twpcore import kinds`` imports the module twpcore.kinds.
            for name in [f"{node.module}.{a.name}" for a in node.names] if node.module == "twpcore" else [node.module]:
                yield node.lineno, name


def import_findings(module: Any) -> list[Finding]:
    out = []
    for path in _package_files(module):
        testing = path.stem == "testing" or "testing" in path.parent.parts[-1:]
        allowed = ALLOWED_IMPORTS + (TESTING_IMPORTS if testing else ())
        for line, name in _imports(path):
            if (name == "twpcore" or name.startswith("twpcore.")) and not any(name == a or name.startswith(a + ".") for a in allowed):
                out.append(_fail("imports", f"{path}:{line} imports {name}; a plugin imports nothing of TWP but twpcore.plugin_api "
                                            "(see the migration table of the plugin author guide)"))
    return out


def _distribution(name: str) -> metadata.Distribution | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.dist
    return None


def _options_class(kernel: Any, name: str, module: Any) -> type | None:
    registered = [spec for plugin, spec in kernel.hooks.register_options(lambda plugin, call: call[0][0] if call[0] else None)
                  if plugin == name]
    for spec in registered:
        if isinstance(spec, type) and attrs.has(spec):
            return spec
    if registered:  # a reader function: its module's Config class is what it structures, by convention
        config = getattr(module, "Config", None)
        return config if isinstance(config, type) and attrs.has(config) else None
    return None


def check(kernel: Any, name: str) -> list[Finding]:
    """Grade plugin ``name`` of a built (not started) kernel."""
    record = kernel.plugins.records.get(name)
    if record is None:
        installed = ", ".join(sorted(kernel.plugins.records)) or "none"
        return [_fail("loads", f"no installed plugin is named {name!r} (installed: {installed}); install it (pip install -e DIR) "
                               "or check the entry-point name in its pyproject.toml, [project.entry-points.twp]")]
    findings = []
    if record.state != PluginState.LOADED:
        findings.append(_fail("loads", f"{record.state.value}: {record.reason}"))
    else:
        findings.append(_ok("loads", f"{record.source} {record.version or ''}".strip() + " loaded"))
    if record.module is None:
        return findings
    registered = ", ".join(sorted(record.provides)) or ", ".join(sorted(record.hooks))
    if record.state == PluginState.LOADED:
        findings.append(_ok("registers", registered) if registered else
                        _fail("registers", "registers no type and implements no hook; add @hookimpl functions such as "
                                           "twp_register_directory_connectors(register) to its module"))
    if record.api_version is None:
        findings.append(_fail("api-version", f'{record.module.__name__} does not declare the plugin API it needs; add '
                                             f'{API_VERSION_ATTRIBUTE} = "{API_VERSION}" to it'))
    else:
        findings.append(_ok("api-version", f"{API_VERSION_ATTRIBUTE} = {record.api_version!r}"))
    if record.source != "default":
        findings += import_findings(record.module) or [_ok("imports", "only twpcore.plugin_api")]
    options = []
    for kind in Kind:
        for type_name, rec in sorted(kernel.plugins.types[kind].items()):
            if rec.plugin == name:
                options += config_findings(f"{kind.value}:{type_name}", rec.cls.Config)
    spec = _options_class(kernel, name, record.module)
    if spec is not None:
        options += config_findings(f"[plugins.{name}]", spec)
    findings += options
    for check_name, text in (("help", "every option has a help text"), ("secrets", "secret-looking options are Secret"),
                             ("server-side", "path options are marked server-side")):
        if not any(f.check == check_name for f in options):
            findings.append(_ok(check_name, text))
    findings.append(_tests_finding(record))
    return findings


def _tests_finding(record: Any) -> Finding:
    if record.source == "default":
        return _ok("tests", "a default plugin of the kernel: tested by the kernel's tests")
    where = _source_dir(_distribution(record.name), record.module)
    if where is None:
        return _fail("tests", f"the source tree of {record.source} is not found (installed from a wheel?); "
                              "check it from a source checkout: pip install -e DIR")
    tests = sorted(where.glob("tests/test_*.py")) + sorted(where.glob("tests/**/test_*.py"))
    if not tests:
        return _fail("tests", f"{where / 'tests'} has no test_*.py; add tests with the TWP test kit "
                              "(docs/plugin-author-guide.md, \"Testing with the kit\")")
    count = len(set(tests))
    return _ok("tests", f"{count} test file{'s' if count > 1 else ''} in {where / 'tests'}")


def report(name: str, findings: list[Finding]) -> tuple[str, int]:
    """The text ``twp plugins check`` prints, and its exit status (1 when a check failed)."""
    lines = [f"plugin {name}:"]
    for f in findings:
        lines.append(f"  {'ok  ' if f.ok else 'FAIL'}  {f.check:<12} {f.detail}")
    failed = [f for f in findings if not f.ok]
    if failed:
        lines.append(f"{len(failed)} problem{'s' if len(failed) > 1 else ''} to fix; then run `twp plugins check {name}` again")
    else:
        lines.append("every check passed")
    return "\n".join(lines), 1 if failed else 0
