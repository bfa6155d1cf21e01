"""The LDAP auth method (guide 6.3) against a real slapd: binds, refusals, hostile user names."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from twpcore.store import schema as t
from twpcore.testing.servers import SlapdServer, find_free_port
from twp_ldap.auth import bind_dn

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"


def person(uid: str, password: str) -> tuple[str, dict[str, Any]]:
    return f"uid={uid},{PEOPLE}", {"objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
                                   "uid": uid, "cn": uid, "sn": uid, "userPassword": password}


@pytest.fixture(scope="module")
def slapd() -> Any:
    with SlapdServer(suffix=SUFFIX, entries=[person("alice", "alice-ldap-pw"), person("bob", "bob-ldap-pw")]) as server:
        yield server


async def ldap_world(twp_app, slapd, chain="LDAP", port=None):
    server = await twp_app()
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    for login in ("alice", "bob", "carol"):
        await admin.create("users", domain_id=domain["id"], login=login, password="local-tws-password")
    host, _, ldap_port = slapd.url.removeprefix("ldap://").partition(":")
    for name, value in (("AuthMethods", chain), ("AuthLdapServer", host), ("AuthLdapPort", str(port or ldap_port)), ("AuthLdapDn", f"uid=?,{PEOPLE}")):
        await admin.create("parameter_values", name=name, scope="domain", scope_id=domain["id"], value=value)
    return server, admin


async def audit_reasons(server):
    rows = server.run(lambda c: c.execute(sa.select(t.audit_log.c.detail).where(t.audit_log.c.action == "login_failed").order_by(t.audit_log.c.id)).scalars().all())
    return [r["reason"] for r in rows]


async def test_ldap_password_logs_in_and_refusals_look_alike(twp_app, slapd):
    server, _ = await ldap_world(twp_app, slapd)
    alice = await server.login("alice", "alice-ldap-pw")
    assert (await alice.get("/api/v1/me"))["login"] == "alice"
    wrong = await server.login("alice", "nope", status=401)
    unknown = await server.login("mallory", "alice-ldap-pw", status=401)
    no_entry = await server.login("carol", "anything", status=401)  # a TWP user with no LDAP entry
    empty = await server.login("bob", "", status=401)  # never an anonymous bind
    assert {c.info["detail"] for c in (wrong, unknown, no_entry, empty)} == {"invalid login or password"}
    reasons = await audit_reasons(server)
    assert any("refused the bind of uid=alice" in r for r in reasons) and any("anonymous bind" in r for r in reasons)


async def test_a_local_tws_password_does_not_open_an_ldap_account(twp_app, slapd):
    server, _ = await ldap_world(twp_app, slapd, chain="LDAP|TWS")
    # LDAP recognised the password request and refused it: TWS is not asked (no fall-through to a weaker method).
    await server.login("alice", "local-tws-password", status=401)
    await server.login("alice", "alice-ldap-pw")


async def test_a_disabled_user_is_refused_even_with_the_right_ldap_password(twp_app, slapd):
    server, admin = await ldap_world(twp_app, slapd)
    users = await admin.get("/api/v1/users", params={"login": "bob"})
    await admin.patch(f"/api/v1/users/{users['items'][0]['id']}", {"enabled": False})
    await server.login("bob", "bob-ldap-pw", status=403)


async def test_an_unreachable_ldap_server_refuses_and_says_why_in_the_audit(twp_app, slapd):
    server, _ = await ldap_world(twp_app, slapd, port=find_free_port())
    err = await server.login("alice", "alice-ldap-pw", status=401)
    assert err.info["detail"] == "invalid login or password"
    assert any("unreachable" in r for r in await audit_reasons(server))


@pytest.mark.parametrize("hostile", ["*)(uid=*", "*", "alice,ou=people", "alice)(|(uid=*", "\x00alice", "uid=alice," + PEOPLE, "a" * 5000, "#alice"])
async def test_hostile_user_names_never_bind_as_someone_else(twp_app, slapd, hostile):
    server, admin = await ldap_world(twp_app, slapd)
    domain = (await admin.get("/api/v1/domains"))["items"][0]["id"]
    if len(hostile) <= 200 and "\x00" not in hostile:  # the API refuses the others itself
        server.add_user(domain, hostile, "local-tws-password")
    await server.login(hostile[:200] if len(hostile) > 200 else hostile, "alice-ldap-pw", status=(400, 401) if "\x00" in hostile or len(hostile) > 200 else 401)


def test_bind_dn_escapes_dn_specials():
    assert bind_dn(f"uid=?,{PEOPLE}", "a,b+c") == f"uid=a\\,b\\+c,{PEOPLE}"
    assert bind_dn("?", "jdoe@corp.example") == "jdoe@corp.example"
