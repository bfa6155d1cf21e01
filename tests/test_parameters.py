"""Parameters (guide 6.1, 9.1.8, 10.2): values per default, domain, group and user, and how they resolve.

Resolution, first match wins: user > group > domain > server-wide default > built-in.
Among the user's groups the lowest ``priority`` number wins; equal priorities go to the
group created first (lowest id).
"""

from __future__ import annotations

import pytest

from twpcore.hookspecs import hookimpl
from twpcore.parameters import ParameterDefinition


class SecretParameterPlugin:
    """An in-test plugin declaring a secret parameter, as an LDAP auth plugin would."""

    @hookimpl
    def twp_register_parameters(self, register):
        register(ParameterDefinition("AuthLdapBindPassword", "", "password of the LDAP bind account", "Server", secret=True))


@pytest.fixture
async def tenant(twp_app):
    server = await twp_app(plugins=[("secret-parameter", SecretParameterPlugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    user = await admin.create("users", domain_id=domain["id"], login="jdoe", password="jdoe-password-1")
    other = await admin.create("users", domain_id=domain["id"], login="asmith")
    groups = {}
    # Created in this order: Tie1 has a lower id than Tie2; Low has the lowest priority number.
    for name, priority in (("Tie1", 10), ("Tie2", 10), ("Low", 5)):
        groups[name] = await admin.create("groups", domain_id=domain["id"], name=name, priority=priority)
        await admin.post(f"/api/v1/groups/{groups[name]['id']}/members", {"user_id": user["id"]}, status=204)
    return {"server": server, "admin": admin, "domain": domain, "user": user, "other": other, "groups": groups}


async def set_value(admin, tenant, parameter, scope, value):
    scope_id = {"default": None, "domain": tenant["domain"]["id"], "user": tenant["user"]["id"]}.get(scope)
    if scope_id is None and scope != "default":
        scope_id = tenant["groups"][scope]["id"]
    body = {"name": parameter, "scope": "group" if scope in tenant["groups"] else scope, "value": value}
    if scope_id is not None:
        body["scope_id"] = scope_id
    return await admin.create("parameter_values", **body)


async def resolved(client, path, **params):
    data = await client.get(path, params=params or None)
    return {p["name"]: (p["value"], p["source"]) for p in data["items"]}


# parameter, values by scope, expected (value, source) for jdoe (member of Tie1, Tie2 and Low)
RESOLUTION = [
    ("AuthorizeChat", {}, ("Yes", "built-in")),
    ("AuthorizeSms", {}, ("No", "built-in")),
    ("AuthorizeNote", {"default": "No"}, ("No", "default")),
    ("AuthorizeHotKeys", {"default": "No", "domain": "Yes"}, ("Yes", "domain")),
    ("AuthorizeHotKeysExe", {"default": "No", "domain": "Yes", "Tie1": "No"}, ("No", "group:Tie1")),
    ("AuthorizeInterception", {"default": "Yes", "domain": "No", "Tie1": "No", "user": "Yes"}, ("Yes", "user")),
    ("AuthorizeContactFavorite", {"Tie1": "Yes", "Tie2": "Yes", "Low": "No"}, ("No", "group:Low")),
    ("AuthorizeP2pAppSharing", {"Tie2": "Yes", "Tie1": "No"}, ("No", "group:Tie1")),
    ("AuthorizePublicList", {"Tie2": "No"}, ("No", "group:Tie2")),
    ("CallLog-NumberDaysOfStorage", {"domain": "45", "default": "60"}, ("45", "domain")),
]


async def test_resolution_table_user_group_domain_default_builtin(tenant):
    server, admin, user = tenant["server"], tenant["admin"], tenant["user"]
    for parameter, values, _ in RESOLUTION:
        for scope, value in values.items():
            await set_value(admin, tenant, parameter, scope, value)
    me = await server.login("jdoe", "jdoe-password-1")
    by_admin = await resolved(admin, f"/api/v1/users/{user['id']}/parameters")
    by_user = await resolved(me, "/api/v1/me/parameters")
    wrong = [(p, by_admin.get(p), want) for p, _, want in RESOLUTION if by_admin.get(p) != want]
    assert not wrong, f"(parameter, got, expected): {wrong}"
    assert all(by_user[p] == by_admin[p] for p in by_admin), "a user sees their own parameters as the admin does"

    # A user of the same domain in no group gets the domain and default values only.
    others = await resolved(admin, f"/api/v1/users/{tenant['other']['id']}/parameters")
    assert others["AuthorizeHotKeysExe"] == ("Yes", "domain")
    assert others["AuthorizeNote"] == ("No", "default")
    assert others["AuthorizeContactFavorite"] == ("Yes", "built-in")


async def test_group_priority_and_membership_changes_flip_the_winner(tenant):
    admin, user, groups = tenant["admin"], tenant["user"], tenant["groups"]
    path = f"/api/v1/users/{user['id']}/parameters"
    await set_value(admin, tenant, "AuthorizeP2pAppSharing", "Tie1", "No")
    await set_value(admin, tenant, "AuthorizeP2pAppSharing", "Tie2", "Yes")
    user_value = await set_value(admin, tenant, "AuthorizeChat", "user", "No")
    await set_value(admin, tenant, "AuthorizeChat", "Tie2", "Yes")
    steps = [
        (None, {"AuthorizeP2pAppSharing": ("No", "group:Tie1"), "AuthorizeChat": ("No", "user")}),
        ("Tie2 priority 1", {"AuthorizeP2pAppSharing": ("Yes", "group:Tie2"), "AuthorizeChat": ("No", "user")}),
        ("Tie2 priority 10 again", {"AuthorizeP2pAppSharing": ("No", "group:Tie1")}),
        ("Tie1 priority 11", {"AuthorizeP2pAppSharing": ("Yes", "group:Tie2")}),
        ("jdoe leaves Tie2", {"AuthorizeP2pAppSharing": ("No", "group:Tie1")}),
        ("jdoe leaves Tie1", {"AuthorizeP2pAppSharing": ("Yes", "built-in")}),
        ("user value deleted", {"AuthorizeChat": ("Yes", "built-in")}),
    ]
    for step, expected in steps:
        if step == "Tie2 priority 1":
            await admin.patch(f"/api/v1/groups/{groups['Tie2']['id']}", {"priority": 1})
        elif step == "Tie2 priority 10 again":
            await admin.patch(f"/api/v1/groups/{groups['Tie2']['id']}", {"priority": 10})
        elif step == "Tie1 priority 11":
            await admin.patch(f"/api/v1/groups/{groups['Tie1']['id']}", {"priority": 11})
        elif step == "jdoe leaves Tie2":
            await admin.delete(f"/api/v1/groups/{groups['Tie2']['id']}/members/{user['id']}")
        elif step == "jdoe leaves Tie1":
            await admin.delete(f"/api/v1/groups/{groups['Tie1']['id']}/members/{user['id']}")
        elif step == "user value deleted":
            await admin.delete(f"/api/v1/parameter-values/{user_value['id']}")
        got = await resolved(admin, path)
        assert {k: got[k] for k in expected} == expected, f"after {step}"
    # The group and its membership are gone from the user's profile as well.
    me = await tenant["server"].login("jdoe", "jdoe-password-1")
    assert [g["name"] for g in (await me.get("/api/v1/me"))["groups"]] == ["Low"]


# parameter, value sent, stored value or (status, words in the detail)
NORMALIZATION = [
    ("AuthorizeChat", "yes", "Yes"),
    ("AuthorizeChat", " ON ", "Yes"),
    ("AuthorizeChat", "0", "No"),
    ("AuthorizeChat", "maybe", (422, ['expected Yes or No, got "maybe"'])),
    ("CallLog-NumberDaysOfStorage", " 42 ", "42"),
    ("CallLog-NumberDaysOfStorage", "007", "7"),
    ("CallLog-NumberDaysOfStorage", "4x", (422, ['expected a whole number, got "4x"'])),
    ("CallLog-StartCleaningHour", "03:00", "03:00"),
    ("CallLog-StartCleaningHour", "24:00", (422, ["HH:MM", '"24:00"'])),
    ("CallLog-StartCleaningHour", "3:00", (422, ["HH:MM", '"3:00"'])),
    ("AuthMethods", "TWS | None", "TWS|None"),
    ("AuthMethods", "TWS|Kerberos", (422, ["unknown method 'Kerberos'", "installed methods: ", "None", "TWS"])),
    ("AuthMethods", "TWS|TWS", (422, ["listed twice"])),
    ("AuthMethods", "TWS||None", (422, ['separated by "|"'])),
    ("AuthorizeChatt", "Yes", (422, ["unknown parameter 'AuthorizeChatt'", 'did you mean "AuthorizeChat"'])),
]


async def test_values_are_checked_and_normalized_per_kind(tenant):
    admin, domain = tenant["admin"], tenant["domain"]
    problems = []
    for parameter, sent, expected in NORMALIZATION:
        answer = await admin.call("POST", "/api/v1/parameter-values", {"name": parameter, "scope": "domain", "scope_id": domain["id"], "value": sent})
        if isinstance(expected, str):
            if admin.last_status != 201 or answer["value"] != expected:
                problems.append((parameter, sent, admin.last_status, answer))
            else:
                await admin.delete(f"/api/v1/parameter-values/{answer['id']}")
        else:
            status, words = expected
            if admin.last_status != status or not all(w in answer["detail"] for w in words):
                problems.append((parameter, sent, admin.last_status, answer))
            elif answer["field"] != ("name" if parameter == "AuthorizeChatt" else "value"):
                problems.append((parameter, sent, "field", answer))
    assert not problems
    # PATCH normalizes as well, and refuses what POST refuses.
    value = await set_value(admin, tenant, "AuthorizeChat", "domain", "no")
    assert (await admin.patch(f"/api/v1/parameter-values/{value['id']}", {"value": "TRUE"}))["value"] == "Yes"
    answer = await admin.patch(f"/api/v1/parameter-values/{value['id']}", {"value": "often"}, status=422)
    assert 'got "often"' in answer["detail"]
    assert (await admin.get(f"/api/v1/parameter-values/{value['id']}"))["value"] == "Yes"
    # One value per parameter and scope; the scope needs its id.
    answer = await admin.call(
        "POST", "/api/v1/parameter-values", {"name": "AuthorizeChat", "scope": "domain", "scope_id": domain["id"], "value": "No"}
    )
    assert admin.last_status == 409 and "PATCH" in answer["detail"]
    answer = await admin.call("POST", "/api/v1/parameter-values", {"name": "AuthorizeChat", "scope": "group", "value": "No"})
    assert admin.last_status == 400 and answer["field"] == "scope_id"
    answer = await admin.call("POST", "/api/v1/parameter-values", {"name": "AuthorizeChat", "scope": "site", "scope_id": 1, "value": "No"})
    assert admin.last_status == 400 and answer["field"] == "scope"
    answer = await admin.call("POST", "/api/v1/parameter-values", {"name": "AuthorizeChat", "scope": "user", "scope_id": 999999, "value": "No"})
    assert admin.last_status == 404 and answer["field"] == "scope_id"


async def test_expert_parameters_are_listed_only_in_expert_mode(tenant):
    admin, user, server = tenant["admin"], tenant["user"], tenant["server"]
    plain = await admin.get("/api/v1/parameters")
    expert = await admin.get("/api/v1/parameters", params={"expert": "true"})
    plain_names = {p["name"] for p in plain["items"]}
    expert_only = {p["name"] for p in expert["items"] if p["expert"]}
    assert {"AuthorizedAdvancedSearch", "timeSynchronizationDirectories"} <= expert_only
    assert not expert_only & plain_names and plain_names < {p["name"] for p in expert["items"]}
    assert plain["total"] == len(plain["items"]) and expert["total"] == len(expert["items"])
    caller = await admin.get("/api/v1/parameters", params={"application": "Caller", "q": "forward"})
    assert caller["items"] == []  # the forward rule parameters are all expert ones
    caller = await admin.get("/api/v1/parameters", params={"application": "Caller", "q": "forward", "expert": "true"})
    assert caller["items"] and all(p["application"] == "Caller" and p["expert"] for p in caller["items"])

    path = f"/api/v1/users/{user['id']}/parameters"
    assert "AuthorizedAdvancedSearch" not in await resolved(admin, path)
    assert (await resolved(admin, path, expert="true"))["AuthorizedAdvancedSearch"] == ("Yes", "built-in")
    # An expert parameter set for the user still applies, and shows in the user's own list.
    await set_value(admin, tenant, "AuthorizedAdvancedSearch", "user", "No")
    me = await server.login("jdoe", "jdoe-password-1")
    assert (await resolved(me, "/api/v1/me/parameters"))["AuthorizedAdvancedSearch"] == ("No", "user")


async def test_secret_parameter_values_are_never_shown(tenant):
    admin, user, domain = tenant["admin"], tenant["user"], tenant["domain"]
    secret = "bind-pa55word-do-not-show"
    created = await admin.create("parameter_values", name="AuthLdapBindPassword", scope="domain", scope_id=domain["id"], value=secret)
    assert created["value"] == "***"
    assert (await admin.get(f"/api/v1/parameter-values/{created['id']}"))["value"] == "***"
    listed = await admin.get("/api/v1/parameter-values", params={"name": "AuthLdapBindPassword"})
    assert [v["value"] for v in listed["items"]] == ["***"]
    assert (await resolved(admin, f"/api/v1/users/{user['id']}/parameters"))["AuthLdapBindPassword"] == ("***", "domain")
    updated = await admin.patch(f"/api/v1/parameter-values/{created['id']}", {"value": secret + "2"})
    assert updated["value"] == "***"
    audit = await admin.get("/api/v1/audit")
    assert secret not in str(audit)
    # The value is stored and used by the server all the same.
    stored = tenant["server"].kernel.parameters
    value = tenant["server"].run(lambda c: stored.resolve_one(c, user["id"], "AuthLdapBindPassword"))
    assert value.value == secret + "2"
