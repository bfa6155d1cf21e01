"""WindowsSecurity (guide 6.2) against a real MIT KDC, through the HTTP API as a client sees it.

Clients get tickets with kinit (k5test) and build Negotiate tokens with pyspnego, as
``curl --negotiate`` or a browser would; NTLM accounts come from a user file.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from typing import Any

import aiohttp
import pytest
import spnego
import sqlalchemy as sa

import twpcore.auth
from twpcore.store import schema as t

NEGOTIATE = "/api/v1/auth/negotiate"
TWS_PASSWORD = "local-tws-password"
KRB_PASSWORDS = {"alice": "alice-krb-pw-1", "bob": "bob-krb-pw-2", "carol": "carol-krb-pw-3"}
NTLM_USERS = "TWP:alice:alice-nt-pw\n:dave:dave-nt-pw\n"


@pytest.fixture(scope="module")
def realm(kdc: Any) -> Any:
    for name, password in KRB_PASSWORDS.items():
        kdc.add_user(name, password)
    return kdc


def method_config(realm: Any, **options: Any) -> dict[str, Any]:
    return {"keytab": realm.keytab, "service_principal": "HTTP/localhost", **options}


async def world(twp_app: Any, realm: Any, chain: str = "WindowsSecurity|TWS", *, method: dict | None = None, auth: dict | None = None,
                logins: tuple[str, ...] = ("alice", "bob")) -> tuple[Any, Any, dict]:
    """A server with WindowsSecurity configured, company ACME, domain Paris and TWP users with a TWS password."""
    options = method_config(realm) if method is None else method
    server = await twp_app(config={"auth": {**(auth or {}), "methods": {"WindowsSecurity": options}}})
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris")
    for login in logins:
        await admin.create("users", domain_id=paris["id"], login=login, password=TWS_PASSWORD)
    await admin.create("parameter_values", name="AuthMethods", scope="domain", scope_id=paris["id"], value=chain)
    return server, admin, paris


def kerberos_client(realm: Any, user: str, service: str = "HTTP") -> Any:
    """A Negotiate (SPNEGO) client with the user's ticket, for HTTP/localhost."""
    return spnego.client(spnego.KerberosCCache(ccache=realm.kinit(user)), hostname="localhost", service=service, protocol="negotiate")


def b64(token: bytes) -> str:
    return base64.b64encode(token).decode()


async def post_negotiate(http: Any, value: str | None) -> tuple[int, dict, str]:
    """POST /auth/negotiate with ``Authorization: <value>``; (status, JSON, WWW-Authenticate)."""
    headers = {"Authorization": value} if value is not None else {}
    resp = await http.post(NEGOTIATE, headers=headers)
    return resp.status, await resp.json(), resp.headers.get("WWW-Authenticate", "")


async def negotiate(server: Any, ctx: Any) -> tuple[int, dict, str]:
    return await post_negotiate(server.client, "Negotiate " + b64(ctx.step()))


async def failures(server: Any) -> list[dict]:
    return server.run(lambda c: [dict(r._mapping) for r in c.execute(
        sa.select(t.audit_log.c.actor, t.audit_log.c.detail).where(t.audit_log.c.action == "login_failed").order_by(t.audit_log.c.id))])


async def me(server: Any, token: str) -> tuple[int, dict]:
    resp = await server.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


# -- Kerberos -----------------------------------------------------------------------------

async def test_a_kerberos_ticket_logs_in_and_the_server_proves_itself(twp_app, realm):
    server, _, paris = await world(twp_app, realm)
    status, body, challenge = await post_negotiate(server.client, None)
    assert (status, challenge, body["error"]) == (401, "Negotiate", "negotiate_required")

    client = kerberos_client(realm, "alice")
    status, body, final = await negotiate(server, client)
    assert status == 200, body
    assert (body["method"], body["principal"], body["protocol"], body["token_type"]) == ("WindowsSecurity", "alice@TWP.TEST", "kerberos", "Bearer")
    assert body["user"]["login"] == "alice" and body["user"]["domain_id"] == paris["id"]
    # Mutual authentication: the client accepts the server's final token, proving the server holds the key.
    assert final.startswith("Negotiate ") and not client.complete
    client.step(base64.b64decode(final.removeprefix("Negotiate ")))
    assert client.complete
    assert (await me(server, body["token"]))[1]["login"] == "alice"
    logins = server.run(lambda c: c.execute(sa.select(t.audit_log.c.detail).where(t.audit_log.c.action == "login")).scalars().all())
    assert logins == [{"method": "WindowsSecurity", "reason": "kerberos alice@TWP.TEST"}]
    by_password = await server.login("alice", KRB_PASSWORDS["alice"])
    assert set(body) == set(by_password.info) | {"principal", "protocol"}  # the answer of /auth/login, plus two keys


async def test_a_replayed_kerberos_token_is_refused(twp_app, realm):
    server, _, _ = await world(twp_app, realm)
    token = "Negotiate " + b64(kerberos_client(realm, "bob").step())
    assert (await post_negotiate(server.client, token))[0] == 200
    status, body, challenge = await post_negotiate(server.client, token)
    assert (status, body["error"], challenge) == (401, "login_failed", "Negotiate")
    assert "Kerberos refused the ticket: a replay" in (await failures(server))[-1]["detail"]["reason"]


async def test_a_ticket_for_another_service_is_refused(twp_app, realm):
    host = f"elsewhere-{uuid.uuid4().hex[:8]}"
    realm.kadmin(f"addprinc -randkey HTTP/{host}@{realm.realm_name}")
    server, _, _ = await world(twp_app, realm)
    other = spnego.client(spnego.KerberosCCache(ccache=realm.kinit("alice")), hostname=host, service="HTTP", protocol="negotiate")
    status, body, _ = await negotiate(server, other)
    assert (status, body["error"]) == (401, "login_failed")


async def test_unknown_disabled_and_not_allowed_users_are_told_why(twp_app, realm):
    server, admin, _paris = await world(twp_app, realm)
    status, body, _ = await negotiate(server, kerberos_client(realm, "carol"))  # a Kerberos account, no TWP user
    assert (status, body["error"]) == (401, "login_failed")
    assert body["detail"] == "kerberos authenticated carol@TWP.TEST, but no TWP user has the login 'carol'; an administrator must create or import it"

    bob = (await admin.get("/api/v1/users", params={"login": "bob"}))["items"][0]
    await admin.patch(f"/api/v1/users/{bob['id']}", {"enabled": False})
    status, body, _ = await negotiate(server, kerberos_client(realm, "bob"))
    assert (status, body["error"]) == (403, "user_disabled")

    alice = (await admin.get("/api/v1/users", params={"login": "alice"}))["items"][0]
    await admin.create("parameter_values", name="AuthMethods", scope="user", scope_id=alice["id"], value="TWS")
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["error"]) == (403, "auth_method_not_allowed")
    assert "may not log in with WindowsSecurity: its AuthMethods is 'TWS'" in body["detail"]
    assert [f["actor"] for f in await failures(server)] == ["user:carol", "user:bob", "user:alice"]


# -- realms ---------------------------------------------------------------------------------

async def test_realm_kept_in_the_login(twp_app, realm):
    server, _, _ = await world(twp_app, realm, method=method_config(realm, realm_handling="keep"), logins=("alice", "alice@TWP.TEST"))
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["user"]["login"]) == (200, "alice@TWP.TEST")
    assert (await server.login("alice@TWP.TEST", KRB_PASSWORDS["alice"])).info["method"] == "WindowsSecurity"


async def test_realm_mapped_to_a_domain_picks_the_user_of_that_domain(twp_app, realm):
    method = method_config(realm, realm_handling="domain", realm_domains={"TWP.TEST": "ACME/Lyon"})
    server, admin, paris = await world(twp_app, realm, method=method)
    lyon = await admin.create("domains", company_id=paris["company_id"], name="Lyon")
    await admin.create("users", domain_id=lyon["id"], login="alice")
    await admin.create("parameter_values", name="AuthMethods", scope="domain", scope_id=lyon["id"], value="WindowsSecurity")
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["user"]["domain_id"]) == (200, lyon["id"])
    # The pop-up way: Lyon's alice's password is checked in the realm mapped to Lyon.
    by_password = await server.login("alice", KRB_PASSWORDS["alice"], domain="ACME/Lyon")
    assert (by_password.info["method"], by_password.info["user"]["domain_id"]) == ("WindowsSecurity", lyon["id"])


async def test_strip_with_the_login_in_two_domains_asks_for_a_realm_mapping(twp_app, realm):
    server, admin, paris = await world(twp_app, realm)
    lyon = await admin.create("domains", company_id=paris["company_id"], name="Lyon")
    await admin.create("users", domain_id=lyon["id"], login="alice")
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["error"]) == (409, "ambiguous_login") and "realm_domains" in body["detail"]


async def test_a_realm_not_accepted_is_refused(twp_app, realm):
    server, _, _ = await world(twp_app, realm, method=method_config(realm, realms=["CORP.EXAMPLE.COM"]))
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["error"]) == (401, "login_failed")
    assert "realm TWP.TEST is not accepted here (accepted: CORP.EXAMPLE.COM)" in body["detail"]


# -- passwords (guide 6.2.2, with the pop-up) ---------------------------------------------------

async def test_a_kerberos_password_logs_in_and_a_wrong_one_is_final(twp_app, realm):
    server, _, _ = await world(twp_app, realm, chain="WindowsSecurity|TWS")
    alice = await server.login("alice", KRB_PASSWORDS["alice"])
    assert alice.info["method"] == "WindowsSecurity"
    # The KDC refuses it: final, TWS is not asked, so the local TWS password does not open the account.
    wrong = await server.login("alice", TWS_PASSWORD, status=401)
    assert wrong.info["detail"] == "invalid login or password"
    assert "KDC refused the password of alice@TWP.TEST" in (await failures(server))[-1]["detail"]["reason"]
    unknown = await server.login("mallory", KRB_PASSWORDS["alice"], status=401)
    assert unknown.info["detail"] == "invalid login or password"


async def test_with_tws_first_the_tws_password_decides(twp_app, realm):
    server, _, _ = await world(twp_app, realm, chain="TWS|WindowsSecurity")
    assert (await server.login("alice", TWS_PASSWORD)).info["method"] == "TWS"
    await server.login("alice", KRB_PASSWORDS["alice"], status=401)  # TWS refused it first, and that is final
    # Negotiate still works: the chain lists WindowsSecurity.
    assert (await negotiate(server, kerberos_client(realm, "alice")))[0] == 200


async def test_a_ticket_the_keytab_cannot_verify_refuses_the_password(twp_app, realm):
    """verify_kdc: a password the KDC took is still refused when the keytab cannot check the ticket."""
    host = f"stale-{uuid.uuid4().hex[:8]}"
    keytab = str(realm.tmpdir / f"{host}.keytab")
    realm.kadmin(f"addprinc -randkey HTTP/{host}@{realm.realm_name}")
    realm.kadmin(f"ktadd -k {keytab} HTTP/{host}@{realm.realm_name}")
    realm.kadmin(f"cpw -randkey HTTP/{host}@{realm.realm_name}")  # the KDC's key moved on: the keytab is stale
    method = {"keytab": keytab, "service_principal": f"HTTP/{host}"}
    server, _, _ = await world(twp_app, realm, chain="WindowsSecurity", method=method)
    await server.login("alice", KRB_PASSWORDS["alice"], status=401)
    assert "the keytab cannot verify" in (await failures(server))[-1]["detail"]["reason"]
    # Same store, a server that trusts the KDC blindly: the same password logs in.
    trusting = await twp_app(config={"auth": {"methods": {"WindowsSecurity": {**method, "verify_kdc": False}}}})
    await trusting.login("alice", KRB_PASSWORDS["alice"])


async def test_a_negotiate_token_expires_with_the_token_lifetime(twp_app, realm, monkeypatch):
    server, _, _ = await world(twp_app, realm, auth={"token_lifetime": "60s"})
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(seconds=55) <= expires - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=60)
    assert (await me(server, body["token"]))[0] == 200
    real_now = twpcore.auth.now
    monkeypatch.setattr(twpcore.auth, "now", lambda: real_now() + dt.timedelta(seconds=61))
    status, answer = await me(server, body["token"])
    assert (status, answer["detail"]) == (401, "token expired; log in again")


# -- NTLM -------------------------------------------------------------------------------------------

@pytest.fixture
def ntlm_file(tmp_path: Any) -> str:
    path = tmp_path / "ntlm-users"
    path.write_text(NTLM_USERS)
    return str(path)


def ntlm_client(user: str, password: str) -> Any:
    return spnego.client(user, password, hostname="localhost", service="HTTP", protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)


async def ntlm_world(twp_app: Any, realm: Any, ntlm_file: str, **options: Any) -> Any:
    method = method_config(realm, ntlm=True, ntlm_user_file=ntlm_file, realms=["TWP.TEST", "TWP"], **options)
    server, _, _ = await world(twp_app, realm, method=method, logins=("alice", "dave"))
    return server


async def test_ntlm_logs_in_in_two_legs_on_one_connection(twp_app, realm, ntlm_file):
    server = await ntlm_world(twp_app, realm, ntlm_file)
    for user, password, principal in (("TWP\\alice", "alice-nt-pw", "TWP\\alice"), ("DAVE", "dave-nt-pw", "DAVE")):
        client = ntlm_client(user, password)
        status, body, challenge = await negotiate(server, client)
        assert (status, body["error"]) == (401, "negotiate_continue") and challenge.startswith("Negotiate TlRMTVNTUAAC")  # NTLM CHALLENGE
        status, body, _ = await post_negotiate(server.client, "Negotiate " + b64(client.step(base64.b64decode(challenge[10:]))))
        assert status == 200, body
        # NTLM names are case-insensitive: DAVE logs in as the file's (and TWP's) dave.
        assert (body["protocol"], body["principal"], body["user"]["login"]) == ("ntlm", principal, user.split("\\")[-1].lower())


async def test_ntlm_also_speaks_the_ntlm_scheme(twp_app, realm, ntlm_file):
    """Clients like curl --ntlm answer a WWW-Authenticate: NTLM offer with Authorization: NTLM."""
    server = await ntlm_world(twp_app, realm, ntlm_file)
    resp = await server.client.post(NEGOTIATE)
    assert resp.status == 401 and resp.headers.getall("WWW-Authenticate") == ["Negotiate", "NTLM"]
    client = ntlm_client("TWP\\alice", "alice-nt-pw")
    status, body, challenge = await post_negotiate(server.client, "NTLM " + b64(client.step()))
    assert status == 401 and challenge.startswith("NTLM TlRMTVNTUAAC")
    status, body, _ = await post_negotiate(server.client, "NTLM " + b64(client.step(base64.b64decode(challenge[5:]))))
    assert (status, body["protocol"], body["user"]["login"]) == (200, "ntlm", "alice")
    status, body, _ = await post_negotiate(server.client, "NTLM " + b64(kerberos_client(realm, "alice").step()))
    assert (status, body["error"]) == (400, "bad_negotiate_token")


async def two_legs(http: Any, client: Any, second_http: Any = None) -> tuple[int, dict]:
    status, body, challenge = await post_negotiate(http, "Negotiate " + b64(client.step()))
    assert status == 401 and challenge.startswith("Negotiate ")
    status, body, _ = await post_negotiate(second_http or http, "Negotiate " + b64(client.step(base64.b64decode(challenge[10:]))))
    return status, body


async def test_ntlm_refusals(twp_app, realm, ntlm_file, monkeypatch):
    server = await ntlm_world(twp_app, realm, ntlm_file)
    status, body = await two_legs(server.client, ntlm_client("TWP\\alice", "wrong"))
    assert (status, body["error"]) == (401, "login_failed")
    assert "Invalid NTLM response" in (await failures(server))[-1]["detail"]["reason"]
    status, body = await two_legs(server.client, ntlm_client("TWP\\mallory", "x"))
    assert (status, body["error"]) == (401, "login_failed")
    # Old NTLMv1 responses (a client at LmCompatibilityLevel 1) are refused: only NTLMv2.
    monkeypatch.setenv("LM_COMPAT_LEVEL", "1")
    status, body = await two_legs(server.client, ntlm_client("TWP\\alice", "alice-nt-pw"))
    assert (status, body["error"]) == (401, "login_failed")


async def test_without_domain_controller_the_user_file_checks_passwords_and_negotiate(twp_app, realm, ntlm_file):
    """Guide 6.2.2: no keytab, users declared on the server (the NTLM user file), pop-up or not."""
    method = {"ntlm": True, "ntlm_user_file": ntlm_file, "realms": ["TWP"]}
    server, _, _ = await world(twp_app, realm, method=method, logins=("alice", "dave"))
    assert (await server.login("alice", "alice-nt-pw")).info["method"] == "WindowsSecurity"  # TWP\alice in the file
    assert (await server.login("dave", "dave-nt-pw")).info["method"] == "WindowsSecurity"  # a local account
    await server.login("dave", TWS_PASSWORD, status=401)  # final: TWS is not asked
    assert "NTLM refused the password of dave" in (await failures(server))[-1]["detail"]["reason"]
    assert (await two_legs(server.client, ntlm_client("TWP\\alice", "alice-nt-pw")))[0] == 200
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))  # no keytab: Kerberos is refused
    assert (status, body["error"]) == (401, "login_failed") and "Kerberos needs keytab" in body["detail"]


async def test_ntlm_is_off_unless_configured(twp_app, realm):
    server, _, _ = await world(twp_app, realm)
    status, body, _ = await negotiate(server, ntlm_client("TWP\\alice", "alice-nt-pw"))
    assert (status, body["error"]) == (401, "login_failed") and "NTLM, which is turned off here" in body["detail"]
    # The same inside SPNEGO, offering NTLM only (the client has no Kerberos ticket).
    wrapped = spnego.client("TWP\\alice", "alice-nt-pw", hostname="localhost", service="HTTP", protocol="negotiate",
                            options=spnego.NegotiateOptions.use_negotiate)
    status, body, _ = await negotiate(server, wrapped)
    assert (status, body["error"]) == (401, "login_failed"), body


async def test_an_ntlm_handshake_is_bound_to_its_connection_bounded_and_expires(twp_app, realm, ntlm_file):
    server = await ntlm_world(twp_app, realm, ntlm_file, max_handshakes=1, handshake_timeout=1)
    url = str(server.client.make_url(""))
    async with aiohttp.ClientSession(url) as one, aiohttp.ClientSession(url) as two:
        status, body = await two_legs(one, ntlm_client("TWP\\alice", "alice-nt-pw"), second_http=two)
        assert (status, body["error"]) == (401, "login_failed") and "begun on another connection" in body["detail"]

        first, second = ntlm_client("TWP\\alice", "alice-nt-pw"), ntlm_client("DAVE", "dave-nt-pw")
        _, _, challenge1 = await post_negotiate(one, "Negotiate " + b64(first.step()))
        assert (await two_legs(two, second))[0] == 200  # max_handshakes = 1: this handshake pushed out the first
        status, body, _ = await post_negotiate(one, "Negotiate " + b64(first.step(base64.b64decode(challenge1[10:]))))
        assert status == 401 and "start again" in body["detail"]

        late = ntlm_client("TWP\\alice", "alice-nt-pw")
        _, _, challenge = await post_negotiate(one, "Negotiate " + b64(late.step()))
        await asyncio.sleep(1.5)  # past handshake_timeout
        status, body, _ = await post_negotiate(one, "Negotiate " + b64(late.step(base64.b64decode(challenge[10:]))))
        assert status == 401 and "expired after 1 s" in body["detail"]
        assert (await two_legs(one, ntlm_client("TWP\\alice", "alice-nt-pw")))[0] == 200


# -- garbage and broken set-ups ----------------------------------------------------------------------

@pytest.mark.parametrize(("header", "status", "error"), [
    ("Basic YWxpY2U6cHc=", 401, "negotiate_required"),
    ("Negotiate", 401, "negotiate_required"),
    ("Negotiate not*base64!", 400, "bad_negotiate_token"),
    ("Negotiate " + b64(b"hello"), 401, "login_failed"),  # taken for a raw Kerberos token, which GSSAPI refuses
    ("Negotiate " + b64(b"\x60\x03abc"), 400, "bad_negotiate_token"),
    ("Negotiate " + b64(b"\x60" + bytes(range(256)) * 4), 401, "login_failed"),
    ("Negotiate " + b64(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\x00" * 20), 401, "login_failed"),  # NTLM is off
    ("Negotiate " + b64(b"\xa1\x05\x30\x03\xa0\x01\x00"), 401, "login_failed"),  # a continuation of nothing
    ("Negotiate " + "A" * 6000, 401, "login_failed"),  # zeros: no handshake starts like that
])
async def test_garbage_tokens_are_refused_and_the_server_keeps_serving(twp_app, realm, header, status, error):
    server, _, _ = await world(twp_app, realm)
    got, body, _ = await post_negotiate(server.client, header)
    assert (got, body["error"]) == (status, error), body
    assert body["detail"]
    assert (await negotiate(server, kerberos_client(realm, "alice")))[0] == 200


async def test_refused_tokens_lock_the_source_address_out(twp_app, realm):
    server, _, _ = await world(twp_app, realm, auth={"lockout_address_threshold": 3})
    for _ in range(3):  # e.g. NTLM answers with guessed passwords, or garbage
        assert (await post_negotiate(server.client, "Negotiate " + b64(b"hello")))[0] == 401
    resp = await server.client.post(NEGOTIATE, headers={"Authorization": "Negotiate " + b64(kerberos_client(realm, "alice").step())})
    assert (resp.status, (await resp.json())["error"]) == (429, "locked_out") and int(resp.headers["Retry-After"]) > 0


async def test_large_tokens_are_read_and_oversized_ones_refused(twp_app, realm):
    """Tickets of Active Directory users in many groups reach 48,000 bytes (64 KiB of base64): they are read."""
    server, _, _ = await world(twp_app, realm)
    big = "Negotiate " + b64(b"\x60" + b"\x00" * 20_000)  # past aiohttp's default 8190-byte header limit
    status, body, _ = await post_negotiate(server.client, big)
    assert (status, body["error"]) == (401, "login_failed")  # read, parsed, refused: not an HTTP-level 400
    status, body, _ = await post_negotiate(server.client, "Negotiate " + "A" * 64_100)
    assert (status, body["error"]) == (400, "bad_negotiate_token") and "at most 48000 bytes" in body["detail"]
    resp = await server.client.post(NEGOTIATE, headers={"Authorization": "Negotiate " + "A" * 70_000})
    assert resp.status == 400  # over the server's 64 KiB header limit
    assert (await negotiate(server, kerberos_client(realm, "alice")))[0] == 200


async def test_a_missing_keytab_is_a_clear_instance_error_and_the_server_still_serves(twp_app, realm):
    server, admin, _ = await world(twp_app, realm, method={"keytab": "/nonexistent/http.keytab"})
    instance = next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["config"] == "auth.methods.WindowsSecurity")
    assert instance["state"] == "setup_error"
    assert instance["reason"].startswith("WindowsSecuritySetupError: keytab /nonexistent/http.keytab: cannot read it (No such file or directory)")
    assert "ktpass" in instance["reason"] and "ktadd" in instance["reason"]
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["error"]) == (503, "auth_method_unavailable")
    # The chain skips a method that is not ready: TWS still logs alice in.
    assert (await server.login("alice", TWS_PASSWORD)).info["method"] == "TWS"
    assert (await admin.get("/api/v1/health"))["status"] == "degraded"


async def test_a_keytab_without_the_service_key_names_the_principal(twp_app, realm):
    _server, admin, _ = await world(twp_app, realm, method=method_config(realm, service_principal="HTTP/twp.example.com"))
    instance = next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["config"] == "auth.methods.WindowsSecurity")
    assert instance["state"] == "setup_error"
    assert "no usable key for HTTP/twp.example.com@TWP.TEST (No key table entry found" in instance["reason"]


async def test_config_mistakes_are_config_errors(twp_app, realm):
    _server, admin, _ = await world(twp_app, realm, method=method_config(realm, ntlm=True))
    instance = next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["config"] == "auth.methods.WindowsSecurity")
    assert instance["state"] == "config_error" and "ntlm = true needs ntlm_user_file" in instance["reason"]


async def test_a_malformed_ntlm_user_file_names_the_line(twp_app, realm, tmp_path):
    users = tmp_path / "ntlm-users"
    users.write_text("CORP:alice:pw\n# a comment\n")
    server = await twp_app(config={"auth": {"methods": {"WindowsSecurity": {"ntlm": True, "ntlm_user_file": str(users)}}}})
    admin = await server.admin()
    instance = next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["config"] == "auth.methods.WindowsSecurity")
    assert (instance["state"], instance["reason"]) == ("setup_error", f"WindowsSecuritySetupError: ntlm_user_file {users}: line 2: expected "
                                                       "DOMAIN:user:password or an smbpasswd line (6 fields), got 1 fields; see "
                                                       "docs/admin-guide.md section 9, WindowsSecurity for the format")


async def test_without_configuration_the_method_stays_out_of_the_way(twp_app, realm):
    server = await twp_app()
    admin = await server.admin()
    assert (await admin.get("/api/v1/health"))["status"] == "ok"
    status, body, _ = await negotiate(server, kerberos_client(realm, "alice"))
    assert (status, body["error"]) == (503, "auth_method_unavailable") and "keytab" in body["detail"]
