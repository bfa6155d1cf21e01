"""``twp plugins new``: a new plugin package from the template in ``twpcore/templates/plugin``.

The template is plain text with ``{{placeholders}}``; ``contrib/plugin-template`` points at
the same files so third parties can read them without installing TWP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "templates" / "plugin"
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

KINDS = {
    "pbx": {
        "base": "PbxDriver", "hook": "twp_register_pbx_drivers", "label": "PBX driver", "port": 8882,
        "capabilities": '{"monitor"}', "kind_value": "pbx_driver",
        "config": lambda n: {"pbx": {"links": {"demo": {"driver": n}}}}, "table": lambda n: ("pbx", "links", "demo"),
        "extra": '''
    async def monitor(self, device: str) -> None:
        # Ask the PBX to monitor the device.  Report what happens to it with
        # self.emit(twpcore.telephony.events.PbxEvent(...)) and the link's state with
        # self.link_up() / self.link_down("why").  Every operation you implement
        # (make_call, answer, hold...) goes with its name in ``capabilities``.
        self.context.logger.debug("monitoring %s", device)

    async def stop_monitor(self, device: str) -> None:
        self.context.logger.debug("no longer monitoring %s", device)
''',
    },
    "directory": {
        "base": "DirectoryConnector", "hook": "twp_register_directory_connectors", "label": "directory connector", "port": 389,
        "capabilities": '{"sync"}', "kind_value": "directory_connector",
        "config": lambda n: {"directories": {"demo": {"connector": n}}}, "table": lambda n: ("directories", "demo"),
        "extra": '''
    async def records(self, user: Any = None) -> AsyncIterator[SourceRecord]:
        # Yield one SourceRecord(id, {source field: value}) per entry of the source; the
        # kernel applies the directory's field mapping and stores them in one transaction.
        # Raise NotReady / AuthFailed / twpcore.kinds.ConnectorError to keep the old contacts.
        for row in ():  # replace with the entries read from the source
            yield SourceRecord(str(row["id"]), dict(row))
''',
        "imports": ("SourceRecord",),
        "stdlib_imports": ("from collections.abc import AsyncIterator", "from typing import Any"),
    },
    "auth": {
        "base": "AuthMethod", "hook": "twp_register_auth_methods", "label": "auth method", "port": 389,
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
        "base": "SmsProvider", "hook": "twp_register_sms_providers", "label": "SMS provider", "port": 2775,
        "capabilities": '{"gsm7"}', "kind_value": "sms_provider",
        "config": lambda n: {"sms": {"providers": {"demo": {"provider": n}}}}, "table": lambda n: ("sms", "providers", "demo"),
        # Every provider's options include priority, sender and max_parts (SmsProviderConfig).
        "config_decorator": "@attrs.frozen(kw_only=True)", "config_base": "(SmsProviderConfig)",
        "extra": '''
    async def send(self, message: SmsMessage) -> SmsSent:
        # Hand the message to the remote system and return SmsSent(provider_ids=...).
        # Raise SmsUnavailable("why") when nothing was sent (the next provider is tried),
        # twpcore.kinds.SmsRejected("why") when this message can never pass.
        raise SmsUnavailable("sending is not implemented yet")
''',
        "imports": ("SmsMessage", "SmsProviderConfig", "SmsSent", "SmsUnavailable"),
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
    values = {
        "name": name, "module": module, "kind": kind, "kind_label": spec["label"], "base": spec["base"],
        "hook": spec["hook"], "port": str(spec["port"]), "capabilities": spec["capabilities"],
        "class_name": "".join(part.capitalize() for part in re.split(r"[-_]", name)) + spec["base"],
        "extra": spec.get("extra", ""), "test_config": repr(config), "config_example": toml_example(config),
        "kind_imports": ", ".join(sorted({spec["base"], "NotReady", *spec.get("imports", ())})),
        "stdlib_imports": "".join(f"\n{line}" for line in spec.get("stdlib_imports", ())) + ("\n" if spec.get("stdlib_imports") else ""),
        "config_decorator": spec.get("config_decorator", "@attrs.frozen"), "config_base": spec.get("config_base", ""),
        "kind_value": spec["kind_value"], "table_path": ".".join(spec["table"](name)),
        "bad_config": repr(with_option(config, spec["table"](name), "port", 0)),
        "description": f"{name} {spec['label']}",
    }

    def render(template: str) -> str:
        text = (TEMPLATE / template).read_text(encoding="utf-8")
        return re.sub(r"{{(\w+)}}", lambda m: values[m.group(1)], text)

    (target / module).mkdir(parents=True)
    (target / "tests").mkdir()
    (target / "pyproject.toml").write_text(render("pyproject.toml.tmpl"))
    (target / "README.md").write_text(render("README.md.tmpl"))
    (target / module / "__init__.py").write_text(f'"""TWP {spec["label"]} plugin {name}."""\n')
    (target / module / "plugin.py").write_text(render("plugin.py.tmpl"))
    (target / "tests" / f"test_{module}.py").write_text(render("test_plugin.py.tmpl"))
    return target
