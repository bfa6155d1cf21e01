"""Admin CRUD as an integrator sees it: paging, filters, search, validation, errors, limits, secrets."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture
async def paris(twp_server, admin):
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    return {"company": company, "domain": domain}


async def test_paging_filters_and_search(admin, paris):
    domain = paris["domain"]["id"]
    logins = ["Dupont", "dupuis", "a_b", "axb", "100%", "1000", "martin"]
    for i, login in enumerate(logins):
        await admin.create("users", domain_id=domain, login=login, enabled=i % 2 == 0, email=f"{login.lower()}@ssdei.fr".replace("%", "p"))

    page = await admin.get("/api/v1/users", params={"limit": "3", "offset": "0"})
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (7, 3, 0, 3)
    assert [u["login"] for u in page["items"]] == logins[:3]  # in creation order (id)
    last = await admin.get("/api/v1/users", params={"limit": "3", "offset": "6"})
    assert [u["login"] for u in last["items"]] == ["martin"] and last["total"] == 7
    assert (await admin.get("/api/v1/users", params={"offset": "50"}))["items"] == []
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
                          ({"offset": "-1"}, "offset"), ({"enabled": "yes"}, "enabled"), ({"domain_id": "x"}, "domain_id")):
        answer = await admin.get("/api/v1/users", params=params, status=400)
        assert answer["field"] == field, (params, answer)

    def names(data):
        return sorted(u["login"] for u in data["items"])

    assert names(await admin.get("/api/v1/users", params={"q": "DUP"})) == ["Dupont", "dupuis"]  # case-insensitive
    assert names(await admin.get("/api/v1/users", params={"q": "_"})) == ["a_b"]  # "_" is a character, not a wildcard
    assert names(await admin.get("/api/v1/users", params={"q": "0%"})) == ["100%"]  # "%" too
    assert names(await admin.get("/api/v1/users", params={"q": "SSDEI.FR"})) == sorted(logins)  # e-mail is searched
    assert names(await admin.get("/api/v1/users", params={"enabled": "false"})) == sorted(logins[1::2])
    assert names(await admin.get("/api/v1/users", params={"login": "martin"})) == ["martin"]
    assert names(await admin.get("/api/v1/users", params={"login": "MARTIN"})) == []  # filters are exact
    assert names(await admin.get("/api/v1/users", params={"domain_id": str(domain), "q": "1", "enabled": "true"})) == ["100%"]
    first = page["items"][0]
    assert dt.datetime.fromisoformat(first["created_at"]).utcoffset() == dt.timedelta(0)
    assert first["company_id"] == paris["company"]["id"]


async def test_search_folds_case_beyond_ascii(admin, paris):
    """``q`` matches whatever the letters' case, accented and non-Latin ones included (SQLite folds ASCII only)."""
    domain = paris["domain"]["id"]
    for login, last in (("elo", "Élodie"), ("emi", "émile"), ("ivan", "ИВАНОВ"), ("zoe", "Zoé")):
        await admin.create("users", domain_id=domain, login=login, last_name=last)

    async def found(q):
        return sorted(u["login"] for u in (await admin.get("/api/v1/users", params={"q": q}))["items"])

    assert await found("élo") == ["elo"]
    assert await found("ÉMI") == ["emi"]
    assert await found("иван") == ["ivan"]
    assert await found("ZOÉ") == ["zoe"]


# resource, body, field named, words in the detail
INVALID = [
    ("users", {"login": "a/b"}, "login", "no slashes"),
    ("users", {"login": " jdoe"}, "login", "not valid"),
    ("users", {"login": "jdoe", "email": "not-an-email"}, "email", "name@example.com"),
    ("users", {"login": "jdoe", "culture": "french"}, "culture", "fr-FR"),
    ("users", {"login": "jdoe", "mobile": "call me"}, "mobile", "digits"),
    ("users", {"login": "x" * 201}, "login", "at most 200 characters"),
    ("users", {"login": "jdoe\u0007"}, "login", "control characters"),
    ("users", {"login": "jdoe", "enabled": "yes"}, "enabled", "expected boolean"),
    ("users", {"login": "jdoe", "colour": "blue"}, "colour", "unknown field"),
    ("users", {"login": "jdoe", "id": 5}, "id", "unknown field"),
    ("users", {"login": "jdoe", "password_hash": "x"}, "password_hash", "unknown field"),
    ("users", {"login": "   "}, "login", "must not be empty"),
    ("devices", {"number": "12ab"}, "number", "digits, * # + only"),
    ("domains", {"name": "Nice", "numbering_plan_length": 0}, "numbering_plan_length", "1-20"),
    ("domains", {"name": "Nice", "numbering_plan_length": True}, "numbering_plan_length", "expected integer"),
    ("groups", {"name": "All", "priority": -1}, "priority", "0-1000000"),
    ("directories", {"name": "X", "connector": "ldap", "type": "secret"}, "type", "public, private or draft"),
    ("directories", {"name": "X", "connector": "ldap", "options": [1]}, "options", "expected object"),
    ("companies", {}, "name", "required"),
]


async def test_invalid_fields_are_400_naming_the_field(admin, paris):
    domain = paris["domain"]["id"]
    wrong = []
    for resource, body, field, words in INVALID:
        if resource not in ("companies", "domains") and "domain_id" not in body:
            body = {"domain_id": domain, **body}
        if resource == "domains":
            body = {"company_id": paris["company"]["id"], **body}
        answer = await admin.call("POST", f"/api/v1/{resource}", body)
        if admin.last_status != 400 or answer.get("field") != field or words not in answer.get("detail", ""):
            wrong.append((resource, body, admin.last_status, answer))
    assert not wrong, "\n".join(map(str, wrong))
    user = await admin.create("users", domain_id=domain, login="jdoe")
    answer = await admin.patch(f"/api/v1/users/{user['id']}", {"domain_id": domain}, status=400)
    assert answer["field"] == "domain_id" and "cannot be changed after creation" in answer["detail"]
    assert (await admin.patch(f"/api/v1/users/{user['id']}", {}))["login"] == "jdoe"


async def test_http_errors_are_json(twp_server, admin):
    client = twp_server.client
    for method, path, status, error in (
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("GET", "/api/v1/users/999999", 404, "not_found"),
        ("DELETE", "/api/v1/companies/999999", 404, "not_found"),
        ("GET", "/api/v1/users/abc", 400, "bad_request"),
        ("PUT", "/api/v1/companies", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/health", 405, "method_not_allowed"),
    ):
        resp = await client.request(method, path, headers=admin.headers())
        body = await resp.json()
        assert (resp.status, body["error"]) == (status, error), (method, path, body)
        assert resp.content_type == "application/json" and body["detail"]
    body = await (await client.get("/api/v1/nothing-here")).json()
    assert "/api/v1/openapi.json" in body["detail"]
    answer = await admin.get("/api/v1/users/999999", status=404)
    assert answer["detail"] == "user 999999 not found"
    for raw in (b"{", b'{"name": "x",}', b"\xff\xfe"):
        answer = await admin.call("POST", "/api/v1/companies", raw=raw)
        assert admin.last_status == 400 and "not valid JSON" in answer["detail"], raw


async def test_a_body_over_the_configured_size_is_413(twp_app):
    server = await twp_app(config={"http": {"max_request_bytes": 2048}})
    admin = await server.admin()
    answer = await admin.call("POST", "/api/v1/companies", {"name": "x", "description": "y" * 3000})
    assert admin.last_status == 413 and answer["error"] == "request_entity_too_large" and answer["detail"]
    assert (await admin.create("companies", name="small"))["name"] == "small"


async def test_configured_limits_are_clear_409s(twp_app):
    server = await twp_app(config={"limits": {"companies": 2, "domains_per_company": 1, "users_per_domain": 2}})
    admin = await server.admin()
    first = await admin.create("companies", name="One")
    await admin.create("companies", name="Two")
    answer = await admin.call("POST", "/api/v1/companies", {"name": "Three"})
    assert admin.last_status == 409 and answer["error"] == "limit_reached"
    assert "the limit is 2 (limits.companies in <test config>)" in answer["detail"]
    domain = await admin.create("domains", company_id=first["id"], name="Paris")
    answer = await admin.call("POST", "/api/v1/domains", {"company_id": first["id"], "name": "Nice"})
    assert admin.last_status == 409 and "limits.domains_per_company" in answer["detail"] and answer["field"] == "company_id"
    for login in ("a", "b"):
        await admin.create("users", domain_id=domain["id"], login=login)
    answer = await admin.call("POST", "/api/v1/users", {"domain_id": domain["id"], "login": "c"})
    assert admin.last_status == 409 and "limits.users_per_domain" in answer["detail"]
    # Deleting makes room again.
    await admin.delete(f"/api/v1/companies/{first['id']}")
    await admin.create("companies", name="Three")


async def test_devices_take_their_domain_from_their_user(admin, paris):
    company, paris_domain = paris["company"]["id"], paris["domain"]["id"]
    nice = await admin.create("domains", company_id=company, name="Nice")
    jdoe = await admin.create("users", domain_id=paris_domain, login="jdoe")
    ann = await admin.create("users", domain_id=nice["id"], login="ann")
    device = await admin.create("devices", user_id=jdoe["id"], number="201")
    assert device["domain_id"] == paris_domain and device["company_id"] == company
    answer = await admin.call("POST", "/api/v1/devices", {"user_id": jdoe["id"], "domain_id": nice["id"], "number": "202"})
    assert admin.last_status == 400 and answer["field"] == "user_id" and f"domain {paris_domain}" in answer["detail"]
    answer = await admin.call("POST", "/api/v1/devices", {"number": "203"})
    assert admin.last_status == 400 and answer["field"] == "domain_id"
    answer = await admin.patch(f"/api/v1/devices/{device['id']}", {"user_id": ann["id"]}, status=400)
    assert answer["field"] == "user_id"
    free = await admin.create("devices", domain_id=nice["id"], number="300")
    assert (await admin.patch(f"/api/v1/devices/{free['id']}", {"user_id": ann["id"]}))["user_id"] == ann["id"]
    me = (await admin.get("/api/v1/devices", params={"user_id": str(jdoe["id"])}))["items"]
    assert [d["number"] for d in me] == ["201"]


async def test_group_members_and_intercom_devices_stay_in_their_domain(admin, paris):
    company, paris_domain = paris["company"]["id"], paris["domain"]["id"]
    nice = await admin.create("domains", company_id=company, name="Nice")
    group = await admin.create("groups", domain_id=paris_domain, name="All")
    intercom = await admin.create("intercom_groups", domain_id=paris_domain, name="Hotline")
    jdoe = await admin.create("users", domain_id=paris_domain, login="jdoe")
    ann = await admin.create("users", domain_id=nice["id"], login="ann")
    near = await admin.create("devices", domain_id=paris_domain, number="201")
    far = await admin.create("devices", domain_id=nice["id"], number="201")
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": jdoe["id"]}, status=204)
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": jdoe["id"]}, status=204)  # twice is once
    answer = await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": ann["id"]}, status=422)
    assert answer["field"] == "user_id" and "same domain" in answer["detail"]
    await admin.post(f"/api/v1/intercom-groups/{intercom['id']}/devices", {"device_id": near["id"]}, status=204)
    await admin.post(f"/api/v1/intercom-groups/{intercom['id']}/devices", {"device_id": far["id"]}, status=422)
    members = await admin.get(f"/api/v1/groups/{group['id']}/members")
    assert [(m["login"], m["company_id"]) for m in members["items"]] == [("jdoe", company)] and members["total"] == 1
    assert [d["id"] for d in (await admin.get(f"/api/v1/intercom-groups/{intercom['id']}/devices"))["items"]] == [near["id"]]
    answer = await admin.delete(f"/api/v1/groups/{group['id']}/members/{ann['id']}", status=404)
    assert answer["error"] == "not_found"
    await admin.delete(f"/api/v1/groups/{group['id']}/members/{jdoe['id']}")
    assert (await admin.get(f"/api/v1/groups/{group['id']}/members"))["items"] == []


async def test_secrets_are_never_returned(twp_server, admin, paris):
    domain = paris["domain"]["id"]
    secrets = {"password": "user-pa55word-xyz", "voicemail_password": "vm-9876", "device": "dev-pa55-abc", "admin": "admin-pa55word-xyz"}
    user = await admin.create("users", domain_id=domain, login="jdoe", password=secrets["password"], voicemail_password=secrets["voicemail_password"])
    assert user["password_set"] is True and user["voicemail_password_set"] is True
    assert not {"password", "voicemail_password", "password_hash"} & set(user)
    device = await admin.create("devices", user_id=user["id"], number="201", password=secrets["device"])
    assert device["password_set"] is True and "password" not in device
    other = await admin.create("admins", login="helper", password=secrets["admin"])
    assert other["password_set"] is True and "password" not in other and "password_hash" not in other
    updated = await admin.patch(f"/api/v1/users/{user['id']}", {"voicemail_password": None})
    assert updated["voicemail_password_set"] is False and updated["password_set"] is True

    seen = [
        await admin.get(f"/api/v1/users/{user['id']}"), await admin.get("/api/v1/users"), await admin.get("/api/v1/devices"),
        await admin.get(f"/api/v1/devices/{device['id']}"), await admin.get("/api/v1/admins"),
        await admin.get("/api/v1/audit", params={"limit": "500"}), await admin.get(f"/api/v1/users/{user['id']}/parameters"),
    ]
    me = await twp_server.login("jdoe", secrets["password"])
    seen.append(await me.get("/api/v1/me"))
    text = str(seen)
    for name, secret in secrets.items():
        assert secret not in text, name
    assert "$argon2" not in text
    openapi = await admin.get("/api/v1/openapi.json")
    user_schema = openapi["paths"]["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert user_schema["properties"]["password"]["writeOnly"] is True


async def test_a_refused_password_is_never_echoed_back(twp_server, admin):
    err = await admin.call("POST", "/api/v1/admins", {"login": "ops", "password": "short-pw"}, status=400)
    assert err["field"] == "password" and "short-pw" not in err["detail"] and "12 characters" in err["detail"]
    err = await admin.call("POST", "/api/v1/admins", {"login": "ops", "password": 123456789}, status=400)
    assert "123456789" not in err["detail"]
