"""The LDAP auth method (guide 6.3) against a real slapd: binds, refusals, hostile user names,
StartTLS and LDAPS, lock-out and the order of methods.

Where a test must know whether slapd was asked at all, the method talks to slapd through
a TCP relay that counts connections.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from ldap3.utils.dn import escape_rdn

from twp_ldap.auth import bind_dn
from twpcore.auth import token_digest
from twpcore.store import schema as t
from twpcore.testing.servers import SlapdServer, find_free_port, make_test_certificates

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"


SPECIAL = 'x,+"\\<>;=#y'
"""A real uid made of every DN special character."""


def person(uid: str, password: str) -> tuple[str, dict[str, Any]]:
    return f"uid={escape_rdn(uid)},{PEOPLE}", {"objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
                                   "uid": uid, "cn": uid, "sn": uid, "userPassword": password}


@pytest.fixture(scope="module")
def slapd() -> Any:
    with SlapdServer(
        suffix=SUFFIX, entries=[person("alice", "alice-ldap-pw"), person("bob", "bob-ldap-pw"), person(SPECIAL, "special-ldap-pw")]
    ) as server:
        yield server


async def ldap_world(twp_app, slapd, chain="LDAP", port=None, config=None):
    server = await twp_app(config=config)
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    for login in ("alice", "bob", "carol"):
        await admin.create("users", domain_id=domain["id"], login=login, password="local-tws-password")
    host, _, ldap_port = slapd.url.removeprefix("ldap://").partition(":")
    for name, value in (
        ("AuthMethods", chain),
        ("AuthLdapServer", host),
        ("AuthLdapPort", str(port or ldap_port)),
        ("AuthLdapDn", f"uid=?,{PEOPLE}"),
    ):
        await admin.create("parameter_values", name=name, scope="domain", scope_id=domain["id"], value=value)
    return server, admin


async def audit_reasons(server):
    rows = server.run(
        lambda c: c.execute(sa.select(t.audit_log.c.detail).where(t.audit_log.c.action == "login_failed").order_by(t.audit_log.c.id)).scalars().all()
    )
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


HOSTILE = ["*)(uid=*", "*)(|(uid=*", "*", "alice,ou=people", "alice)(|(uid=*", "\\00", "alice\\00", "\\2a", ',+"\\<>;=#',
           "alice+uid=bob", "uid=alice," + PEOPLE, "#alice", "\x00alice", "alice\x00", "a" * 201, "a" * 5000]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_user_names_never_bind_as_someone_else(twp_app, slapd, hostile):
    server, admin = await ldap_world(twp_app, slapd, config={"auth": {"lockout_threshold": 0, "lockout_address_threshold": 0}})
    domain = (await admin.get("/api/v1/domains"))["items"][0]["id"]
    refused_by_api = len(hostile) > 200 or "\x00" in hostile
    if not refused_by_api:
        server.add_user(domain, hostile, "local-tws-password")  # a TWP user by that name exists: only LDAP stands in the way
    for password in ("alice-ldap-pw", "bob-ldap-pw", "special-ldap-pw", "*", "local-tws-password"):
        answer = await server.login(hostile, password, status=400 if refused_by_api else 401)
        assert answer.info["field" if refused_by_api else "detail"] == ("login" if refused_by_api else "invalid login or password")
    if not refused_by_api:
        assert all("refused the bind" in r for r in await audit_reasons(server)), await audit_reasons(server)


async def test_a_user_name_made_of_dn_specials_binds_as_itself_only(twp_app, slapd):
    server, admin = await ldap_world(twp_app, slapd)
    domain = (await admin.get("/api/v1/domains"))["items"][0]["id"]
    server.add_user(domain, SPECIAL, "local-tws-password")
    me = await server.login(SPECIAL, "special-ldap-pw")
    assert me.info["method"] == "LDAP" and me.info["user"]["login"] == SPECIAL
    await server.login(SPECIAL, "alice-ldap-pw", status=401)
    await server.login("x", "special-ldap-pw", status=401)


def test_bind_dn_escapes_dn_specials():
    assert bind_dn(f"uid=?,{PEOPLE}", "a,b+c") == f"uid=a\\,b\\+c,{PEOPLE}"
    assert bind_dn("?", "jdoe@corp.example") == "jdoe@corp.example"


# -- whether slapd is asked: a counting relay in front of it ----------------------------

class Relay:
    """A TCP relay to slapd that counts the connections made through it."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.connections = 0
        self.server: Any = None

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def slapd_address(slapd: SlapdServer) -> tuple[str, int]:
    host, _, port = slapd.url.removeprefix("ldap://").partition(":")
    return host, int(port)


async def test_repeated_wrong_ldap_passwords_lock_the_login_and_slapd_is_not_asked_meanwhile(twp_app, slapd):
    async with Relay(*slapd_address(slapd)) as relay:
        server, admin = await ldap_world(twp_app, slapd, port=relay.port, config={"auth": {"lockout_threshold": 3, "lockout_base_delay": "10m"}})
        for _ in range(3):
            await server.login("alice", "not-her-password", status=401)
        asked = relay.connections
        assert asked == 3
        locked = await server.login("alice", "alice-ldap-pw", status=429)
        assert locked.info["error"] == "locked_out"
        assert relay.connections == asked  # the right password never reached slapd
        users = await admin.get("/api/v1/users", params={"login": "alice"})
        await admin.post(f"/api/v1/users/{users['items'][0]['id']}/unlock", status=200)
        await server.login("alice", "alice-ldap-pw")
        assert relay.connections == asked + 1


@pytest.mark.parametrize("chain, password, status, method, slapd_asked", [
    ("LDAP|TWS", "alice-ldap-pw", 200, "LDAP", True),
    ("LDAP|TWS", "local-tws-password", 401, None, True),  # LDAP refused: TWS is not asked
    ("TWS|LDAP", "local-tws-password", 200, "TWS", False),
    ("TWS|LDAP", "alice-ldap-pw", 401, None, False),  # TWS refused: LDAP is not asked
])
async def test_the_order_of_methods_decides_which_password_counts(twp_app, slapd, chain, password, status, method, slapd_asked):
    async with Relay(*slapd_address(slapd)) as relay:
        server, _ = await ldap_world(twp_app, slapd, chain=chain, port=relay.port)
        me = await server.login("alice", password, status=status)
        assert me.info.get("method") == method
        assert (relay.connections > 0) == slapd_asked


async def test_an_ldap_token_expires_like_any_other(twp_app, slapd):
    server, _ = await ldap_world(twp_app, slapd)
    alice = await server.login("alice", "alice-ldap-pw")
    server.run(lambda c: c.execute(sa.update(t.tokens).where(t.tokens.c.token_hash == token_digest(alice.token))
                                   .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))))
    answer = await alice.call("GET", "/api/v1/me")
    assert alice.last_status == 401 and answer["detail"] == "token expired; log in again"
    await alice.post("/api/v1/auth/refresh", status=401)


# -- StartTLS and LDAPS ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_slapd() -> Any:
    with SlapdServer(suffix=SUFFIX, entries=[person("alice", "alice-ldap-pw")], tls=True) as server:
        yield server


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
async def test_ldap_over_tls_with_the_servers_ca(twp_app, tls_slapd, security):
    port = tls_slapd.ldaps_port if security == "ldaps" else None
    config = {"auth": {"methods": {"LDAP": {"security": security, "ca_file": str(tls_slapd.ca_file)}}}}
    server, _ = await ldap_world(twp_app, tls_slapd, port=port, config=config)
    assert (await server.login("alice", "alice-ldap-pw")).info["method"] == "LDAP"
    await server.login("alice", "wrong-password", status=401)
    assert any("refused the bind of uid=alice" in r for r in await audit_reasons(server))


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
async def test_a_certificate_from_another_ca_is_refused_and_the_audit_says_why(twp_app, tls_slapd, security, tmp_path):
    other_ca = make_test_certificates(tmp_path / "other").ca_file
    port = tls_slapd.ldaps_port if security == "ldaps" else None
    config = {"auth": {"methods": {"LDAP": {"security": security, "ca_file": str(other_ca)}}}}
    server, _ = await ldap_world(twp_app, tls_slapd, port=port, config=config)
    answer = await server.login("alice", "alice-ldap-pw", status=401)
    assert answer.info["detail"] == "invalid login or password"
    (reason,) = await audit_reasons(server)
    assert f"TLS ({security}) failed" in reason and "CERTIFICATE_VERIFY_FAILED" in reason and str(other_ca) in reason, reason
    assert "alice-ldap-pw" not in reason


async def test_starttls_never_falls_back_to_clear_text(twp_app, slapd):
    # The plain slapd offers no StartTLS: the password must not be sent anyway.
    server, _ = await ldap_world(twp_app, slapd, config={"auth": {"methods": {"LDAP": {"security": "starttls"}}}})
    await server.login("alice", "alice-ldap-pw", status=401)
    (reason,) = await audit_reasons(server)
    assert "TLS (starttls) failed" in reason, reason
