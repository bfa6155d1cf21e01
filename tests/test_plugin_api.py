"""The public plugin API (``twpcore.plugin_api``): the only TWP module plugins import, documented, typed, versioned.

- every module of every first-party plugin, of ``contrib/twp-webhook`` and of a freshly
  scaffolded plugin of each kind imports no ``twpcore`` module but ``twpcore.plugin_api``;
- every name of ``plugin_api.__all__`` is documented, and its functions are annotated;
- a plugin that declares a plugin API version this kernel does not provide is not loaded and
  says why, in ``GET /api/v1/plugins`` and in ``twp plugins list``;
- events have one versioned JSON shape and a class per category.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twpcore import plugin_api
from twpcore.scaffold import KINDS, scaffold

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "twpcore.plugin_api"


def plugin_packages() -> list[Path]:
    """The import packages of every first-party plugin and of the contrib plugins (contrib/twp-*)."""
    found = [p for dist in sorted((ROOT / "plugins").iterdir()) for p in sorted(dist.glob("twp_*")) if (p / "__init__.py").is_file()]
    found += [p for dist in sorted((ROOT / "contrib").glob("twp-*")) for p in sorted(dist.glob("twp_*")) if (p / "__init__.py").is_file()]
    return found


def allowed(package: str, module_file: Path, imported: str) -> bool:
    if imported == PUBLIC or not (imported == "twpcore" or imported.startswith("twpcore.")):
        return True
    # A plugin's own test kit (``<package>/testing.py`` or ``<package>/testing/``) serves its tests,
    # which may use TWP's test kit.
    test_kit = module_file.stem == "testing" or module_file.parent.name == "testing"
    return test_kit and (imported == "twpcore.testing" or imported.startswith("twpcore.testing."))


def forbidden_imports(package_dir: Path) -> list[str]:
    """``file:line imports module`` for every import of a kernel module other than the plugin API."""
    found = []
    for module_file in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(module_file.read_text(encoding="utf-8"), str(module_file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from twpcore import kinds`` imports the module twpcore.kinds.
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "twpcore" else [node.module]
            else:
                continue
            for name in names:
                if not allowed(package_dir.name, module_file, name):
                    where = module_file.relative_to(ROOT if module_file.is_relative_to(ROOT) else package_dir.parent)
                    found.append(f"{where}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("package", plugin_packages(), ids=lambda p: p.name)
def test_a_plugin_imports_only_the_plugin_api(package):
    problems = forbidden_imports(package)
    assert not problems, (f"{package.name} imports kernel modules; import from {PUBLIC} instead:\n  " + "\n  ".join(problems))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_scaffolded_plugin_imports_only_the_plugin_api(tmp_path, kind):
    target = scaffold(f"acme-{kind}", kind, tmp_path)
    package = target / f"twp_acme_{kind}"
    problems = forbidden_imports(package)
    assert not problems, f"the {kind} scaffold imports kernel modules:\n  " + "\n  ".join(problems)
    source = (package / "plugin.py").read_text(encoding="utf-8")
    assert f'TWP_PLUGIN_API = "{plugin_api.API_VERSION}"' in source


def test_the_import_check_names_file_line_and_module(tmp_path):
    package = tmp_path / "plugins" / "twp-acme" / "twp_acme"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("from twpcore.plugin_api import hookimpl\nimport json\nfrom twpcore import kinds\n"
                                       "from twpcore.api.core import KERNEL\n")
    assert forbidden_imports(package) == ["twp_acme/plugin.py:3 imports twpcore.kinds", "twp_acme/plugin.py:4 imports twpcore.api.core"]


# -- documented and typed -----------------------------------------------------------------
def attribute_docstrings() -> dict[str, str]:
    """``NAME = value`` followed by a string in the plugin_api module: the constant's documentation."""
    tree = ast.parse(Path(plugin_api.__file__).read_text(encoding="utf-8"))
    docs = {}
    for node, following in itertools.pairwise(tree.body):
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) else None
        if (isinstance(target, ast.Name) and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[target.id] = following.value.value
    return docs


def test_every_public_name_is_documented_and_typed():
    constants = attribute_docstrings()
    problems = []
    assert len(plugin_api.__all__) == len(set(plugin_api.__all__)), "a name is listed twice in __all__"
    for name in plugin_api.__all__:
        obj = getattr(plugin_api, name, None)
        if obj is None:
            problems.append(f"{name}: listed in __all__ but missing")
        elif inspect.isclass(obj):
            if not (obj.__doc__ or "").strip():
                problems.append(f"{name}: class without a docstring")
        elif inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                problems.append(f"{name}: function without a docstring")
            signature = inspect.signature(obj)
            untyped = [p for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
            if untyped or signature.return_annotation is inspect.Signature.empty:
                problems.append(f"{name}: annotate every parameter and the return type")
        elif not constants.get(name, "").strip():
            problems.append(f"{name}: a constant needs a docstring right after its assignment in twpcore/plugin_api.py")
    assert not problems, "\n".join(problems)


def test_the_api_declares_its_version():
    major, minor = plugin_api.API_VERSION.split(".")
    assert major.isdigit() and minor.isdigit()
    assert plugin_api.hookimpl.project_name == "twp"


# -- the version a plugin declares -----------------------------------------------------------
_numbers = itertools.count(1)


def declaring(version: str | None) -> object:
    class Plugin:
        @plugin_api.hookimpl
        def twp_register_parameters(self, register):
            register(plugin_api.ParameterDefinition(f"Acme{number}", "x", "a parameter", "Acme"))

    number = next(_numbers)

    plugin = Plugin()
    if version is not None:
        plugin.TWP_PLUGIN_API = version  # type: ignore[attr-defined]
    return plugin


async def test_a_plugin_needing_a_newer_plugin_api_is_listed_with_the_reason(twp_app):
    major, minor = (int(x) for x in plugin_api.API_VERSION.split("."))
    server = await twp_app(plugins=[("current", declaring(plugin_api.API_VERSION)), ("older-minor", declaring(f"{major}.0")),
                                    ("silent", declaring(None)), ("newer-minor", declaring(f"{major}.{minor + 1}")),
                                    ("next-major", declaring(f"{major + 1}.0")), ("garbled", declaring("one"))])
    admin = await server.admin()
    plugins = {p["name"]: p for p in (await admin.get("/api/v1/plugins"))["plugins"]}
    assert (plugins["current"]["state"], plugins["current"]["api_version"]) == ("loaded", plugin_api.API_VERSION)
    assert plugins["older-minor"]["state"] == "loaded"
    assert (plugins["silent"]["state"], plugins["silent"]["api_version"]) == ("loaded", None)
    newer = plugins["newer-minor"]
    assert (newer["state"], newer["hooks"]) == ("incompatible", [])
    assert newer["reason"] == (f"needs plugin API {major}.{minor + 1}, this TWP provides {plugin_api.API_VERSION}; "
                               f"upgrade TWP to one providing plugin API {major}.{minor + 1} or a later {major}.x")
    assert plugins["next-major"]["state"] == "incompatible"
    assert plugins["next-major"]["reason"].startswith(f"needs plugin API {major + 1}.0, this TWP provides {plugin_api.API_VERSION}")
    assert plugins["garbled"]["reason"] == (f'TWP_PLUGIN_API must be a "MAJOR.MINOR" string such as "{plugin_api.API_VERSION}", '
                                            "got 'one'; fix the plugin's declaration")
    # Nothing of an incompatible plugin is registered; the health says degraded.
    names = {p["name"] for p in (await admin.get("/api/v1/parameters", params={"application": "Acme"}))["items"]}
    assert len(names) == 3
    health = await admin.get("/api/v1/health")
    assert health["status"] == "degraded"


def test_twp_plugins_list_shows_an_incompatible_plugin(tmp_path):
    """An installed package (an entry point of the "twp" group) needing plugin API 99.0."""
    site = tmp_path / "site"
    (site / "twp_future").mkdir(parents=True)
    (site / "twp_future" / "__init__.py").write_text('TWP_PLUGIN_API = "99.0"\n')
    info = site / "twp_future-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: twp-future\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[twp]\nfuture = twp_future\n")
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/t.db"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    base = [sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "plugins", "list"]
    listed = json.loads(subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=60, check=True, env=env).stdout)
    future = next(p for p in listed["plugins"] if p["name"] == "future")
    assert (future["state"], future["source"]) == ("incompatible", "twp-future")
    assert future["reason"].startswith(f"needs plugin API 99.0, this TWP provides {plugin_api.API_VERSION}; upgrade TWP")
    text = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env).stdout
    assert "future" in text and "incompatible" in text and "needs plugin API 99.0" in text


# -- events ------------------------------------------------------------------------------
def test_events_are_typed_per_category_with_one_versioned_json_shape():
    call = plugin_api.Event("call.delivered", {"device": "2001", "call_id": "c1"}, company_id=1)
    assert isinstance(call, plugin_api.CallEvent) and (call.device, call.call_id, call.category) == ("2001", "c1", "call")
    assert type(plugin_api.Event("admin.user.created", {"id": 7})) is plugin_api.AdminEvent
    assert type(plugin_api.Event("directory.synced", {})) is plugin_api.DirectoryEvent
    assert type(plugin_api.Event("presence.changed", {"presence": "busy"})).__name__ == "PresenceEvent"
    assert type(plugin_api.Event("auth.tokens_revoked", {})) is plugin_api.Event
    body = call.as_json()
    assert body["v"] == plugin_api.EVENT_SCHEMA_VERSION == 1
    assert set(body) == {"v", "id", "type", "at", "company_id", "domain_id", "data"}
    with pytest.raises(AttributeError):
        call.type = "call.cleared"  # type: ignore[misc]  # frozen
