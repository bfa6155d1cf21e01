"""``twp plugins new``: a new plugin package from the template in ``twpcore/templates/plugin``.

The template is plain text with ``{{placeholders}}``; ``contrib/plugin-template`` points at
the same files so third parties can read them without installing TWP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from twpcore.plugin_context import API_VERSION

TEMPLATE = Path(__file__).resolve().parent / "templates" / "plugin"
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

KINDS: dict[str, dict[str, Any]] = {
    # A CSTA driver on the toolkit's driver base; its tests run the conformance suite against the simulator.
    "pbx": {
        "base": "PbxDriver", "class_suffix": "PbxDriver", "hook": "twp_register_pbx_drivers", "label": "PBX driver", "port": 8882,
        "kind_value": "pbx_driver", "plugin": "plugin_pbx.py.tmpl", "test": "test_pbx.py.tmpl",
        "dependencies": ["twp", "twp-csta"], "test_extra": ["twp-csta[test]"],
        "config": lambda n: {"pbx": {"links": {"demo": {"driver": n, "host": "10.0.0.10"}}}}, "table": lambda n: ("pbx", "links", "demo"),
    },
    # A connector reading a JSON array over HTTP; its tests run against an aiohttp server started in the test.
    "directory": {
        "base": "DirectoryConnector", "class_suffix": "DirectoryConnector", "hook": "twp_register_directory_connectors",
        "label": "directory connector", "port": 443, "kind_value": "directory_connector",
        "plugin": "plugin_directory.py.tmpl", "test": "test_directory.py.tmpl", "dependencies": ["twp", "aiohttp>=3.9"],
        "config": lambda n: {"directories": {"demo": {"connector": n, "company": "ACME", "domain": "Paris",
                                                      "url": "https://crm.example.com/api/contacts", "token": {"env": "CRM_TOKEN"}}}},
        "table": lambda n: ("directories", "demo"),
    },
    "auth": {
        "base": "AuthMethod", "class_suffix": "AuthMethod", "hook": "twp_register_auth_methods", "label": "auth method", "port": 389,
        "capabilities": '{"password"}', "kind_value": "auth_method",
        # Every installed auth method has an instance; [auth.methods.<name>] holds its options.
        "config": lambda n: {}, "table": lambda n: ("auth", "methods", n),
        "extra": '''
    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        # Return AuthResult.passes() for requests this method does not recognize,
        # AuthResult.reject("why") to refuse (final), AuthResult.accept(attempt.user) to log in.
        return AuthResult.passes("not implemented yet")
''',
        "imports": ("AuthResult", "LoginAttempt"),
    },
    "sms": {
        "base": "SmsProvider", "class_suffix": "SmsProvider", "hook": "twp_register_sms_providers", "label": "SMS provider", "port": 2775,
        "capabilities": '{"gsm7"}', "kind_value": "sms_provider",
        "config": lambda n: {"sms": {"providers": {"demo": {"provider": n}}}}, "table": lambda n: ("sms", "providers", "demo"),
        # Every provider's options include priority, sender and max_parts (SmsProviderConfig).
        "config_decorator": "@attrs.frozen(kw_only=True)", "config_base": "(SmsProviderConfig)",
        "extra": '''
    async def send(self, message: SmsMessage) -> SmsSent:
        # Hand the message to the remote system and return SmsSent(provider_ids=...).
        # Raise SmsUnavailable("why") when nothing was sent (the next provider is tried),
        # SmsRejected("why") (twpcore.plugin_api) when this message can never pass.
        raise SmsUnavailable("sending is not implemented yet")
''',
        "imports": ("SmsMessage", "SmsProviderConfig", "SmsSent", "SmsUnavailable"),
    },
}
"""What ``twp plugins new --kind KIND`` writes; ``plugin`` and ``test`` name the kind's own templates (default: the generic ones)."""
TEST_EXTRA = ["pytest>=8", "pytest-aiohttp>=1.0"]
"""What every scaffold's tests need (``pip install -e '.[test]'``): the kit's fixtures run on pytest-aiohttp."""


def class_name(name: str, suffix: str) -> str:
    """``acme-pbx`` + ``PbxDriver`` → ``AcmePbxDriver``: the suffix's leading words the name already ends with are not repeated."""
    words = [part.capitalize() for part in re.split(r"[-_]", name)]
    tail = re.findall(r"[A-Z][a-z0-9]*", suffix)
    lower, suffix_lower = [w.lower() for w in words], [t.lower() for t in tail]
    overlap = max((k for k in range(min(len(tail), len(words)) + 1) if lower[len(words) - k:] == suffix_lower[:k]), default=0)
    return "".join(words) + "".join(tail[overlap:])


def _import_order(name: str) -> tuple[bool, str]:
    """isort's order: classes (capitalized) first, then functions, each alphabetical."""
    return (name[:1].islower(), name)


class ScaffoldError(Exception):
    """The plugin cannot be created; the message says why."""


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def toml_example(config: dict) -> str:
    lines = []
    for top, body in config.items():
        for mid, inner in body.items():
            if isinstance(inner, dict) and all(isinstance(v, dict) for v in inner.values()):
                for name, table in inner.items():
                    lines.append(f"[{top}.{mid}.{name}]")
                    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            else:
                lines.append(f"[{top}.{mid}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in inner.items()]
    return "\n".join(lines) or "# auth methods need no instance table; name the method in the AuthMethods parameter"


def with_option(config: dict, table: tuple[str, ...], key: str, value: object) -> dict:
    """A copy of ``config`` with ``key = value`` set in the table at ``table``."""
    out = json.loads(json.dumps(config))
    node = out
    for part in table:
        node = node.setdefault(part, {})
    node[key] = value
    return out


def scaffold(name: str, kind: str, where: Path) -> Path:
    if name.startswith("twp-"):
        raise ScaffoldError(f'plugin name "{name}": leave out the "twp-" prefix, it is added to the package name (try "{name[4:]}")')
    if not (2 <= len(name) <= 40 and NAME.match(name)):
        raise ScaffoldError(f'plugin name "{name}" is not valid: use 2-40 lower-case letters and digits, words separated by single '
                            'hyphens, starting with a letter (e.g. "acme-pbx")')
    if kind not in KINDS:
        raise ScaffoldError(f'--kind "{kind}" is unknown; use one of {", ".join(KINDS)}')
    spec = KINDS[kind]
    module = "twp_" + name.replace("-", "_")
    target = where / f"twp-{name}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or --dir")
    config = spec["config"](name)
    extra = spec.get("test_extra", [])
    values = {
        "name": name, "module": module, "kind": kind, "kind_label": spec["label"], "base": spec["base"],
        "hook": spec["hook"], "port": str(spec["port"]), "capabilities": spec.get("capabilities", ""),
        "class_name": class_name(name, spec["class_suffix"]),
        "extra": spec.get("extra", ""), "test_config": repr(config), "config_example": toml_example(config),
        "kind_imports": ", ".join(sorted({spec["base"], "NotReady", "hookimpl", "setting", *spec.get("imports", ())}, key=_import_order)),
        "api_version": API_VERSION,
        "config_decorator": spec.get("config_decorator", "@attrs.frozen"), "config_base": spec.get("config_base", ""),
        "kind_value": spec["kind_value"], "table_path": ".".join(spec["table"](name)),
        "bad_config": repr(with_option(config, spec["table"](name), "port", 0)),
        "description": f"{name} {spec['label']}", "env_name": module.upper().removeprefix("TWP_"),
        "dependencies": json.dumps(spec.get("dependencies", ["twp"])), "test_extra": json.dumps([*TEST_EXTRA, *extra]),
    }

    def render(template: str) -> str:
        text = (TEMPLATE / template).read_text(encoding="utf-8")
        return re.sub(r"{{(\w+)}}", lambda m: values[m.group(1)], text)

    (target / module).mkdir(parents=True)
    (target / "tests").mkdir()
    (target / "pyproject.toml").write_text(render("pyproject.toml.tmpl"))
    (target / "README.md").write_text(render("README.md.tmpl"))
    (target / module / "__init__.py").write_text(f'"""TWP {spec["label"]} plugin {name}."""\n')
    (target / module / "plugin.py").write_text(render(spec.get("plugin", "plugin.py.tmpl")))
    (target / "tests" / f"test_{module}.py").write_text(render(spec.get("test", "test_plugin.py.tmpl")))
    return target
