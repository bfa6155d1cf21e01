"""Sessions (issue 6): token refresh, lock-out with backoff, TWS password rules, change and reset,
application rights at login, and open WebSockets closed when their session ends.

Clocks are not waited on: where a test needs time to pass (a lock-out running out, a
session reaching its maximum lifetime, a code expiring) it moves the stored time back,
as an administrator's clock would see it later.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from twpcore.auth import token_digest
from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthMethod, AuthResult
from twpcore.store import schema as t
from twpcore.testing.servers import find_free_port
from twpcore.testing.smtp import Mailbox

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # argon2's cost is not what these tests measure

PASSWORD = "correct-horse-1"
AUTH = {"token_lifetime": "1h", "session_max_lifetime": "3h", "admin_token_lifetime": "30m", "admin_session_max_lifetime": "2h",
        "lockout_threshold": 3, "lockout_address_threshold": 100, "lockout_base_delay": "10m", "lockout_max_delay": "1h"}


class Counting(AuthMethod):
    """An auth method that only counts how often it is asked, then lets the next one decide."""

    type_name = "Counting"
    asked = 0

    async def authenticate(self, attempt):
        Counting.asked += 1
        return AuthResult.passes("counting only")


class CountingPlugin:
    @hookimpl
    def twp_register_auth_methods(self, register):
        register(Counting)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def ago(**kw) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(**kw)


@pytest.fixture
async def site(twp_app):
    Counting.asked = 0
    server = await twp_app(config={"auth": AUTH}, plugins=[("counting", CountingPlugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    jdoe = await admin.create("users", domain_id=domain["id"], login="jdoe", password=PASSWORD, email="jdoe@ssdei.test")
    await admin.create("parameter_values", name="AuthMethods", scope="default", value="Counting|TWS")
    return {"server": server, "admin": admin, "company": company, "domain": domain, "jdoe": jdoe}


def audit_rows(server, action):
    return server.run(
        lambda c: [dict(r._mapping) for r in c.execute(sa.select(t.audit_log).where(t.audit_log.c.action == action).order_by(t.audit_log.c.id))]
    )


# -- refresh ---------------------------------------------------------------------------------

def move_session_start(server, token, started):
    server.run(lambda c: c.execute(sa.update(t.tokens).where(t.tokens.c.token_hash == token_digest(token)).values(session_started_at=started)))


async def test_refresh_rotates_the_token_and_stops_at_the_sessions_maximum_lifetime(site):
    server, admin = site["server"], site["admin"]
    first = await server.login("jdoe", PASSWORD)
    assert utc(first.info["session_expires_at"]) - utc(first.info["expires_at"]) > dt.timedelta(hours=1, minutes=59)

    answer = await first.post("/api/v1/auth/refresh", status=200)
    assert answer["token"] != first.token and answer["token_type"] == "Bearer" and answer["user"]["login"] == "jdoe"
    assert answer["session_expires_at"] == first.info["session_expires_at"]  # the session is the login's, not the refresh's
    refused = await first.call("GET", "/api/v1/me")
    assert first.last_status == 401 and refused["detail"] == "token was revoked; log in again"
    await first.post("/api/v1/auth/refresh", status=401)  # an old token cannot be refreshed twice

    second = type(first)(first.client, answer["token"], answer)
    assert (await second.get("/api/v1/me"))["login"] == "jdoe"

    # Near the session's end a refreshed token lives only until that end...
    started = ago(hours=2, minutes=30)
    move_session_start(server, second.token, started)
    answer = await second.post("/api/v1/auth/refresh", status=200)
    assert utc(answer["expires_at"]) == utc(answer["session_expires_at"]) == started + dt.timedelta(hours=3)
    third = type(first)(first.client, answer["token"], answer)
    # ...and past it, refresh is refused: log in again.
    move_session_start(server, third.token, ago(hours=3, seconds=1))
    refused = await third.call("POST", "/api/v1/auth/refresh")
    assert third.last_status == 401 and refused["error"] == "session_expired" and "log in again" in refused["detail"]

    # An expired token and a disabled user's token are refused too.
    late = await server.login("jdoe", PASSWORD)
    server.run(lambda c: c.execute(sa.update(t.tokens).where(t.tokens.c.token_hash == token_digest(late.token)).values(expires_at=ago(seconds=1))))
    assert (await late.call("POST", "/api/v1/auth/refresh"))["detail"] == "token expired; log in again" and late.last_status == 401
    live = await server.login("jdoe", PASSWORD)
    await admin.patch(f"/api/v1/users/{site['jdoe']['id']}", {"enabled": False})
    assert (await live.call("POST", "/api/v1/auth/refresh"))["detail"] == "user no longer exists or is disabled" and live.last_status == 401


async def test_admin_tokens_refresh_within_their_own_session_lifetime(site):
    server, admin = site["server"], site["admin"]
    logged = await server.login_admin(admin.info["admin"]["login"], admin.info["password"])
    assert utc(logged.info["session_expires_at"]) - utc(logged.info["expires_at"]) > dt.timedelta(hours=1, minutes=29)
    answer = await logged.post("/api/v1/auth/refresh", status=200)
    assert answer["admin"]["id"] == admin.info["admin"]["id"] and "user" not in answer
    assert utc(answer["expires_at"]) - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=30)
    renewed = type(admin)(admin.client, answer["token"], answer)
    assert (await renewed.get("/api/v1/companies"))["total"] == 1
    move_session_start(server, renewed.token, ago(hours=2, seconds=1))
    assert (await renewed.call("POST", "/api/v1/auth/refresh"))["error"] == "session_expired"


# -- lock-out ----------------------------------------------------------------------------------

def unlock_in_the_past(server, login):
    """The lock-out ran out (as if its time had passed); the failure count stays."""
    server.run(lambda c: c.execute(sa.update(t.login_failures).where(t.login_failures.c.subject == login).values(locked_until=ago(seconds=1))))


async def test_repeated_failures_lock_a_login_with_growing_delays_and_no_method_is_asked_meanwhile(site):
    server, admin, jdoe = site["server"], site["admin"], site["jdoe"]
    for _ in range(2):
        await server.login("jdoe", "wrong-password-1", status=401)
    await server.login("jdoe", PASSWORD)  # a success forgets the failures
    for _ in range(2):
        await server.login("jdoe", "wrong-password-1", status=401)
    assert (await admin.get(f"/api/v1/users/{jdoe['id']}/lockout"))["locked"] is False
    await server.login("jdoe", "wrong-password-1", status=401)  # the third failure in a row locks

    asked = Counting.asked
    resp = await server.client.post("/api/v1/auth/login", json={"login": "jdoe", "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 429 and body["error"] == "locked_out" and "this login" in body["detail"]
    assert 500 <= int(resp.headers["Retry-After"]) <= 600  # lockout_base_delay = 10 min
    assert Counting.asked == asked  # the right password was never checked: no oracle while locked

    state = await admin.get(f"/api/v1/users/{jdoe['id']}/lockout")
    assert state["locked"] is True and state["failures"] == 3 and 500 <= state["retry_after"] <= 600

    # When the lock-out has run out, each further failure doubles it, up to lockout_max_delay.
    waits = []
    for _ in range(4):
        unlock_in_the_past(server, "jdoe")
        await server.login("jdoe", "wrong-password-1", status=401)
        resp = await server.client.post("/api/v1/auth/login", json={"login": "jdoe", "password": PASSWORD})
        assert resp.status == 429
        waits.append(int(resp.headers["Retry-After"]))
    assert [round(w / 60) for w in waits] == [20, 40, 60, 60]

    entries = audit_rows(server, "lockout")
    assert len(entries) == 5 and all(e["company_id"] == site["company"]["id"] and e["object_id"] == str(jdoe["id"]) for e in entries)
    assert entries[0]["detail"]["failures"] == 3 and PASSWORD not in str(entries)

    # An administrator lifts it; the user logs in at once.
    answer = await admin.post(f"/api/v1/users/{jdoe['id']}/unlock", status=200)
    assert answer["was_locked"] is True and answer["locked"] is False and answer["failures"] == 0
    await server.login("jdoe", PASSWORD)
    assert any(e["object_id"] == str(jdoe["id"]) for e in audit_rows(server, "unlock"))


async def test_unknown_logins_lock_out_like_real_ones(site):
    server = site["server"]
    answers = {}
    for login in ("jdoe", "nobody-here"):
        for _ in range(3):
            await server.login(login, "wrong-password-1", status=401)
        resp = await server.client.post("/api/v1/auth/login", json={"login": login, "password": "wrong-password-1"})
        answers[login] = (resp.status, await resp.json())
    assert answers["jdoe"] == answers["nobody-here"] and answers["jdoe"][0] == 429  # existence is not revealed
    # The lock is on the name, whatever its case.
    resp = await server.client.post("/api/v1/auth/login", json={"login": "JDOE", "password": PASSWORD})
    assert resp.status == 429


async def test_one_address_trying_many_logins_is_locked_and_a_super_user_lifts_it(twp_app):
    server = await twp_app(config={"auth": {**AUTH, "lockout_address_threshold": 4}})
    root = await server.admin()
    for i in range(4):
        await server.login(f"guess-{i}", "wrong-password-1", status=401)
    resp = await server.client.post("/api/v1/auth/login", json={"login": "someone-else", "password": "x"})
    body = await resp.json()
    assert resp.status == 429 and "this source address" in body["detail"]
    # Admin logins from that address are locked too.
    resp = await server.client.post("/api/v1/auth/admin-login", json={"login": root.info["admin"]["login"], "password": root.info["password"]})
    assert resp.status == 429

    listed = await root.get("/api/v1/lockouts")
    assert [(i["scope"], i["subject"]) for i in listed["items"]] == [("address", "127.0.0.1")]
    limited = await server.admin(super_user=False)
    await limited.get("/api/v1/lockouts", status=403)
    await limited.post("/api/v1/lockouts/unlock", {"scope": "address", "subject": "127.0.0.1"}, status=403)
    answer = await root.post("/api/v1/lockouts/unlock", {"scope": "address", "subject": "127.0.0.1"}, status=200)
    assert answer["was_locked"] is True
    await server.login_admin(root.info["admin"]["login"], root.info["password"])


async def test_lock_outs_survive_a_restart_and_are_shared_by_two_kernels(twp_app):
    first = await twp_app(config={"auth": AUTH})
    admin = await first.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    await admin.create("users", domain_id=domain["id"], login="jdoe", password=PASSWORD)
    second = await twp_app(config={"auth": AUTH})  # another kernel on the same store
    await first.login("jdoe", "wrong-password-1", status=401)
    await second.login("jdoe", "wrong-password-1", status=401)
    await first.login("jdoe", "wrong-password-1", status=401)
    for server in (first, second):
        resp = await server.client.post("/api/v1/auth/login", json={"login": "jdoe", "password": PASSWORD})
        assert resp.status == 429
    await first.kernel.stop()
    third = await twp_app(config={"auth": AUTH})  # a restart
    resp = await third.client.post("/api/v1/auth/login", json={"login": "jdoe", "password": PASSWORD})
    assert resp.status == 429


async def test_admin_logins_lock_out_separately_from_users(site):
    server, root = site["server"], site["admin"]
    helper = await root.create("admins", login="jdoe", password="helper-password-1")  # an admin with a user's login
    for _ in range(3):
        await server.anonymous.post("/api/v1/auth/admin-login", {"login": "jdoe", "password": "wrong-password-1"}, status=401)
    answer = await server.anonymous.call("POST", "/api/v1/auth/admin-login", {"login": "jdoe", "password": "helper-password-1"})
    assert server.anonymous.last_status == 429 and answer["error"] == "locked_out"
    await server.login("jdoe", PASSWORD)  # the user jdoe is not locked
    assert audit_rows(server, "lockout")[0]["actor"] == "admin:jdoe"
    limited = await server.admin(super_user=False, companies=(site["company"]["id"],))
    await limited.post(f"/api/v1/admins/{helper['id']}/unlock", status=404)
    await root.post(f"/api/v1/admins/{helper['id']}/unlock", status=200)
    await server.login_admin("jdoe", "helper-password-1")


async def test_limited_admins_unlock_only_their_users(site):
    server, root = site["server"], site["admin"]
    other = await root.create("companies", name="Other")
    limited = await server.admin(super_user=False, companies=(other["id"],))
    await limited.post(f"/api/v1/users/{site['jdoe']['id']}/unlock", status=404)
    await limited.get(f"/api/v1/users/{site['jdoe']['id']}/lockout", status=404)
    await limited.post(f"/api/v1/users/{site['jdoe']['id']}/password-reset", status=404)


# -- password rules, change and reset --------------------------------------------------------

@pytest.mark.parametrize("password, rule", [
    ("Sh0rt!", "password_too_short"),
    ("onlylowercaseletters", "password_too_simple"),
    ("jdoe2026!!", "password_is_login"),
    ("eodj1234567", "password_is_login"),  # reversed
    ("Password123!", "password_too_common"),
    ("azertyuiop", "password_too_simple"),
    ("Azertyuiop", "password_too_common"),
])
async def test_weak_passwords_are_refused_naming_the_rule(site, password, rule):
    admin, domain, jdoe = site["admin"], site["domain"], site["jdoe"]
    answer = await admin.call("POST", "/api/v1/users", {"domain_id": domain["id"], "login": "jdoe2", "password": password})
    if rule == "password_is_login":  # the rule looks at the login of the account
        assert admin.last_status == 201, answer
    else:
        assert admin.last_status == 422 and answer["error"] == rule and answer["field"] == "password", answer
        assert "auth.password_" in answer["detail"] and password not in answer["detail"]
    answer = await admin.call("PATCH", f"/api/v1/users/{jdoe['id']}", {"password": password})
    assert admin.last_status == 422 and answer["error"] == rule, answer


async def test_password_rules_follow_the_configuration(twp_app):
    server = await twp_app(config={"auth": {"password_min_length": 16, "password_min_classes": 4, "password_refuse_common": False}})
    admin = await server.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    answer = await admin.call("POST", "/api/v1/users", {"domain_id": domain["id"], "login": "a", "password": "Pass-123-xyz"})
    assert answer["error"] == "password_too_short" and "at least 16 characters" in answer["detail"]
    answer = await admin.call("POST", "/api/v1/users", {"domain_id": domain["id"], "login": "a", "password": "password-123-xyz"})
    assert answer["error"] == "password_too_simple" and "at least 4" in answer["detail"]
    await admin.create("users", domain_id=domain["id"], login="a", password="Password-123-xyz")


async def test_a_user_changes_its_password_and_its_other_tokens_stop(site):
    server, admin = site["server"], site["admin"]
    here = await server.login("jdoe", PASSWORD)
    elsewhere = await server.login("jdoe", PASSWORD)
    answer = await here.call("POST", "/api/v1/me/password", {"current_password": "not-it-at-all-1", "new_password": "Brand-new-pass-7"})
    assert here.last_status == 403 and answer["error"] == "wrong_password" and answer["field"] == "current_password"
    answer = await here.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "short"})
    assert here.last_status == 422 and answer["error"] == "password_too_short" and answer["field"] == "new_password"
    answer = await here.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": PASSWORD})
    assert here.last_status == 422 and answer["error"] == "password_unchanged"
    assert await here.post("/api/v1/me/password", {"current_password": PASSWORD, "new_password": "Brand-new-pass-7"}, status=200) == {"revoked": 1}
    await elsewhere.get("/api/v1/me", status=401)
    await here.get("/api/v1/me", status=200)
    await server.login("jdoe", PASSWORD, status=401)
    await server.login("jdoe", "Brand-new-pass-7")
    await admin.post("/api/v1/me/password", {"current_password": "x", "new_password": "Brand-new-pass-8"}, status=403)  # users only
    assert "Brand-new-pass-7" not in str(audit_rows(server, "password_change"))


async def test_guessing_the_current_password_with_a_token_locks_the_login(site):
    server = site["server"]
    me = await server.login("jdoe", PASSWORD)
    for _ in range(3):
        await me.post("/api/v1/me/password", {"current_password": "guess-number-1", "new_password": "Brand-new-pass-7"}, status=403)
    answer = await me.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "Brand-new-pass-7"})
    assert me.last_status == 429 and answer["error"] == "locked_out"
    await server.login("jdoe", PASSWORD, status=429)


async def test_an_admin_reset_code_works_once_and_expires(site):
    server, admin, jdoe = site["server"], site["admin"], site["jdoe"]
    me = await server.login("jdoe", PASSWORD)
    reset = await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", {"send_email": False}, status=201)
    code = reset["code"]
    assert len(code) == 19 and reset["emailed_to"] is None
    stored = server.run(lambda c: c.execute(sa.select(t.password_resets.c.code_hash)).scalars().all())
    assert len(stored) == 1 and code not in stored[0] and code.replace("-", "") not in stored[0]
    assert code not in str(await admin.get("/api/v1/audit", params={"limit": "500"})) and code not in str(
        await admin.get(f"/api/v1/users/{jdoe['id']}")
    )

    anonymous = server.anonymous
    body = {"login": "jdoe", "code": "AAAA-BBBB-CCCC-DDDD", "new_password": "Reset-password-42"}
    answer = await anonymous.call("POST", "/api/v1/auth/password-reset", body)
    assert anonymous.last_status == 401 and answer["error"] == "invalid_reset_code"
    answer = await anonymous.call("POST", "/api/v1/auth/password-reset", {**body, "code": code, "new_password": "weak"})
    assert anonymous.last_status == 422 and answer["error"] == "password_too_short"  # the code is not used up by this
    answer = await anonymous.post("/api/v1/auth/password-reset", {**body, "code": code.lower().replace("-", " ")}, status=200)
    assert answer == {"revoked": 1}
    await me.get("/api/v1/me", status=401)
    await server.login("jdoe", "Reset-password-42")
    answer = await anonymous.call("POST", "/api/v1/auth/password-reset", {**body, "code": code, "new_password": "Reset-password-43"})
    assert (
        anonymous.last_status == 401
        and answer["detail"] == (await anonymous.call("POST", "/api/v1/auth/password-reset", {**body, "login": "ghost"}))["detail"]
    )

    # A new code replaces the previous one; an expired code is refused.
    old = (await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", status=201))["code"]
    new = (await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", status=201))["code"]
    await anonymous.post("/api/v1/auth/password-reset", {**body, "code": old}, status=401)
    server.run(lambda c: c.execute(sa.update(t.password_resets).values(expires_at=ago(seconds=1))))
    await anonymous.post("/api/v1/auth/password-reset", {**body, "code": new}, status=401)
    reasons = [e["detail"]["reason"] for e in audit_rows(server, "password_reset_failed")]
    assert "reset code expired" in reasons and "wrong reset code" in reasons and "unknown user" in reasons


async def test_guessing_reset_codes_locks_the_login(site):
    server, admin, jdoe = site["server"], site["admin"], site["jdoe"]
    code = (await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", status=201))["code"]
    body = {"login": "jdoe", "code": "AAAA-BBBB-CCCC-DDDD", "new_password": "Reset-password-42"}
    for _ in range(3):
        await server.anonymous.post("/api/v1/auth/password-reset", body, status=401)
    answer = await server.anonymous.call("POST", "/api/v1/auth/password-reset", {**body, "code": code})
    assert server.anonymous.last_status == 429 and answer["error"] == "locked_out"
    await server.login("jdoe", PASSWORD, status=429)  # one counter for the login, whatever the door


async def test_the_reset_code_is_mailed_to_the_user_when_smtp_is_set_up(site):
    admin, domain, jdoe = site["admin"], site["domain"], site["jdoe"]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=find_free_port())
    await asyncio.to_thread(controller.start)
    try:
        for name, value in (("smtp", "127.0.0.1"), ("SmtpServerPort", str(controller.port)), ("SmtpSecurity", "none")):
            await admin.create("parameter_values", name=name, scope="domain", scope_id=domain["id"], value=value)
        reset = await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", status=201)
        assert reset["emailed_to"] == "jdoe@ssdei.test" and reset["email_error"] is None
        (mail,) = box.messages
        to, message = mail["to"], mail["message"]
        assert to == ["jdoe@ssdei.test"] and reset["code"] in message.get_content()
        unmailed = await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", {"send_email": False}, status=201)
        assert unmailed["emailed_to"] is None and len(box.messages) == 1
    finally:
        await asyncio.to_thread(controller.stop)
    # The server is gone: the admin still has the code, and is told why it was not mailed.
    reset = await admin.post(f"/api/v1/users/{jdoe['id']}/password-reset", status=201)
    assert reset["emailed_to"] is None and "cannot reach SMTP server 127.0.0.1" in reset["email_error"] and reset["code"]


# -- application rights at login --------------------------------------------------------------

async def test_a_login_for_an_application_needs_the_right_to_it(site):
    server, admin, domain, jdoe = site["server"], site["admin"], site["domain"], site["jdoe"]
    staff = await admin.create("groups", domain_id=domain["id"], name="Staff")
    await admin.post(f"/api/v1/groups/{staff['id']}/members", {"user_id": jdoe["id"]}, status=204)
    await admin.create("users", domain_id=domain["id"], login="intern", password=PASSWORD)
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=staff["id"])

    me = await server.anonymous.post("/api/v1/auth/login", {"login": "jdoe", "password": PASSWORD, "application": "Caller"}, status=200)
    assert me["applications"] == ["Caller"]
    refused = await server.anonymous.call("POST", "/api/v1/auth/login", {"login": "intern", "password": PASSWORD, "application": "Caller"})
    assert server.anonymous.last_status == 403 and refused["error"] == "application_not_granted" and "Caller" in refused["detail"]
    unknown = await server.anonymous.call("POST", "/api/v1/auth/login", {"login": "jdoe", "password": PASSWORD, "application": "Solitaire"})
    assert server.anonymous.last_status == 422 and unknown["field"] == "application"
    plain = await server.anonymous.post("/api/v1/auth/login", {"login": "intern", "password": PASSWORD}, status=200)
    assert plain["applications"] == []
    # A wrong password is a wrong password, whatever the application.
    wrong = await server.anonymous.call("POST", "/api/v1/auth/login", {"login": "intern", "password": "wrong-password-1", "application": "Caller"})
    assert server.anonymous.last_status == 401 and wrong["error"] == "login_failed"
    assert any("not granted" in e["detail"]["reason"] for e in audit_rows(server, "login_failed"))


# -- open WebSockets ---------------------------------------------------------------------------

async def socket_of(server, token):
    ws = await server.client.ws_connect("/api/v1/events", params={"access_token": token})
    assert (await ws.receive_json(timeout=5))["type"] == "system.hello"
    return ws


async def closed_with(ws):
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            return msg.data, msg.extra


async def test_revoking_a_token_or_disabling_a_user_closes_its_websockets(site):
    server, admin, domain, jdoe = site["server"], site["admin"], site["domain"], site["jdoe"]
    one, two = await server.login("jdoe", PASSWORD), await server.login("jdoe", PASSWORD)
    ws_one, ws_two = await socket_of(server, one.token), await socket_of(server, two.token)
    await one.post("/api/v1/auth/logout", status=204)
    assert await closed_with(ws_one) == (4001, "token was revoked; log in again")
    assert not ws_two.closed  # the other token's socket stays

    await admin.post(f"/api/v1/users/{jdoe['id']}/revoke-tokens", status=200)
    assert await closed_with(ws_two) == (4001, "token was revoked; log in again")

    three = await server.login("jdoe", PASSWORD)
    ws_three = await socket_of(server, three.token)
    refreshed = await three.post("/api/v1/auth/refresh", status=200)
    assert (await closed_with(ws_three))[0] == 4001
    ws_four = await socket_of(server, refreshed["token"])
    await admin.patch(f"/api/v1/users/{jdoe['id']}", {"enabled": False})
    assert await closed_with(ws_four) == (4001, "user no longer exists or is disabled")

    other = await admin.create("users", domain_id=domain["id"], login="other", password=PASSWORD)
    five = await server.login("other", PASSWORD)
    ws_five = await socket_of(server, five.token)
    await admin.delete(f"/api/v1/users/{other['id']}")
    code, reason = await closed_with(ws_five)  # its tokens went with it
    assert code == 4001 and reason.endswith("log in again")


async def test_a_password_change_closes_the_other_sessions_sockets_only(site):
    server = site["server"]
    here, elsewhere = await server.login("jdoe", PASSWORD), await server.login("jdoe", PASSWORD)
    ws_here, ws_elsewhere = await socket_of(server, here.token), await socket_of(server, elsewhere.token)
    await here.post("/api/v1/me/password", {"current_password": PASSWORD, "new_password": "Brand-new-pass-7"}, status=200)
    assert (await closed_with(ws_elsewhere))[0] == 4001
    await ws_here.send_str("ping")
    assert (await ws_here.receive(timeout=5)).data == "pong"
    await ws_here.close()


async def test_a_revocation_on_another_kernel_closes_the_socket_within_the_recheck_interval(twp_app):
    config = {"auth": {**AUTH, "websocket_recheck": "100ms"}}
    first = await twp_app(config=config)
    admin = await first.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    user = await admin.create("users", domain_id=domain["id"], login="jdoe", password=PASSWORD)
    me = await first.login("jdoe", PASSWORD)
    ws = await socket_of(first, me.token)
    second = await twp_app(config=config)
    other_admin = await second.admin()
    await other_admin.post(f"/api/v1/users/{user['id']}/revoke-tokens", status=200)
    assert await closed_with(ws) == (4001, "token was revoked; log in again")
