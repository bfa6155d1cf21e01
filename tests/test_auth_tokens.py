"""Logging in (guide 6), bearer tokens, and the audit log of logins and admin actions."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthMethod, AuthResult
from twpcore.store import schema


class Everyone(AuthMethod):
    """An in-test auth method that vouches for any login, known to TWP or not."""

    type_name = "Everyone"

    async def authenticate(self, attempt):
        return AuthResult.accept(attempt.user, "anyone is welcome")


class EveryonePlugin:
    @hookimpl
    def twp_register_auth_methods(self, register):
        register(Everyone)


@pytest.fixture
async def site(twp_app):
    server = await twp_app(config={"auth": {"token_lifetime": "2h", "admin_token_lifetime": "30m"}})
    admin = await server.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    jdoe = await admin.create("users", domain_id=domain["id"], login="jdoe", password="correct-horse-1")
    return {"server": server, "admin": admin, "company": company, "domain": domain, "jdoe": jdoe}


async def test_tws_password_login_and_its_refusals(site):
    server, admin, domain = site["server"], site["admin"], site["domain"]
    before = dt.datetime.now(dt.UTC)
    me = await server.login("jdoe", "correct-horse-1")
    assert me.info["method"] == "TWS" and me.info["token_type"] == "Bearer" and me.token.startswith("twp_")
    expires = dt.datetime.fromisoformat(me.info["expires_at"])
    assert dt.timedelta(hours=2) - dt.timedelta(seconds=5) <= expires - before <= dt.timedelta(hours=2, seconds=5)
    assert me.info["user"] == {"id": site["jdoe"]["id"], "login": "jdoe", "domain_id": domain["id"], "company_id": site["company"]["id"]}

    wrong = await server.login("jdoe", "wrong-password", status=401)
    unknown = await server.login("nobody", "wrong-password", status=401)
    assert wrong.info == unknown.info == {"error": "login_failed", "detail": "invalid login or password", "field": None}

    await admin.create("users", domain_id=domain["id"], login="nopass")
    answer = await server.login("nopass", "anything-at-all", status=401)
    assert answer.info["error"] == "login_failed"
    answer = await server.login("jdoe", None, status=401)  # no password, and TWS is the only method
    assert answer.info["error"] == "login_failed"

    await admin.patch(f"/api/v1/users/{site['jdoe']['id']}", {"enabled": False})
    disabled = await server.login("jdoe", "correct-horse-1", status=403)
    assert disabled.info["error"] == "user_disabled" and "ask an administrator" in disabled.info["detail"]
    assert (await me.call("GET", "/api/v1/me"))["error"] == "unauthorized" and me.last_status == 401  # its token stops working
    await server.login("jdoe", "wrong-password", status=401)  # a wrong password does not reveal the account is disabled

    # Malformed requests are 400s naming the field.
    for body, field in (({"password": "x"}, "login"), ({"login": ""}, "login"), ({"login": "jdoe", "password": 5}, "password"),
                        ({"login": "jdoe", "domain": 5}, "domain")):
        answer = await server.anonymous.post("/api/v1/auth/login", body, status=400)
        assert answer["field"] == field, (body, answer)


async def test_a_login_in_several_domains_is_chosen_with_company_and_domain(site):
    server, admin = site["server"], site["admin"]
    nice = await admin.create("domains", company_id=site["company"]["id"], name="Nice")
    await admin.create("users", domain_id=nice["id"], login="jdoe", password="nice-password-1")
    answer = await server.login("jdoe", "correct-horse-1", status=409)
    assert answer.info["field"] == "domain" and "Company/Domain" in answer.info["detail"]
    me = await server.login("jdoe", "nice-password-1", domain="SSDEI/Nice")
    assert me.info["user"]["domain_id"] == nice["id"]
    await server.login("jdoe", "nice-password-1", domain="SSDEI/Paris", status=401)


async def test_none_method_only_for_users_whose_auth_methods_name_it(site):
    server, admin, domain = site["server"], site["admin"], site["domain"]
    kiosk = await admin.create("users", domain_id=domain["id"], login="kiosk")
    health = await admin.get("/api/v1/health")
    assert health["warnings"] == []
    await server.login("kiosk", None, status=401)

    value = await admin.create("parameter_values", name="AuthMethods", scope="user", scope_id=kiosk["id"], value="None")
    me = await server.login("kiosk", None)
    assert me.info["method"] == "None"
    await server.login("jdoe", None, status=401)  # not for the others of the domain
    warnings = (await admin.get("/api/v1/health"))["warnings"]
    assert len(warnings) == 1 and "None auth method" in warnings[0] and f"user {kiosk['id']}" in warnings[0]
    anonymous = await server.anonymous.call("GET", "/api/v1/health")
    assert "warnings" not in anonymous and "items" not in anonymous["plugins"]  # details are for admins
    user_view = await me.get("/api/v1/health")
    assert "warnings" not in user_view

    await admin.delete(f"/api/v1/parameter-values/{value['id']}")
    assert (await admin.get("/api/v1/health"))["warnings"] == []
    await server.login("kiosk", None, status=401)


async def test_tokens_expire_are_revoked_and_stay_on_their_side(site):
    server, admin, jdoe = site["server"], site["admin"], site["jdoe"]
    me = await server.login("jdoe", "correct-horse-1")
    other = await server.login("jdoe", "correct-horse-1")
    assert (await me.get("/api/v1/me"))["login"] == "jdoe"

    # Expiry: the shortest configurable lifetime is a minute, so the test moves the expiry instead.
    server.run(
        lambda c: c.execute(
            sa.update(schema.tokens)
            .where(schema.tokens.c.token_hash == __import__("twpcore.auth").auth.token_digest(me.token))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    )
    answer = await me.call("GET", "/api/v1/me")
    assert me.last_status == 401 and answer["detail"] == "token expired; log in again"
    # A stale token does not stop anyone from logging in again.
    again = await me.call("POST", "/api/v1/auth/login", {"login": "jdoe", "password": "correct-horse-1"})
    assert me.last_status == 200 and again["token"] != me.token

    # Logout revokes only that token.
    await other.post("/api/v1/auth/logout", status=204)
    answer = await other.call("GET", "/api/v1/me")
    assert other.last_status == 401 and answer["detail"] == "token was revoked; log in again"

    # An admin revokes every token of a user.
    first = await server.login("jdoe", "correct-horse-1")
    second = await server.login("jdoe", "correct-horse-1")
    assert (await admin.post(f"/api/v1/users/{jdoe['id']}/revoke-tokens", status=200)) == {"revoked": 3}
    for client in (first, second):
        await client.get("/api/v1/me", status=401)
    assert (await admin.post(f"/api/v1/users/{jdoe['id']}/revoke-tokens", status=200)) == {"revoked": 0}
    await admin.post("/api/v1/users/999999/revoke-tokens", status=404)

    # Admin tokens on user endpoints and user tokens on admin endpoints: 403 both ways.
    user = await server.login("jdoe", "correct-horse-1")
    answer = await admin.get("/api/v1/me/parameters", status=403)
    assert "for users" in answer["detail"]
    answer = await user.get("/api/v1/companies", status=403)
    assert "for administrators" in answer["detail"]
    assert (await user.get("/api/v1/me"))["type"] == "user" and (await admin.get("/api/v1/me"))["type"] == "admin"
    assert dt.datetime.fromisoformat(admin.info["expires_at"]) - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=30)


async def test_a_malformed_or_unknown_authorization_header_is_a_json_401(twp_server, admin):
    for header in ("Basic amRvZTpwYXNz", "Bearer", "Bearer    ", "Token twp_abc", "Bearer twp_not-a-real-token", "bearer",
                   f"Bearer{admin.token}", f"Basic {admin.token}"):
        resp = await twp_server.client.get("/api/v1/me", headers={"Authorization": header})
        assert resp.status == 401 and resp.content_type == "application/json", header
        body = await resp.json()
        assert body["error"] == "unauthorized" and body["detail"], header
    resp = await twp_server.client.get("/api/v1/me", headers={"Authorization": f"bearer  {admin.token} "})
    assert resp.status == 200  # the scheme is case-insensitive and spaces around the token do not matter


async def test_admin_login_refusals(site):
    server, admin = site["server"], site["admin"]
    created = await admin.create("admins", login="helper", password="helper-password-1")
    await server.login_admin("helper", "helper-password-1")
    for login, password in (("helper", "wrong-password-1"), ("ghost", "helper-password-1")):
        answer = await server.anonymous.post("/api/v1/auth/admin-login", {"login": login, "password": password}, status=401)
        assert answer["detail"] == "invalid admin login or password"
    await admin.patch(f"/api/v1/admins/{created['id']}", {"enabled": False})
    await server.anonymous.post("/api/v1/auth/admin-login", {"login": "helper", "password": "helper-password-1"}, status=401)
    answer = await admin.call("POST", "/api/v1/admins", {"login": "short", "password": "short"})
    assert admin.last_status == 400 and answer["field"] == "password" and "12 characters" in answer["detail"]
    answer = await admin.delete(f"/api/v1/admins/{admin.info['admin']['id']}", status=409)
    assert "your own admin account" in answer["detail"]


async def test_audit_log_records_logins_and_admin_actions_per_company(site):
    server, admin = site["server"], site["admin"]
    other = await admin.create("companies", name="Other")
    other_domain = await admin.create("domains", company_id=other["id"], name="Lyon")
    await admin.create("users", domain_id=other_domain["id"], login="lyon", password="lyon-password-1")
    await server.login_admin(admin.info["admin"]["login"], admin.info["password"])
    await server.login("jdoe", "correct-horse-1")
    await server.login("jdoe", "bad-password-1", status=401)
    await server.login("lyon", "lyon-password-1")
    await admin.patch(f"/api/v1/users/{site['jdoe']['id']}", {"password": "new-secret-password-9", "first_name": "John"})

    entries = (await admin.get("/api/v1/audit", params={"limit": "500"}))["items"]
    actions = [(e["action"], e["object_type"], e["company_id"]) for e in entries]
    ssdei = site["company"]["id"]
    assert ("login", "user", ssdei) in actions and ("login_failed", "user", ssdei) in actions and ("login", "user", other["id"]) in actions
    assert ("create", "company", other["id"]) in actions and ("update", "user", ssdei) in actions
    assert any(e["action"] == "admin_login" for e in entries)
    update = next(e for e in entries if e["action"] == "update" and e["object_type"] == "user")
    assert (
        update["detail"] == {"fields": ["first_name", "password"], "revoked": 1} and update["actor"]
    )  # jdoe's token ended == f"admin:{admin.info['admin']['login']}"
    failed = next(e for e in entries if e["action"] == "login_failed")
    assert failed["detail"]["method"] == "TWS" and failed["actor"] == "user:jdoe"
    text = str(entries)
    for secret in ("correct-horse-1", "bad-password-1", "new-secret-password-9", "lyon-password-1"):
        assert secret not in text
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)  # newest first

    page = await admin.get("/api/v1/audit", params={"limit": "2", "offset": "1"})
    assert [e["id"] for e in page["items"]] == [e["id"] for e in entries[1:3]] and page["total"] == len(entries)

    limited = await server.admin(super_user=False, companies=(ssdei,))
    mine = (await limited.get("/api/v1/audit", params={"limit": "500"}))["items"]
    assert mine and all(e["company_id"] == ssdei for e in mine)
    assert len(mine) == sum(1 for e in entries if e["company_id"] == ssdei)


async def test_a_method_vouching_for_an_unknown_login_gets_no_token(twp_app):
    server = await twp_app(plugins=[("everyone", EveryonePlugin())])
    admin = await server.admin()
    await admin.create("parameter_values", name="AuthMethods", scope="default", value="Everyone|TWS")
    answer = await server.login("stranger", "whatever", status=401)
    assert "no TWP user has this login" in answer.info["detail"] and "Everyone" in answer.info["detail"]
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    await admin.create("users", domain_id=domain["id"], login="stranger")
    assert (await server.login("stranger", "whatever")).info["method"] == "Everyone"
