"""``twp plugins new``: a new plugin package from the template in ``twpcore/templates/plugin``.

The template is plain text with ``{{placeholders}}``; ``contrib/plugin-template`` points at
the same files so third parties can read them without installing TWP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "templates" / "plugin"
NAME = re.compile(r"^[a-z][a-z0-9-]{1,39}$")

KINDS = {
    "pbx": {
        "base": "PbxDriver", "hook": "twp_register_pbx_drivers", "label": "PBX driver", "port": 8882,
        "capabilities": '{"monitor", "make_call"}',
        "config": lambda n: {"pbx": {"links": {"demo": {"driver": n}}}},
    },
    "directory": {
        "base": "DirectoryConnector", "hook": "twp_register_directory_connectors", "label": "directory connector", "port": 389,
        "capabilities": '{"sync"}',
        "config": lambda n: {"directories": {"demo": {"connector": n}}},
    },
    "auth": {
        "base": "AuthMethod", "hook": "twp_register_auth_methods", "label": "auth method", "port": 389,
        "capabilities": '{"password"}',
        "config": lambda n: {},
        "extra": '''
    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        # Return AuthResult.passes() for requests this method does not recognize,
        # AuthResult.reject("why") to refuse (final), AuthResult.accept(attempt.user) to log in.
        return AuthResult.passes("not implemented yet")
''',
        "imports": "from twpcore.kinds import AuthResult, LoginAttempt\n",
    },
    "sms": {
        "base": "SmsProvider", "hook": "twp_register_sms_providers", "label": "SMS provider", "port": 2775,
        "capabilities": '{"gsm7"}',
        "config": lambda n: {"sms": {"providers": {"demo": {"provider": n}}}},
    },
}


class ScaffoldError(Exception):
    """The plugin cannot be created; the message says why."""


def toml_example(config: dict) -> str:
    lines = []
    for top, body in config.items():
        for mid, inner in body.items():
            if isinstance(inner, dict) and all(isinstance(v, dict) for v in inner.values()):
                for name, table in inner.items():
                    lines.append(f"[{top}.{mid}.{name}]")
                    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
            else:
                lines.append(f"[{top}.{mid}]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in inner.items()]
    return "\n".join(lines) or "# auth methods need no instance table; name the method in the AuthMethods parameter"


def scaffold(name: str, kind: str, where: Path) -> Path:
    if not NAME.match(name):
        raise ScaffoldError(f'plugin name "{name}" is not valid: use 2-40 lower-case letters, digits and hyphens, starting with a letter')
    if kind not in KINDS:
        raise ScaffoldError(f'--kind "{kind}" is unknown; use one of {", ".join(KINDS)}')
    spec = KINDS[kind]
    module = "twp_" + name.replace("-", "_")
    target = where / f"twp-{name}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or --dir")
    config = spec["config"](name)
    values = {
        "name": name, "module": module, "kind": kind, "kind_label": spec["label"], "base": spec["base"],
        "hook": spec["hook"], "port": str(spec["port"]), "capabilities": spec["capabilities"],
        "class_name": "".join(part.capitalize() for part in re.split(r"[-_]", name)) + spec["base"],
        "extra": spec.get("extra", ""), "test_config": repr(config), "config_example": toml_example(config),
    }

    def render(template: str) -> str:
        text = (TEMPLATE / template).read_text(encoding="utf-8")
        out = re.sub(r"{{(\w+)}}", lambda m: values[m.group(1)], text)
        if template == "plugin.py.tmpl" and spec.get("imports"):
            out = out.replace("from twpcore.schema import setting\n", "from twpcore.schema import setting\n" + spec["imports"])
        return out

    (target / module).mkdir(parents=True)
    (target / "tests").mkdir()
    (target / "pyproject.toml").write_text(render("pyproject.toml.tmpl"))
    (target / "README.md").write_text(render("README.md.tmpl"))
    (target / module / "__init__.py").write_text(f'"""TWP {spec["label"]} plugin {name}."""\n')
    (target / module / "plugin.py").write_text(render("plugin.py.tmpl"))
    (target / "tests" / f"test_{module}.py").write_text(render("test_plugin.py.tmpl"))
    return target
