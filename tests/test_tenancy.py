"""Tenant isolation (guide 3.1, 10.1): company A's admin and users never reach company B.

Two companies are built through the API with one of everything.  An administrator
limited to company A and a user of company A then try every operation of the OpenAPI
document that takes a path parameter, with B's ids substituted; each must answer 403 or
404, and B must read back unchanged afterwards.  The routes come from
``/api/v1/openapi.json``, so an endpoint added later is attacked too, and one whose path
parameter this test cannot fill makes it fail until the test learns it.

The module runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from twp_csta.driver import CstaXmlDriver
from twp_csta.sim import PbxSimulator
from twp_csta.testing import FAST_LINK_OPTIONS, sim_config_for
from twpcore.hookspecs import hookimpl
from twpcore.store import schema

pytestmark = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)

API = "/api/v1/"
# The resource behind the first path segment, for {id}.
SEGMENTS = {
    "companies": "company", "domains": "domain", "users": "user", "devices": "device", "groups": "group",
    "intercom-groups": "intercom_group", "phone-queues": "phone_queue", "directories": "directory",
    "admins": "admin", "authorizations": "authorization", "parameter-values": "parameter_value", "sms": "sms",
    "user-imports": "user_import", "price-lists": "price_list",
}
# {id} of paths whose first segment does not name the object (a user's own contacts and lists).
PATH_IDS = {"/api/v1/me/contacts/{id}": "contact", "/api/v1/directories/contacts/{id}": "contact",
            "/api/v1/me/lists/{id}": "list", "/api/v1/me/lists/{id}/contacts": "list",
            "/api/v1/me/calendar/events/{id}": "calendar_event", "/api/v1/me/call-logs/{id}": "call_log",
            "/api/v1/alerter/templates/{id}": "alerter_template", "/api/v1/journal/entries/{id}": "journal_entry",
            "/api/v1/me/forward-rules/{id}": "forward_rule", "/api/v1/me/profiles/{id}": "profile",
            "/api/v1/me/profiles/{id}/activate": "profile"}
# {member} of a relation, by the relation's path.
MEMBERS = {"/api/v1/groups/{id}/members/{member}": "user", "/api/v1/intercom-groups/{id}/devices/{member}": "device",
           "/api/v1/users/{id}/forward-rules/{member}": "forward_rule"}
# The Alerter template of each company (the guide's example, trimmed): {id} of /api/v1/alerter/templates/{id}.
ALERTER_XML = """<alerter vip="false">
  <text x="10" y="5">[-DisplayName-] ([-CompanyName-])</text>
  <button x="10" y="30" url="http://intranet.example.com/?q=[-PhoneNumber-]">Look up</button>
</alerter>
"""
# Values for properties of request bodies, by name (B's ids are filled in by the world).
SAMPLES: dict[str, Any] = {
    "name": "pwned", "first_name": "pwned", "description": "pwned", "value": "No", "login": "pwned",
    "number": "2099", "digits": "1", "other_call_id": "c-2", "on": True, "seats": 5, "enabled": False,
    "priority": 1, "settings": {}, "rules": [], "type": "immediate", "xml": ALERTER_XML,
}
SMS_HTTP = importlib.util.find_spec("twp_sms_http") is not None
PATCH_PREFERENCE = ("name", "first_name", "value", "description", "number", "enabled", "seats", "on")


async def build_company(server: Any, admin: Any, name: str, n: int) -> dict[str, Any]:
    """One of everything for one company; returns the ids and the login of its user."""
    w: dict[str, Any] = {"name": name}
    w["company"] = (await admin.create("companies", name=name))["id"]
    w["domain"] = (await admin.create("domains", company_id=w["company"], name="Paris"))["id"]
    w["user"] = (await admin.create("users", domain_id=w["domain"], login=f"user-{name}", first_name=name, password=f"pass-{name}-123456"))["id"]
    w["user2"] = (await admin.create("users", domain_id=w["domain"], login=f"other-{name}"))["id"]
    w["device"] = (await admin.create("devices", user_id=w["user"], number=f"{n}01", password="dev-secret"))["id"]
    w["device2"] = (await admin.create("devices", domain_id=w["domain"], number=f"{n}02"))["id"]
    w["device_number"], w["device2_number"] = f"{n}01", f"{n}02"
    w["group"] = (await admin.create("groups", domain_id=w["domain"], name="All"))["id"]
    await admin.post(f"/api/v1/groups/{w['group']}/members", {"user_id": w["user"]}, status=204)
    w["intercom_group"] = (await admin.create("intercom_groups", domain_id=w["domain"], name="Hotline"))["id"]
    await admin.post(f"/api/v1/intercom-groups/{w['intercom_group']}/devices", {"device_id": w["device"]}, status=204)
    w["phone_queue"] = (await admin.create("phone_queues", domain_id=w["domain"], name="Standard", number=f"{n}90"))["id"]
    w["directory"] = (await admin.create("directories", domain_id=w["domain"], name="Public", connector="users"))["id"]
    # The user's private contacts, a contact list and a pushed directory (guide 9.1.1, 8.8).
    for dname, connector in (("[TwsPrivate]", "private"), (f"Outlook {n}", "push")):
        did = (await admin.create("directories", domain_id=w["domain"], name=dname, connector=connector, type="private"))["id"]
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{did}", subject_type="user", subject_id=w["user"])
    w["directory_name"] = f"Outlook {n}"
    owner = await server.login(f"user-{name}", f"pass-{name}-123456")
    w["contact_phone"] = f"01 55 17 18 8{n}"
    w["contact"] = (await owner.post("/api/v1/me/contacts", {"last_name": name, "phone": w["contact_phone"]}, status=201))["id"]
    w["list"] = (await owner.post("/api/v1/me/lists", {"name": "Favourites"}, status=201))["id"]
    w["calendar_event"] = (await owner.post("/api/v1/me/calendar/events", {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z",
                                                                          "subject": name}, status=201))["id"]
    # Teamwork (issue 19): a note, a general notification and a chat message of the user; the company's Alerter template.
    w["journal_entry"] = (await owner.post("/api/v1/journal/entries", {"text": f"note of {name}", "number": "0612345678"}, status=201))["id"]
    await owner.post("/api/v1/journal/entries", {"text": f"general notification of {name}", "audience": "all"}, status=201)
    await owner.post("/api/v1/chat/messages", {"to": w["user2"], "text": f"hello from {name}"}, status=201)
    w["alerter_template"] = (await admin.post("/api/v1/alerter/templates", {"company_id": w["company"], "name": f"card {name}",
                                                                            "xml": ALERTER_XML}, status=201))["id"]
    # Presence (issue 18): a profile and an inactive forward rule of the user.
    w["profile"] = (await owner.post("/api/v1/me/profiles", {"name": f"Home {name}", "device": f"{n}01", "device_kind": "home"},
                                     status=201))["id"]
    w["forward_rule"] = (await owner.post("/api/v1/me/forward-rules", {"name": f"To {name} mobile", "forward": "immediate",
                                                                       "target": "0612345678", "active": False}, status=201))["id"]
    await admin.put(f"/api/v1/companies/{w['company']}/quotas/Caller", {"seats": 10})
    w["authorization"] = (
        await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=w["group"])
    )["id"]
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{w['directory']}", subject_type="user", subject_id=w["user"])
    w["user_import"] = (
        await admin.post(
            "/api/v1/user-imports",
            {
                "domain_id": w["domain"],
                "name": "LDAP",
                "source": "ldap",
                "host": "127.0.0.1",
                "port": 9,
                "base_dn": "dc=example,dc=com",
                "password": "bind-secret",
            },
            status=201,
        )
    )["id"]
    w["price_list"] = (await admin.post("/api/v1/price-lists", {"company_id": w["company"], "name": "Operator",
                                                             "csv": "0033,France,0.02,0,60,0.1,1,7,0,86400\n"}, status=201))["id"]
    w["parameter_value"] = (await admin.create("parameter_values", name="AuthorizeSms", scope="domain", scope_id=w["domain"], value="yes"))["id"]
    await admin.create("parameter_values", name="AuthorizeChat", scope="group", scope_id=w["group"], value="no")
    await admin.create("parameter_values", name="AuthorizeNote", scope="user", scope_id=w["user"], value="no")
    w["admin"] = (await admin.create("admins", login=f"admin-of-{name}", password=f"admin-{name}-password"))["id"]
    await admin.put(f"/api/v1/admins/{w['admin']}/companies", {"companies": [w["company"]]})
    # A failed SMS of the user (written directly: no SMS provider runs in this test).
    w["sms"] = server.run(lambda c: c.execute(sa.insert(schema.sms_outbox).values(
        company_id=w["company"], domain_id=w["domain"], user_id=w["user"], recipient="+33612345678", text=f"from {name}",
        encoding="gsm7", parts=1, status="failed", reason="no provider in this test")).inserted_primary_key[0])
    # An entry of the user's call log (written directly: the test's calls are still in progress).
    w["call_log"] = server.run(lambda c: c.execute(sa.insert(schema.call_logs).values(
        company_id=w["company"], domain_id=w["domain"], user_id=w["user"], device=f"{n}01", call_id="c-1", direction="incoming",
        remote_number="0612345678", started_at=sa.func.current_timestamp(), ended_at=sa.func.current_timestamp(), outcome="missed"))
        .inserted_primary_key[0])
    return w


class TenancyPbx(CstaXmlDriver):
    """The kernel's CSTA XML driver, under a name of this test."""

    type_name = "csta_tenancy"


class TenancyDrivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(TenancyPbx)


@pytest.fixture
async def world(twp_app: Any) -> Any:
    """Companies Alpha and Bravo, each with a PBX link to one simulated switch, and their callers."""
    sim = PbxSimulator(sim_config_for(TenancyPbx, {}, {}))
    await sim.start()
    options = {k: v for k, v in FAST_LINK_OPTIONS.items() if k in {f.name for f in attrs.fields(TenancyPbx.Config)}}
    links = {name.lower(): {"driver": "csta_tenancy", "company": name, "domain": "Paris", "host": "127.0.0.1", "port": sim.port, **options}
             for name in ("Alpha", "Bravo")}
    config: dict[str, Any] = {"pbx": {"links": links}}
    if SMS_HTTP:  # the first-party HTTP SMS provider: its receipt callbacks name a provider instance
        config["sms"] = {"providers": {f"{name.lower()}-sms": {
            "provider": "http", "company": name, "domain": "Paris", "url": "http://127.0.0.1:9/sms", "receipt_token": f"{name}-receipt-token"}
            for name in ("Alpha", "Bravo")}}
    try:
        server = await twp_app(config=config, plugins=[("tenancy-pbx", TenancyDrivers())])
        root = await server.admin()
        a = await build_company(server, root, "Alpha", 1)
        b = await build_company(server, root, "Bravo", 2)
        await wait_supervised(server, {"alpha": {"101", "102"}, "bravo": {"201", "202"}})
        for w in (a, b):
            w["link"], w["sms_instance"] = w["name"].lower(), f"{w['name'].lower()}-sms"
            made = await root.post(
                "/api/v1/calls", {"number": w["device2_number"], "device": w["device_number"], "domain_id": w["domain"]}, status=201
            )
            w["call"] = made["call_id"]
        limited = await server.admin(super_user=False, companies=(a["company"],))
        user_a = await server.login("user-Alpha", "pass-Alpha-123456")
        user_b = await server.login("user-Bravo", "pass-Bravo-123456")
        doc = await server.anonymous.get("/api/v1/openapi.json")
        yield {"server": server, "root": root, "A": a, "B": b, "limited": limited, "user_a": user_a, "user_b": user_b, "doc": doc}
    finally:
        await sim.stop()


async def wait_supervised(server: Any, devices: dict[str, set[str]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    links = server.kernel.telephony.links
    while not all(links[name].connected and numbers <= links[name].monitored for name, numbers in devices.items()):
        assert time.monotonic() < deadline, {name: (links[name].connected, sorted(links[name].monitored), links[name].last_error) for name in devices}
        await asyncio.sleep(0.02)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def fill_path(path: str, w: dict[str, Any]) -> str:
    """``path`` with the ids of world ``w``; fails naming the route when a parameter is unknown."""
    segment = path.removeprefix(API).split("/")[0]

    def value(match: re.Match[str]) -> str:
        param = match.group(1)
        if param == "id" and path in PATH_IDS:
            return str(w[PATH_IDS[path]])
        if param == "name" and path.startswith("/api/v1/me/directories/"):
            return w["directory_name"]
        if param == "id" and segment in SEGMENTS:
            return str(w[SEGMENTS[segment]])
        if param == "member" and path in MEMBERS:
            return str(w[MEMBERS[path]])
        if param == "application":
            return "Caller"
        if param == "call_id":
            return str(w["call"])  # a call is reached through a device too: the body names w's device
        if param == "name" and segment == "links":
            return w["link"]
        if param == "instance" and segment == "sms-http":
            return w["sms_instance"]
        if param == "link" and segment == "wildix":
            return w["link"]  # a PBX link of the company (not a Wildix one: the routes answer 404 either way)
        if param == "link" and segment in ("snom", "yealink"):
            return w["link"]  # a PBX link of the company (not a phone one: key presses are for super users, action URLs answer 404)
        if param == "event" and segment in ("snom", "yealink"):
            return {"snom": "incoming", "yealink": "incoming_call"}[segment]  # the action URL of a ringing call
        if param == "name" and path == "/api/v1/cluster/links/{name}/move":
            return w["link"]
        pytest.fail(f"{path}: the tenancy test does not know which object of a company fills {{{param}}}; teach it (SEGMENTS/MEMBERS)")

    return re.sub(r"{(\w+)}", value, path)


def body_for(method: str, op: dict[str, Any], target: dict[str, Any], own: dict[str, Any]) -> Any:
    """A request body that would be valid for a manager of ``target``'s company.

    References to other objects (``x-twp-ref``) point at ``own``'s objects, so the only
    foreign thing in an attack is what the path names; relation members and devices
    point at ``target``'s objects, which makes the operation as legitimate as possible.
    """
    if "requestBody" not in op:
        return None
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    props: dict[str, Any] = schema.get("properties", {})
    names = list(schema.get("required", []))
    if method in ("PATCH", "PUT") or not names:
        names += [p for p in PATCH_PREFERENCE if p in props and p not in names and not props[p].get("readOnly")][:1]
    body: dict[str, Any] = {}
    for name in names:
        prop = props.get(name, {})
        types = prop.get("type", "string")
        types = types if isinstance(types, list) else [types]
        if "x-twp-ref" in prop:
            ref = prop["x-twp-ref"]
            body[name] = own[{"companies": "company", "domains": "domain", "users": "user"}.get(ref, ref.rstrip("s"))]
        elif name == "user_id":
            body[name] = target["user2"]
        elif name == "device_id":
            body[name] = target["device2"]
        elif name == "domain_id":
            body[name] = target["domain"]
        elif name == "device":
            body[name] = target["device_number"]
        elif name == "companies":
            body[name] = [own["company"]]
        elif name in SAMPLES:
            body[name] = SAMPLES[name]
        elif "integer" in types:
            body[name] = target["user"]
        elif "boolean" in types:
            body[name] = True
        elif "array" in types:
            body[name] = []
        elif "object" in types:
            body[name] = {}
        else:
            body[name] = "x"
    # Call and device operations name the device they act on.
    if "device" in props and "device" not in body:
        body["device"] = target["device_number"]
        if "domain_id" in props:
            body["domain_id"] = target["domain"]
    return body


# What a user reads of its own without a path parameter; a few need a query naming what to read.
USER_QUERIES: dict[str, Any] = {
    "/api/v1/chat/messages": lambda w: {"with": str(w["user2"])},
    "/api/v1/journal": lambda w: {"number": "0612345678"},  # each user's note is about this number
    "/api/v1/directories/search": lambda w: {"q": w["name"]},  # B's user and contact bear B's name
    "/api/v1/directories/reverse": lambda w: {"number": w["contact_phone"]},
}
UNSTABLE_READS = {"/api/v1/events"}  # the WebSocket of live events, not a read


def user_reads(doc: dict[str, Any], w: dict[str, Any]) -> list[tuple[str, dict[str, str] | None]]:
    """The user-level GETs without a path parameter, with the query each needs for world ``w``."""
    return [(path, USER_QUERIES[path](w) if path in USER_QUERIES else None) for method, path, op in operations(doc)
            if method == "GET" and "{" not in path and op["x-twp-access"] in ("user", "any") and path not in UNSTABLE_READS]


async def snapshot(world: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:
    """Everything a super user reads of company ``w``: every GET by id, and every list filtered on it."""
    root, out = world["root"], {}
    for method, path, op in operations(world["doc"]):
        if method != "GET" or op["x-twp-access"] != "admin":
            continue
        if "{" in path:
            url = fill_path(path, w)
            out[url] = (await root.call("GET", url), root.last_status)
        elif any(p["name"] == "company_id" for p in op.get("parameters", [])):
            out[path] = await root.get(path, params={"company_id": str(w["company"]), "limit": "500"})
    out["me"] = await world["user_b"].get("/api/v1/me")  # B's user is still logged in
    for path, params in user_reads(world["doc"], w):  # and reads back its notes, chats, rules, profiles ... unchanged
        out[f"user {path} {params}"] = (await world["user_b"].call("GET", path, params=params), world["user_b"].last_status)
    for number in (w["device_number"], w["device2_number"]):  # B's call goes on
        out[f"calls at {number}"] = await root.get("/api/v1/calls", params={"device": number, "domain_id": str(w["domain"])})
    return out


async def test_company_a_reaches_no_object_of_company_b_through_any_endpoint(world):
    a, b, doc = world["A"], world["B"], world["doc"]
    before = await snapshot(world, b)
    assert before[f"/api/v1/users/{b['user']}"][1] == 200 and before[f"/api/v1/users/{b['user']}"][0]["login"] == "user-Bravo"

    attacked: list[str] = []
    leaks: list[str] = []
    for method, path, op in operations(doc):
        if "{" not in path:
            continue
        url = fill_path(path, b)
        attacked.append(f"{method} {path}")
        for who_name in ("limited", "user_a"):
            who = world[who_name]
            if who_name == "user_a" and op["x-twp-access"] == "admin":
                await who.call(method, url, body_for(method, op, b, a))
                if who.last_status != 403:
                    leaks.append(f"user of A: {method} {url} -> {who.last_status}, expected 403 (admin endpoint)")
                continue
            answer = await who.call(method, url, body_for(method, op, b, a))
            if who.last_status not in (403, 404):
                leaks.append(f"{who_name}: {method} {url} -> {who.last_status} {answer}")
            elif not (isinstance(answer, dict) and answer.get("error") and answer.get("detail")):
                leaks.append(f"{who_name}: {method} {url} -> {who.last_status} without a JSON error: {answer!r}")
            elif "Bravo" in str(answer):
                leaks.append(f"{who_name}: {method} {url}: the error names company B: {answer}")
    assert not leaks, "company A reached company B:\n" + "\n".join(leaks)
    # Every documented operation with a path parameter was tried (the routes are enumerated
    # from the document, so this guards against the loop silently skipping some).
    assert len(attacked) == sum(1 for _, p, _ in operations(doc) if "{" in p) >= 40

    # The same GETs on A's own objects work for A's admin: the 404s above are about B.
    for method, path, op in operations(doc):
        # (not admins, server-wide; not the Wildix pop-up URLs: super users only, and this world has no Wildix link)
        if method == "GET" and "{" in path and op["x-twp-access"] == "admin" and not path.startswith(("/api/v1/admins/", "/api/v1/wildix/")):
            await world["limited"].get(fill_path(path, a), status=200)

    after = await snapshot(world, b)
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"company B changed: {changed}"


async def test_lists_creations_and_server_wide_objects_stay_out_of_reach(world):
    a, b, doc = world["A"], world["B"], world["doc"]
    limited, user_a, root = world["limited"], world["user_a"], world["root"]

    # Lists: never a row of B, and ?company_id=B gives nothing.
    list_paths = [(p, op) for m, p, op in operations(doc) if m == "GET" and "{" not in p and op["x-twp-access"] == "admin"]
    filtered = 0
    for path, op in list_paths:
        data = await limited.call("GET", path, params={"limit": "500"} if any(q["name"] == "limit" for q in op.get("parameters", [])) else None)
        assert limited.last_status in (200, 403), f"{path} -> {limited.last_status} {data}"  # 403: server-wide, super users only
        for item in (data or {}).get("items", []) if isinstance(data, dict) else []:
            if isinstance(item, dict):
                assert item.get("company_id") in (None, a["company"]), f"{path} shows a row of another company to A's admin: {item}"
        if any(q["name"] == "company_id" for q in op.get("parameters", [])):
            filtered += 1
            assert (await limited.get(path, params={"company_id": str(b["company"])}))["items"] == [], path
            mine = await limited.get(path, params={"company_id": str(a["company"])})
            assert all(item["company_id"] == a["company"] for item in mine["items"]), path
            every = await root.get(path, params={"company_id": str(b["company"])})
            if path != "/api/v1/admins":
                assert every["items"], f"{path}: company B has no row here; teach build_company to create one, so this list is tested"
    assert filtered >= 10
    # Lists of the resources: the ids of B are absent, A's present.
    users = await limited.get("/api/v1/users")
    assert {u["id"] for u in users["items"]} == {a["user"], a["user2"]}
    assert (await limited.get("/api/v1/admins"))["items"] == []
    audit = await limited.get("/api/v1/audit", params={"limit": "500"})
    assert audit["items"] and all(e["company_id"] == a["company"] for e in audit["items"])

    # A user's own lists (chat, journal, notifications, rules, profiles, bosses ...): nothing of B, by name or by id.
    read = 0
    for path, params in user_reads(doc, b):
        answer = await user_a.call("GET", path, params=params)
        assert user_a.last_status in (200, 403, 404), f"user of A: GET {path} {params} -> {user_a.last_status} {answer}"
        shown = {k: v for k, v in answer.items() if k != "query"} if isinstance(answer, dict) else answer  # (a search echoes its query)
        assert "Bravo" not in str(shown), f"user of A: GET {path} {params} shows something of company B: {answer}"
        read += user_a.last_status == 200
    assert read >= 15
    for path, params in (("/api/v1/journal", {"number": "0612345678"}), ("/api/v1/notifications/general", None)):
        mine = await user_a.get(path, params=params)  # A's own note and notification are there: the absence of B's means something
        assert "Alpha" in str(mine), (path, mine)

    # Creating objects that reference B's ids: 404 naming the field, nothing stored.
    totals_before = {p: (await root.get(p))["total"] for p, op in list_paths if any(q["name"] == "company_id" for q in op.get("parameters", []))}
    refused = 0
    for method, path, op in operations(doc):
        if method != "POST" or "{" in path or op["x-twp-access"] != "admin" or "requestBody" not in op:
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        refs = [name for name, prop in schema.get("properties", {}).items() if "x-twp-ref" in prop]
        for ref_field in refs:
            body = {n: (f"30{refused}" if n == "number" else f"x{refused}") if schema["properties"][n]["type"] == "string" else a["domain"]
                    for n in schema.get("required", [])}
            ref = schema["properties"][ref_field]["x-twp-ref"]
            body[ref_field] = b[{"companies": "company", "domains": "domain", "users": "user"}[ref]]
            answer = await limited.call("POST", path, body)
            assert limited.last_status == 404 and answer["field"] == ref_field, f"POST {path} {body} -> {limited.last_status} {answer}"
            refused += 1
    assert refused >= 8  # domains, users, devices (domain and user), groups, intercom groups, queues, directories
    grants = [
        {"object_type": "application", "object_ref": "Caller", "subject_type": "user", "subject_id": b["user"]},
        {"object_type": "application", "object_ref": "Caller", "subject_type": "group", "subject_id": b["group"]},
        {"object_type": "directory", "object_ref": f"directory:{b['directory']}", "subject_type": "user", "subject_id": a["user"]},
        {"object_type": "phone_queue", "object_ref": f"phone_queue:{b['phone_queue']}", "subject_type": "user", "subject_id": a["user"]},
        {"object_type": "intercom_group", "object_ref": f"intercom_group:{b['intercom_group']}", "subject_type": "group", "subject_id": a["group"]},
        {"object_type": "calendar", "object_ref": f"user:{b['user']}", "subject_type": "user", "subject_id": a["user"]},
        {"object_type": "statistics", "object_ref": f"user:{a['user']}", "subject_type": "user", "subject_id": b["user"]},
    ]
    for grant in grants:
        answer = await limited.call("POST", "/api/v1/authorizations", grant)
        assert limited.last_status == 404, f"{grant} -> {limited.last_status} {answer}"
    for scope, key in (("domain", "domain"), ("group", "group"), ("user", "user")):
        answer = await limited.call("POST", "/api/v1/parameter-values", {"name": "AuthorizeSms", "scope": scope, "scope_id": b[key], "value": "yes"})
        assert limited.last_status == 404 and answer["field"] == "scope_id", answer
    await limited.post(f"/api/v1/groups/{a['group']}/members", {"user_id": b["user2"]}, status=404)
    await limited.post(f"/api/v1/intercom-groups/{a['intercom_group']}/devices", {"device_id": b["device2"]}, status=404)
    assert {p: (await root.get(p))["total"] for p in totals_before} == totals_before
    assert [u["id"] for u in (await root.get(f"/api/v1/groups/{a['group']}/members"))["items"]] == [a["user"]]

    # Server-wide things are for super users only.
    for path, body in (
        ("/api/v1/companies", {"name": "Charlie"}),
        ("/api/v1/admins", {"login": "sneaky", "password": "sneaky-password-1"}),
        ("/api/v1/parameter-values", {"name": "AuthorizeSms", "scope": "default", "value": "yes"}),
    ):
        answer = await limited.call("POST", path, body)
        assert limited.last_status == 403 and "super user" in answer["detail"], (path, answer)
    answer = await limited.call("PUT", f"/api/v1/companies/{a['company']}/quotas/Caller", {"seats": 1000})
    assert limited.last_status == 403, answer
    answer = await limited.call("PUT", f"/api/v1/admins/{b['admin']}/companies", {"companies": [a["company"], b["company"]]})
    assert limited.last_status in (403, 404), answer
    assert (await root.get(f"/api/v1/admins/{b['admin']}/companies"))["companies"] == [b["company"]]
    quotas = {q["application"]: q["seats"] for q in (await root.get(f"/api/v1/companies/{a['company']}/quotas"))["items"]}
    assert quotas["Caller"] == 10
    assert [c["name"] for c in (await root.get("/api/v1/companies"))["items"]] == ["Alpha", "Bravo"]

    # A user gets 403 on every admin endpoint, with or without ids.
    for method, path, op in operations(doc):
        if op["x-twp-access"] != "admin":
            continue
        answer = await user_a.call(method, fill_path(path, a), body_for(method, op, a, a))
        assert user_a.last_status == 403 and answer["error"] == "forbidden", f"{method} {path} -> {user_a.last_status}"


async def test_an_admin_of_another_company_cannot_press_keys_on_a_links_phones(twp_app: Any) -> None:
    """``POST /api/v1/snom/<link>/keys``: a vendor link does not tell its plugin its company, so the route is for super users."""
    from twp_csta.sim.phones import HttpPhones
    from twp_csta.sim.sipp import free_port

    sim = HttpPhones("snom", {"101": "127.0.0.1"}, port=free_port(), username="admin", password="phone-pw")
    await sim.start()
    try:
        link = {"driver": "snom", "company": "Alpha", "domain": "Paris", "host": "127.0.0.1", "port": 0, "firmware": "8.4.35",
                "phones": {"101": "127.0.0.1"}, "http_port": sim.port, "http_username": "admin", "http_password": "phone-pw",
                "action_url_secret": "k3y-for-actions", "request_timeout": 2, "keepalive_interval": 0}
        server = await twp_app(config={"pbx": {"links": {"alpha-phones": link}}})
        root = await server.admin()
        alpha = await root.create("companies", name="Alpha")
        bravo = await root.create("companies", name="Bravo")
        domain = await root.create("domains", company_id=alpha["id"], name="Paris")
        user = await root.create("users", domain_id=domain["id"], login="alice")
        await root.create("devices", user_id=user["id"], number="101")
        await wait_supervised(server, {"alpha-phones": {"101"}})
        bravo_admin = await server.admin(super_user=False, companies=(bravo["id"],))
        answer = await bravo_admin.call("POST", "/api/v1/snom/alpha-phones/keys", {"device": "101", "keys": "F1;ENTER"})
        assert bravo_admin.last_status == 403 and "super users" in answer["detail"], answer
        alpha_admin = await server.admin(super_user=False, companies=(alpha["id"],))
        await alpha_admin.post("/api/v1/snom/alpha-phones/keys", {"device": "101", "keys": "F1;ENTER"}, status=403)
        assert sim.phones["101"].requests == []  # the phone got nothing
        await root.post("/api/v1/snom/alpha-phones/keys", {"device": "101", "keys": "F1;ENTER"})  # a super user's presses arrive
        assert sim.phones["101"].requests == [("/command.htm", {"key": "F1;ENTER"})]
    finally:
        await sim.stop()
