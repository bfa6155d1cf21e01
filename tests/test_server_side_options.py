"""Options that reach the server's own resources (admin guide 15, issue 11): only super users and twp.toml set them.

Company A's administrator (limited to A) tries, through the API, what the issue's
attacker did: a ``sql`` directory over the store's own SQLite file, a ``files``
directory on ``/etc/passwd``, options written ``{ env = "VAR" }``.  Every server-side
option of every installed connector type is tried the same way, from the examples its
``Config`` declares, so a connector installed later is covered by its own declaration.
A super user may set such options, but no answer ever repeats a file's text or a value
read from the environment, and nobody reaches the store's own database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest

from twpcore.hookspecs import hookimpl
from twpcore.kinds import DirectoryConnector, Kind
from twpcore.schema import setting
from twpcore.server_side import ServerSide, declared

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")

PROBE = "probe-value-4711-from-the-environment"
"""What the test's environment variable holds: it must never come back in an answer."""
# First-party options that must be declared server-side, by connector type, when their plugin is installed.
EXPECTED = {"sql": {"url"}, "files": {"path"}, "odbc": {"connection_string", "dsn"}, "ldap": {"ca_file"},
            "active_directory": {"ca_file"}, "google": {"service_account_file"}}
# A field name that says "a path on the server": such a field must declare server_side, in any plugin kind.
PATH_LIKE = re.compile(r"^path$|(^|_)(file|dir|keytab|dsn|socket|cert|certificate)($|_)")


@attrs.frozen
class Socket:
    path: str = setting(help="a unix socket", server_side=ServerSide("a socket on the server", local=("/run/x.sock",)))
    timeout: int = setting(5, help="seconds")


@attrs.frozen
class ThirdPartyConfig:
    """A connector written outside TWP: it only declares its options, and gets the rule."""

    endpoint: str = setting(help="https URL of the service")
    cache_dir: str = setting("", help="where to keep a cache", server_side=True)
    sockets: list[Socket] = setting(factory=list, help="local sockets to try")


class ThirdParty(DirectoryConnector):
    type_name = "third_party"
    Config = ThirdPartyConfig
    capabilities = frozenset({"sync"})


class ThirdPartyPlugin:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(ThirdParty)


@pytest.fixture
async def site(twp_app: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Company A with a domain, its limited admin, and a super user."""
    monkeypatch.setenv("TWP_PROBE", PROBE)
    server = await twp_app(plugins=[("third-party", ThirdPartyPlugin())])
    root = await server.admin()
    company = (await root.create("companies", name="Alpha"))["id"]
    domain = (await root.create("domains", company_id=company, name="Paris"))["id"]
    limited = await server.admin(super_user=False, companies=(company,))
    return {"server": server, "root": root, "limited": limited, "company": company, "domain": domain, "n": 0}


async def create(site: dict[str, Any], who: str, connector: str, options: dict[str, Any], **more: Any) -> tuple[int, Any]:
    """POST a directory as ``who`` ("limited" or "root"); return the status and the answer."""
    site["n"] += 1
    client = site[who]
    body = {"domain_id": site["domain"], "name": f"{connector} {site['n']}", "connector": connector, "type": "draft", "options": options, **more}
    answer = await client.call("POST", "/api/v1/directories", body)
    return client.last_status, answer


def assert_refused(status: int, answer: Any, option: str, *phrases: str) -> None:
    assert status == 403, (option, status, answer)
    assert answer["field"] == f"options.{option}" and answer["detail"].startswith(f"options.{option}: "), answer
    for phrase in phrases:
        assert phrase in answer["detail"], (phrase, answer)


def store_file(site: dict[str, Any]) -> str:
    url = site["server"].kernel.store.url
    assert url.startswith("sqlite:///"), url
    return url.removeprefix("sqlite:///")


async def test_every_server_side_option_of_every_connector_is_refused_to_a_limited_admin(site):
    types = site["server"].kernel.plugins.types[Kind.DIRECTORY_CONNECTOR]
    declared_options: dict[str, set[str]] = {}
    for name, rec in sorted(types.items()):
        for field in attrs.fields(rec.cls.Config):
            option = field.alias or field.name
            # Any option written { env = "VAR" } reads the server's environment.
            status, answer = await create(site, "limited", name, {option: {"env": "TWP_PROBE"}})
            assert_refused(status, answer, option, "only a super user or twp.toml may set a server-side option", "environment variable")
            rule = declared(field)
            if rule is None:
                continue
            declared_options.setdefault(name, set()).add(option)
            assert rule.local, f"{name}.{option}: a server-side option gives example values (ServerSide.local)"
            for value in rule.local:
                status, answer = await create(site, "limited", name, {option: value})
                assert_refused(status, answer, option, "only a super user or twp.toml may set a server-side option")
            for value in rule.network:
                status, answer = await create(site, "limited", name, {option: value})
                assert status != 403, (name, option, value, answer)
    for name, options in EXPECTED.items():
        if name in types:
            assert options <= declared_options.get(name, set()), f"{name}: {options - declared_options.get(name, set())} not declared server-side"
    # A third-party connector gets the rule from its declaration alone, nested tables included.
    status, answer = await create(site, "limited", "third_party", {"endpoint": "https://x.example.com", "cache_dir": "/var/cache/x"})
    assert_refused(status, answer, "cache_dir", "a path on the server")
    status, answer = await create(site, "limited", "third_party", {"endpoint": "https://x.example.com", "sockets": [{"path": "/run/x.sock"}]})
    assert_refused(status, answer, "sockets[0].path", "a socket on the server")
    status, answer = await create(site, "limited", "third_party", {"endpoint": "https://x.example.com", "sockets": [{"path": "", "timeout": 3}]})
    assert status == 201, answer
    # The same options are the super user's to set.
    status, answer = await create(site, "root", "third_party", {"endpoint": "https://x.example.com", "cache_dir": "/var/cache/x"})
    assert status == 201, answer
    # Directories are the only plugin instances the API creates; users imports build theirs from fixed fields.
    doc = await site["root"].get("/api/v1/openapi.json")
    takers = sorted(f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method, op in ops.items()
                    if "options" in op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("properties", {}))
    # Another API taking plugin options must apply twpcore.server_side.check_options, and be added here.
    assert takers == ["PATCH /api/v1/directories/{id}", "POST /api/v1/directories"]
    answer = await site["limited"].call(
        "POST",
        "/api/v1/user-imports",
        {
            "domain_id": site["domain"],
            "name": "LDAP",
            "source": "ldap",
            "host": "dc.example.com",
            "base_dn": "dc=example,dc=com",
            "ca_file": "/etc/passwd",
        },
    )
    assert site["limited"].last_status == 403 and answer["field"] == "ca_file", answer


async def test_every_plugin_option_naming_a_path_declares_it_server_side(site):
    """A convention every kind's types keep (drivers, auth methods, SMS providers too): a file option is marked."""
    unmarked = []
    for kind, types in site["server"].kernel.plugins.types.items():
        for name, rec in types.items():
            for field in attrs.fields(rec.cls.Config):
                if PATH_LIKE.search(field.name) and declared(field) is None and typing.get_type_hints(rec.cls.Config).get(field.name) is not bool:
                    unmarked.append(f"{kind.value} {name}: {field.name}")
    assert unmarked == []


async def test_the_store_file_attack_of_the_issue_is_refused_to_everyone(site):
    path = store_file(site)
    query = "SELECT login AS last_name, password_hash AS note FROM admins"
    spellings = [f"sqlite:///{path}", f"sqlite:///{Path(path).parent}/./../{Path(path).parent.name}/{Path(path).name}",
                 f"sqlite:///file:{path}?mode=ro&uri=true"]
    for url in spellings:
        for who in ("limited", "root"):
            status, answer = await create(site, who, "sql", {"url": url, "query": query}, type="public")
            assert_refused(status, answer, "url", "the TWP store's own database")
    # ... and through the files connector, which would read it as text.
    for who in ("limited", "root"):
        status, answer = await create(site, who, "files", {"path": path})
        assert_refused(status, answer, "path", "the TWP store's own database")
    made = (await site["root"].get("/api/v1/directories"))["items"]
    assert [d for d in made if d["connector"] in ("sql", "files")] == []


@pytest.mark.parametrize("twp_db_url", ["postgresql"], indirect=True)
async def test_a_postgresql_store_is_refused_under_its_url_and_loopback_spellings(site):
    store = site["server"].kernel.store.engine.url
    for host in (store.host, "localhost", "127.0.0.1"):
        url = store.set(host=host).render_as_string(hide_password=False)
        status, answer = await create(site, "root", "sql", {"url": url, "table": "users"})
        assert_refused(status, answer, "url", "the TWP store's own database")
    status, answer = await create(site, "limited", "sql", {"url": f"postgresql+psycopg://crm@127.0.0.1:{store.port}/crm", "table": "contacts"})
    assert_refused(status, answer, "url", "a database on the server itself")


async def test_a_limited_admin_gives_network_endpoints_and_keeps_what_a_super_user_set(site, tmp_path):
    status, answer = await create(site, "limited", "sql", {"url": "postgresql+psycopg://crm@db.example.com/crm", "table": "contacts"}, type="public")
    assert status == 201, answer
    for local in ("sqlite:////srv/crm.db", "postgresql+psycopg://crm@localhost/crm", "postgresql+psycopg://crm@/crm?host=/var/run/postgresql"):
        status, answer = await create(site, "limited", "sql", {"url": local, "table": "contacts"}, type="public")
        assert_refused(status, answer, "url", "super user")
    if "ldap" in site["server"].kernel.plugins.types[Kind.DIRECTORY_CONNECTOR]:
        status, answer = await create(site, "limited", "ldap", {"url": "ldaps://dc.example.com", "base_dn": "dc=example,dc=com"}, type="public")
        assert status == 201, answer
    # A file directory a super user made for company A: its admin may tune it, not move it.
    csv = tmp_path / "contacts.csv"
    csv.write_text("last_name;phone\nDupont;0155171889\n", encoding="utf-8")
    status, made = await create(site, "root", "files", {"path": str(csv)}, type="public")
    assert status == 201, made
    changed = await site["limited"].patch(f"/api/v1/directories/{made['id']}", {"options": {"path": str(csv), "delimiter": ";"}})
    assert changed["options"] == {"path": str(csv), "delimiter": ";"}
    answer = await site["limited"].call("PATCH", f"/api/v1/directories/{made['id']}", {"options": {"path": "/etc/passwd"}})
    assert_refused(site["limited"].last_status, answer, "path", "a path on the server")
    assert (await site["root"].get(f"/api/v1/directories/{made['id']}"))["options"]["path"] == str(csv)


async def test_files_on_etc_passwd_is_refused_to_a_limited_admin_and_its_test_never_echoes_the_file(site):
    status, answer = await create(site, "limited", "files", {"path": "/etc/passwd"}, type="public")
    assert_refused(status, answer, "path", "a path on the server")
    status, made = await create(site, "root", "files", {"path": "/etc/passwd"}, type="public")
    assert status == 201, made
    lines = Path("/etc/passwd").read_text().splitlines()
    answer = await site["root"].post(f"/api/v1/directories/{made['id']}/test")
    text = json.dumps(answer)
    assert answer["ok"] is True and "/etc/passwd: " in answer["message"], answer
    assert not any(line in text for line in lines) and "root:" not in text and "/bin/" not in text, answer
    # A key column that is not there is named without listing the file's first line.
    await site["root"].patch(f"/api/v1/directories/{made['id']}", {"options": {"path": "/etc/passwd", "key_column": "nope"}})
    report = await site["root"].post(f"/api/v1/directories/{made['id']}/sync")
    assert report["status"] == "failed" and "key_column 'nope'" in report["error"] and "root:" not in report["error"], report


@pytest.mark.skipif(importlib.util.find_spec("twp_sql") is None, reason="the sql connector (twp-sql) is not installed")
async def test_env_references_are_refused_to_a_limited_admin_and_their_values_never_come_back(site, monkeypatch, tmp_path):
    home = os.environ["HOME"]
    answers = []
    for option, value in (("url", {"env": "HOME"}), ("table", {"env": "TWP_PROBE"})):
        options = {"url": "postgresql+psycopg://crm@db.example.com/crm", "table": "contacts", option: value}
        status, answer = await create(site, "limited", "sql", options, type="public")
        assert_refused(status, answer, option, "environment variable")
        answers.append(answer)
    # A super user may: the values are used, never shown, whatever the connector or the option check says.
    missing = tmp_path / "nowhere-4711" / "crm.db"
    monkeypatch.setenv("TWP_PROBE_URL", f"sqlite:///{missing}")
    status, made = await create(site, "root", "sql", {"url": {"env": "TWP_PROBE_URL"}, "table": "contacts"}, type="public")
    assert status == 201, made
    answers += [made, await site["root"].post(f"/api/v1/directories/{made['id']}/test"),
                await site["root"].post(f"/api/v1/directories/{made['id']}/sync"), await site["root"].get(f"/api/v1/directories/{made['id']}")]
    assert answers[-3]["ok"] is False and answers[-2]["status"] == "failed", answers[-3:]
    assert answers[-1]["options"]["url"] == {"env": "TWP_PROBE_URL"}
    status, answer = await create(site, "root", "files", {"path": str(tmp_path / "x.csv"), "delimiter": {"env": "TWP_PROBE"}})
    assert status == 422 and answer["field"] == "options", answer
    answers.append(answer)
    status, made = await create(site, "root", "files", {"path": {"env": "HOME"}}, type="public")
    assert status == 201, made
    answers.append(await site["root"].post(f"/api/v1/directories/{made['id']}/test"))
    assert answers[-1]["ok"] is False, answers[-1]
    text = json.dumps(answers)
    for value in (home, PROBE, str(missing), "nowhere-4711"):
        assert len(value) < 4 or value not in text, (value, answers)
