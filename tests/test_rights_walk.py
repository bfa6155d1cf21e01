"""Rights on every endpoint (guide 7.4): one table walks each object type through allow and deny.

Company Acme has the domains Paris and Nice, company Bravo the domain Lyon.  Each domain
has a *viewer* (in the group "All"), a *loner* (in no group) and a *target* (who owns a
device and a calendar).  For every row of ``ROWS`` the walk, through the HTTP API only:

1. without a grant, the Paris viewer is denied (403, or the object is absent from lists);
2. a grant to the viewer allows it; revoking the grant denies it again;
3. a grant to the viewer's group allows it (not the loner); revoking denies it again;
4. a grant of the Nice object works for shareable types and is refused with 422 for the
   others (guide 7.4.2-7.4.6);
5. Bravo's object cannot be granted (404) and is never visible to Acme's users;
6. a limited administrator of Bravo neither sees nor grants Acme's objects.

The walk and the calendar test run on SQLite and PostgreSQL.  The live side (intercom presence on the events WebSocket, calls waiting at a queue) and
the details of each object type (calendar privacy, seats) have their own tests below,
with the PBX simulator where calls are involved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from twp_csta.testing import EXTERNAL, renamed_driver, start_lab
from twpcore import calendars, rights
from twpcore.testing.waiting import eventually

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")

ALLOWED, DENIED, HIDDEN = "allowed", "denied", "hidden"
DOMAINS = {"paris": ("Acme", "Paris", "Paname", "1"), "nice": ("Acme", "Nice", "Nissart", "2"), "lyon": ("Bravo", "Lyon", "Gone", "3")}
WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}


@attrs.define
class Person:
    id: int
    login: str
    password: str
    client: Any = None


@attrs.define
class World:
    server: Any
    admin: Any
    """A super user."""
    bravo_admin: Any
    """An administrator limited to company Bravo."""
    companies: dict[str, int]
    domains: dict[str, dict[str, Any]]
    """Per domain key: id, group (the "All" group), viewer, loner, target (``Person``), device (number)."""

    def viewer(self) -> Person:
        return self.domains["paris"]["viewer"]


@attrs.frozen
class Obj:
    """An object of a domain as a grant names it."""

    ref: str
    ident: int | None = None
    info: dict[str, Any] = attrs.field(factory=dict)


def default_grant(object_type: str, obj: Obj, w: World, subject: str, viewer: str = "paris") -> dict[str, Any]:
    """The authorization body: the viewer of domain ``viewer`` (``user``) or its group (``group``) may reach ``obj``."""
    d = w.domains[viewer]
    return {"object_type": object_type, "object_ref": obj.ref, "subject_type": subject,
            "subject_id": d["viewer"].id if subject == "user" else d["group"]}


@attrs.frozen
class Row:
    object_type: str
    shareable: bool
    """May a grant cross the domains of a company?"""
    make: Callable[[World, str], Awaitable[Obj | None]]
    """Create the object in a domain ("paris", "nice", "lyon"); None when the type has no per-domain object."""
    probe: Callable[[World, Person, Obj], Awaitable[str]]
    """Call the endpoints as a user: ALLOWED, DENIED (403 or absent from lists) or HIDDEN (404); asserts the answers' shape."""
    admin_paths: Callable[[Obj], list[str]] = lambda obj: []
    """Paths a limited admin of another company must get 404 on."""
    grant: Callable[..., dict[str, Any]] = default_grant
    """``grant(object_type, obj, world, "user" or "group", viewer="paris")``: the body letting that domain's viewer reach ``obj``."""


def refused(status: int, answer: dict[str, Any], *phrases: str) -> str:
    """DENIED for a 403 ``not_granted`` whose detail holds every phrase, HIDDEN for a 404; any other answer fails."""
    if status == 403:
        assert answer["error"] == "not_granted" and all(p in answer["detail"] for p in phrases), answer
        return DENIED
    assert status == 404, answer
    return HIDDEN


# -- applications (7.4.1) ------------------------------------------------------------------

async def make_application(w: World, domain: str) -> Obj | None:
    return None if domain == "lyon" else Obj("Caller")


async def probe_application(w: World, who: Person, obj: Obj) -> str:
    listed = obj.ref in (await who.client.get("/api/v1/me"))["applications"]
    # The application logs in (guide 7.4.1): refused unless the user holds it.
    anonymous = w.server.anonymous
    answer = await anonymous.call("POST", "/api/v1/auth/login", {"login": who.login, "password": who.password, "application": obj.ref})
    assert anonymous.last_status == (200 if listed else 403), (who.login, listed, answer)
    if not listed:
        assert answer["error"] == "application_not_granted", answer
        assert f"application {obj.ref} is not granted to user {who.login} (guide 7.4.1)" in answer["detail"], answer
    return ALLOWED if listed else DENIED


# -- directories (7.4.2) -------------------------------------------------------------------

async def make_directory(w: World, domain: str) -> Obj:
    d = w.domains[domain]
    name = f"Public {d['name']}"
    directory = await w.admin.create("directories", domain_id=d["id"], name=name, connector="twp_users")
    # Creating a users directory starts its first sync; wait for a finished one.
    await eventually(lambda: synced(w, directory["id"]), f"directory {name} synchronized", every=0.05)
    return Obj(f"directory:{directory['id']}", directory["id"], {"name": name, "last_name": d["last_name"], "device": d["device"]})


async def synced(w: World, ident: int) -> bool:
    syncs = (await w.admin.get(f"/api/v1/directories/{ident}/syncs"))["items"]
    return any(s["status"] == "ok" and s["records"] == 3 for s in syncs)


async def probe_directory(w: World, who: Person, obj: Obj) -> str:
    listed = obj.ident in [d["id"] for d in (await who.client.get("/api/v1/me/directories"))["items"]]
    found = (await who.client.get("/api/v1/directories/search", params={"q": obj.info["last_name"]}))["items"]
    assert [c["directory"] for c in found] == ([obj.info["name"]] if listed else []), (listed, found)
    reverse = await who.client.get("/api/v1/directories/reverse", params={"number": obj.info["device"]})
    assert reverse["found"] is listed, reverse
    if listed:
        assert reverse["contact"]["last_name"] == obj.info["last_name"], reverse
    return ALLOWED if listed else DENIED


# -- calendars (7.4.3) ---------------------------------------------------------------------

async def make_calendar(w: World, domain: str) -> Obj:
    target = w.domains[domain]["target"]
    return Obj(f"user:{target.id}", target.id)


async def probe_calendar(w: World, who: Person, obj: Obj) -> str:
    answer = await who.client.call("GET", f"/api/v1/users/{obj.ident}/calendar/events", params=WINDOW)
    status = who.client.last_status
    if status == 200:
        shown = [(e["subject"], e["location"], e["show_as"]) for e in answer["items"]]
        assert shown == [("Budget review", "Room 4", "tentative"), (None, None, "busy")], answer
        return ALLOWED
    return refused(status, answer, "guide 7.4.3")


# -- intercom groups (7.4.4) ---------------------------------------------------------------

async def make_intercom_group(w: World, domain: str) -> Obj:
    d = w.domains[domain]
    group = await w.admin.create("intercom_groups", domain_id=d["id"], name="Hotline")
    await w.admin.post(f"/api/v1/intercom-groups/{group['id']}/devices", {"device_id": d["device_id"]}, status=204)
    return Obj(f"intercom_group:{group['id']}", group["id"], {"device": d["device"]})


async def probe_intercom_group(w: World, who: Person, obj: Obj) -> str:
    listed = obj.ident in [g["id"] for g in (await who.client.get("/api/v1/me/intercom-groups"))["items"]]
    answer = await who.client.call("GET", f"/api/v1/intercom-groups/{obj.ident}/presence")
    status = who.client.last_status
    assert listed is (status == 200), (listed, status, answer)
    if status == 200:
        assert [(d["device"], d["supervised"]) for d in answer["items"]] == [(obj.info["device"], False)], answer
        return ALLOWED
    return refused(status, answer, "guide 7.4.4")


# -- phone queues (7.4.5) ------------------------------------------------------------------

async def make_phone_queue(w: World, domain: str) -> Obj:
    d = w.domains[domain]
    queue = await w.admin.create("phone_queues", domain_id=d["id"], name="Standard", number=f"{d['prefix']}300")
    return Obj(f"phone_queue:{queue['id']}", queue["id"])


async def probe_phone_queue(w: World, who: Person, obj: Obj) -> str:
    listed = obj.ident in [q["id"] for q in (await who.client.get("/api/v1/me/phone-queues"))["items"]]
    answer = await who.client.call("GET", f"/api/v1/phone-queues/{obj.ident}/calls")
    status = who.client.last_status
    assert listed is (status == 200), (listed, status, answer)
    if status == 200:
        assert answer["items"] == [] and answer["supervised"] is False and "guide 9.2.2" in answer["reason"], answer
        return ALLOWED
    return refused(status, answer, "guide 7.4.5")


# -- call logs (7.4.6), statistics and records (7.4, the reverse rule) -- helper: call logs ---------

CALLS_WINDOW = {"from": "2026-11-20", "to": "2026-11-20"}


async def make_call_log(w: World, domain: str) -> Obj:
    """The target's call log with one answered call (written as the recorder writes it: no endpoint creates entries)."""
    import sqlalchemy as sa

    from twpcore.store import schema

    d, target = w.domains[domain], w.domains[domain]["target"]
    number, start = f"04{d['prefix']}1234567", dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    w.server.run(lambda c: c.execute(sa.insert(schema.call_logs).values(
        company_id=w.companies[DOMAINS[domain][0]], domain_id=d["id"], user_id=target.id, device=d["device"], call_id=f"walk-{domain}",
        direction="incoming", remote_number=number, started_at=start, answered_at=start + dt.timedelta(seconds=5),
        ended_at=start + dt.timedelta(seconds=60), duration=55.0, outcome="answered")))
    return Obj(f"user:{target.id}", target.id, {"domain": domain, "number": number})


async def probe_call_log(w: World, who: Person, obj: Obj) -> str:
    answer = await who.client.call("GET", f"/api/v1/users/{obj.ident}/call-logs")
    status = who.client.last_status
    if status == 200:
        assert [(e["number"], e["outcome"], e["duration"]) for e in answer["items"]] == [(obj.info["number"], "answered", 55.0)], answer
        return ALLOWED
    return refused(status, answer, "guide 7.4.6")


async def make_viewed(w: World, domain: str, application: str | None) -> Obj:
    """The target, its call and a group holding it: the *subjects* of statistics and records grants (guide 7.4)."""
    obj = await make_call_log(w, domain)
    d = w.domains[domain]
    if application:  # the viewers hold the application, so the walk varies the data grant alone (guide 9.4.2)
        for role in ("viewer", "loner"):
            await w.admin.create("authorizations", object_type="application", object_ref=application, subject_type="user", subject_id=d[role].id)
    group = (await w.admin.create("groups", domain_id=d["id"], name="Patrons"))["id"]
    await w.admin.post(f"/api/v1/groups/{group}/members", {"user_id": d["target"].id}, status=204)
    return Obj(obj.ref, obj.ident, {**obj.info, "group": group})


def reverse_grant(object_type: str, obj: Obj, w: World, subject: str, viewer: str = "paris") -> dict[str, Any]:
    """Statistics and records go the other way (guide 7.4): the viewer of domain ``viewer`` is the object, the viewed
    user (``user``) or a group holding it (``group``) the subject."""
    d = w.domains[obj.info["domain"]]
    return {"object_type": object_type, "object_ref": f"user:{w.domains[viewer]['viewer'].id}", "subject_type": subject,
            "subject_id": d["target"].id if subject == "user" else obj.info["group"]}


async def make_statistics(w: World, domain: str) -> Obj:
    return await make_viewed(w, domain, "StatsAdmin")


async def probe_statistics(w: World, who: Person, obj: Obj) -> str:
    answer = await who.client.call("GET", f"/api/v1/users/{obj.ident}/statistics", params=CALLS_WINDOW)
    status = who.client.last_status
    if status == 200:
        assert answer["user_id"] == obj.ident and answer["totals"]["calls"] == answer["totals"]["answered"] == 1, answer
        assert answer["totals"]["total_duration"] == 55.0 and answer["totals"]["mean_time_to_answer"] == 5.0, answer
        return ALLOWED
    return refused(status, answer, f"object user:{who.id}", "other way")


async def make_records(w: World, domain: str) -> Obj:
    obj = await make_viewed(w, domain, None)
    d = w.domains[domain]
    location = f"https://recorder.example/{domain}.wav"
    await w.server.kernel.telephony.call_logs.add_recording(domain_id=d["id"], device=d["device"], call_id=f"walk-{domain}", started_at=time.time(),
                                                            duration=55.0, source="walk-recorder", location=location)
    return Obj(obj.ref, obj.ident, {**obj.info, "location": location})


async def probe_records(w: World, who: Person, obj: Obj) -> str:
    answer = await who.client.call("GET", f"/api/v1/users/{obj.ident}/records")
    status = who.client.last_status
    if status == 200:
        assert [(r["location"], r["call_id"]) for r in answer["items"]] == [(obj.info["location"], f"walk-{obj.info['domain']}")], answer
        return ALLOWED
    return refused(status, answer, f"object user:{who.id}", "other way")


ROWS: list[Row] = [
    Row("application", True, make_application, probe_application),
    Row("directory", True, make_directory, probe_directory, lambda o: [f"/api/v1/directories/{o.ident}"]),
    Row("calendar", True, make_calendar, probe_calendar, lambda o: [f"/api/v1/users/{o.ident}"]),
    Row("intercom_group", True, make_intercom_group, probe_intercom_group,
        lambda o: [f"/api/v1/intercom-groups/{o.ident}", f"/api/v1/intercom-groups/{o.ident}/presence"]),
    Row("phone_queue", False, make_phone_queue, probe_phone_queue,
        lambda o: [f"/api/v1/phone-queues/{o.ident}", f"/api/v1/phone-queues/{o.ident}/calls"]),
    # call logs, statistics, records (helper: call logs)
    Row("call_log", False, make_call_log, probe_call_log, lambda o: [f"/api/v1/users/{o.ident}/call-logs"]),
    Row("statistics", False, make_statistics, probe_statistics,
        lambda o: [f"/api/v1/users/{o.ident}/statistics", f"/api/v1/groups/{o.info['group']}/statistics"], reverse_grant),
    Row("records", False, make_records, probe_records, lambda o: [f"/api/v1/users/{o.ident}/records"], reverse_grant),
    # A row needs make (the object in "paris", "nice", "lyon") and probe (ALLOWED, DENIED or HIDDEN, asserting the
    # answers); statistics and records, whose object is the viewer (guide 7.4), also pass grant= to build the body.
]


async def build_world(twp_app: Any) -> World:
    server = await twp_app()
    admin = await server.admin()
    companies = {name: (await admin.create("companies", name=name))["id"] for name in ("Acme", "Bravo")}
    await admin.put(f"/api/v1/companies/{companies['Acme']}/quotas/Caller", {"seats": 5})
    domains: dict[str, dict[str, Any]] = {}
    for key, (company, name, last_name, prefix) in DOMAINS.items():
        d: dict[str, Any] = {"name": name, "last_name": last_name, "prefix": prefix, "device": f"{prefix}101"}
        d["id"] = (await admin.create("domains", company_id=companies[company], name=name))["id"]
        d["group"] = (await admin.create("groups", domain_id=d["id"], name="All"))["id"]
        for role in ("viewer", "loner", "target"):
            login, password = f"{role}-{key}", f"{role}-{key}-password"
            user = await admin.create("users", domain_id=d["id"], login=login, password=password, first_name=role.title(),
                                      last_name=last_name if role == "target" else role.title())
            d[role] = Person(user["id"], login, password)
        await admin.post(f"/api/v1/groups/{d['group']}/members", {"user_id": d["viewer"].id}, status=204)
        d["device_id"] = (await admin.create("devices", user_id=d["target"].id, number=d["device"]))["id"]
        domains[key] = d
    for d in domains.values():
        for role in ("viewer", "loner", "target"):
            person = d[role]
            person.client = await server.login(person.login, person.password)
        # The target's calendar: one ordinary event, one private one (guide 7.4.3).
        target = d["target"].client
        await target.post("/api/v1/me/calendar/events", {"start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T10:00:00+01:00",
                                                         "subject": "Budget review", "location": "Room 4", "show_as": "tentative"}, status=201)
        await target.post("/api/v1/me/calendar/events", {"start": "2026-12-01T14:00:00Z", "end": "2026-12-01T15:00:00Z",
                                                         "subject": "Doctor", "location": "Clinic", "private": True}, status=201)
    bravo_admin = await server.admin(super_user=False, companies=(companies["Bravo"],))
    return World(server, admin, bravo_admin, companies, domains)


@pytest.fixture
async def world(twp_app: Any) -> World:
    return await build_world(twp_app)


async def _grant(w: World, row: Row, obj: Obj, subject: str) -> tuple[int, dict[str, Any]]:
    answer = await w.admin.call("POST", "/api/v1/authorizations", row.grant(row.object_type, obj, w, subject))
    return w.admin.last_status, answer


BOTH_STORES = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)


@BOTH_STORES
@pytest.mark.parametrize("row", ROWS, ids=[r.object_type for r in ROWS])
async def test_every_object_type_walks_through_allow_and_deny(world: World, row: Row):
    w = world
    paris = w.domains["paris"]
    viewer, loner = paris["viewer"], paris["loner"]
    objs = {key: await row.make(w, key) for key in DOMAINS}
    here = objs["paris"]
    assert here is not None
    seen: list[tuple[str, str, str]] = []  # (step, expected, got)

    async def check(step: str, who: Person, obj: Obj, expected: str | tuple[str, ...]) -> None:
        got = await row.probe(w, who, obj)
        seen.append((step, str(expected), got))
        assert got in (expected if isinstance(expected, tuple) else (expected,)), f"{row.object_type}: {step}: expected {expected}, got {got}"

    await check("no grant", viewer, here, DENIED)
    for subject in ("user", "group"):
        status, grant = await _grant(w, row, here, subject)
        assert status == 201, grant
        await check(f"{subject} grant", viewer, here, ALLOWED)
        await check(f"{subject} grant, loner", loner, here, DENIED)
        await w.admin.delete(f"/api/v1/authorizations/{grant['id']}")
        await check(f"{subject} grant revoked", viewer, here, DENIED)

    # Across the domains of a company (guide 7.4.2-7.4.6).
    nice = objs["nice"]
    assert nice is not None
    status, grant = await _grant(w, row, nice, "group")
    if row.shareable:
        assert status == 201, grant
        await check("grant across domains", viewer, nice, ALLOWED)
        await w.admin.delete(f"/api/v1/authorizations/{grant['id']}")
        await check("grant across domains revoked", viewer, nice, DENIED)
    else:
        assert status == 422 and "can't be shared between domains" in grant["detail"] and "Nice" in grant["detail"], grant
        await check("refused grant across domains", viewer, nice, DENIED)

    # Another company's object: refused at grant time as if it did not exist, never visible.
    lyon = objs["lyon"]
    if lyon is not None:
        status, grant = await _grant(w, row, lyon, "user")
        assert status == 404 and grant["field"] == "object_ref" and "Lyon" not in grant["detail"] and "Bravo" not in grant["detail"], grant
        await check("another company's object", viewer, lyon, (DENIED, HIDDEN))
        # Granted inside its own company (by Bravo's limited admin), it still stays out of Acme's reach.
        await check("another company's object, its own viewer without grant", w.domains["lyon"]["viewer"], lyon, DENIED)
        own = await w.bravo_admin.post("/api/v1/authorizations", row.grant(row.object_type, lyon, w, "group", "lyon"), status=201)
        assert own["company_id"] == w.companies["Bravo"]
        await check("another company's object granted in its company", w.domains["lyon"]["viewer"], lyon, ALLOWED)
        await check("another company's object granted in its company, seen from Acme", viewer, lyon, (DENIED, HIDDEN))

    # A limited admin of Bravo neither sees nor grants Acme's objects.
    b = w.bravo_admin
    # (An application is no company's object: Bravo's admin may grant it to Bravo's users.)
    for for_viewer in ("paris", "lyon") if lyon is not None else ("paris",):
        body = row.grant(row.object_type, here, w, "user", for_viewer)
        answer = await b.call("POST", "/api/v1/authorizations", body)
        assert b.last_status == 404, (body, answer)
    for path in row.admin_paths(here):
        answer = await b.call("GET", path)
        assert b.last_status == 404 and "Acme" not in str(answer), (path, answer)
    status, kept = await _grant(w, row, here, "group")
    assert status == 201, kept
    listed = await b.get("/api/v1/authorizations", params={"object_type": row.object_type, "limit": "500"})
    assert kept["id"] not in [g["id"] for g in listed["items"]]
    assert len(listed["items"]) == (1 if lyon is not None else 0), listed  # Bravo's own grant, made above
    assert all(g["company_id"] == w.companies["Bravo"] for g in listed["items"]), listed
    await b.call("DELETE", f"/api/v1/authorizations/{kept['id']}")
    assert b.last_status == 404
    await check("a grant Bravo's admin tried to revoke", viewer, here, ALLOWED)
    assert len(seen) >= 9


# -- applications: seats bound every way a user gains one (7.4.1) --------------------------

async def test_application_seats_and_the_login_refusal(world: World):
    w = world
    acme, paris = w.companies["Acme"], w.domains["paris"]
    admin, viewer, loner, target = w.admin, paris["viewer"], paris["loner"], paris["target"]
    await admin.put(f"/api/v1/companies/{acme}/quotas/Caller", {"seats": 2})
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=paris["group"])
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="user", subject_id=target.id)
    assert {q["application"]: q for q in (await admin.get(f"/api/v1/companies/{acme}/quotas"))["items"]}["Caller"] == {
        "application": "Caller", "seats": 2, "used": 2}

    # The third seat is refused whichever way it would be taken, and nothing is stored.
    answer = await admin.call(
        "POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Caller", "subject_type": "user", "subject_id": loner.id}
    )
    assert admin.last_status == 409 and answer["error"] == "quota_exceeded" and "quota of 2" in answer["detail"] and "Acme" in answer["detail"], (
        answer
    )
    answer = await admin.call("POST", f"/api/v1/groups/{paris['group']}/members", {"user_id": loner.id})
    assert admin.last_status == 409 and "quota of 2" in answer["detail"], answer
    await admin.patch(f"/api/v1/users/{target.id}", {"enabled": False})
    await admin.post(f"/api/v1/groups/{paris['group']}/members", {"user_id": loner.id}, status=204)  # the freed seat
    answer = await admin.patch(f"/api/v1/users/{target.id}", {"enabled": True}, status=409)
    assert "quota of 2" in answer["detail"]
    assert (await admin.get(f"/api/v1/users/{target.id}"))["enabled"] is False
    # Nice is another domain of the same company: the same licence pool.
    answer = await admin.call("POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Caller", "subject_type": "group",
                                                                 "subject_id": w.domains["nice"]["group"]})
    assert admin.last_status == 409 and "needs 3 seats" in answer["detail"], answer
    # Bravo's seats are its own.
    lyon = w.domains["lyon"]
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=lyon["group"])
    assert (await lyon["viewer"].client.get("/api/v1/me"))["applications"] == ["Caller"]

    assert (await viewer.client.get("/api/v1/me"))["applications"] == ["Caller"]
    assert (await loner.client.get("/api/v1/me"))["applications"] == ["Caller"]
    # What the login check (guide 7.4.1) says to a user without the application.
    nice_viewer = w.domains["nice"]["viewer"]
    anonymous = w.server.anonymous
    answer = await anonymous.call(
        "POST", "/api/v1/auth/login", {"login": nice_viewer.login, "password": nice_viewer.password, "application": "Caller"}
    )
    assert anonymous.last_status == 403 and answer["field"] == "application" and "viewer-nice (guide 7.4.1)" in answer["detail"], answer
    await anonymous.post("/api/v1/auth/login", {"login": viewer.login, "password": viewer.password, "application": "Caller"}, status=200)
    answer = await anonymous.call("POST", "/api/v1/auth/login", {"login": viewer.login, "password": viewer.password, "application": "Calller"})
    assert anonymous.last_status == 422 and 'application "Calller" is unknown' in answer["detail"], answer
    with pytest.raises(rights.RightsError) as refused:
        w.server.run(rights.check_application_login, nice_viewer.id, "Caller")
    assert refused.value.status == 403 and refused.value.field == "application"
    assert str(refused.value) == ("application Caller is not granted to user viewer-nice (guide 7.4.1); "
                                  "ask an administrator to grant it to the user or to one of its groups")
    with pytest.raises(rights.RightsError, match='application "Calller" is unknown; use one of Caller, Alerter'):
        w.server.run(rights.check_application_login, viewer.id, "Calller")
    assert w.server.run(rights.check_application_login, viewer.id, "Caller") is None
    # A disabled user holds no application, whatever its grants.
    assert w.server.run(rights.user_can, target.id, "application", "Caller") is False


# -- calendars (7.4.3) ---------------------------------------------------------------------

@BOTH_STORES
async def test_calendar_events_own_crud_privacy_group_grants_and_providers(world: World):
    w = world
    paris, nice = w.domains["paris"], w.domains["nice"]
    viewer, target = paris["viewer"].client, nice["target"].client
    mine = (await target.get("/api/v1/me/calendar/events", params=WINDOW))["items"]
    assert [(e["subject"], e["start"], e["private"], e["source"]) for e in mine] == [
        ("Budget review", "2026-12-01T08:00:00+00:00", False, "twp"), ("Doctor", "2026-12-01T14:00:00+00:00", True, "twp")]

    # Bad events are refused naming the field; nothing is stored.
    for body, field, words in [
        ({"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z"}, "end", "is not after start"),
        ({"start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00Z"}, "start", "has no time zone"),
        ({"start": "tomorrow", "end": "2026-12-01T11:00:00Z"}, "start", "is not an ISO 8601 time"),
        ({"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "show_as": "asleep"}, "show_as", "use one of free, tentative, busy, away"),
        ({"start": "2026-12-01T10:00:00Z"}, "end", "required"),
    ]:
        answer = await target.call("POST", "/api/v1/me/calendar/events", body)
        assert (target.last_status, answer["field"]) == (400, field) and words in answer["detail"], (body, answer)
    assert len((await target.get("/api/v1/me/calendar/events", params=WINDOW))["items"]) == 2
    bad = await target.call("GET", "/api/v1/me/calendar/events", params={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
    assert target.last_status == 400 and bad["field"] == "to"

    # The calendar of Nice's group "All" is granted to Paris's group "All" (guide 7.4.3's example, across domains).
    await w.admin.post(f"/api/v1/groups/{nice['group']}/members", {"user_id": nice["target"].id}, status=204)
    grant = await w.admin.create(
        "authorizations", object_type="calendar", object_ref=f"group:{nice['group']}", subject_type="group", subject_id=paris["group"]
    )
    seen = await viewer.get(f"/api/v1/users/{nice['target'].id}/calendar/events", params=WINDOW)
    assert seen["user"]["login"] == "target-nice"
    assert [{k: e[k] for k in ("subject", "location", "show_as", "private", "start", "end")} for e in seen["items"]] == [
        {
            "subject": "Budget review",
            "location": "Room 4",
            "show_as": "tentative",
            "private": False,
            "start": "2026-12-01T08:00:00+00:00",
            "end": "2026-12-01T09:00:00+00:00",
        },
        {
            "subject": None,
            "location": None,
            "show_as": "busy",
            "private": True,
            "start": "2026-12-01T14:00:00+00:00",
            "end": "2026-12-01T15:00:00+00:00",
        },
    ]
    assert "source" not in seen["items"][0]
    # Only the group's members' calendars: not Nice's loner, who is not in it.
    await viewer.get(f"/api/v1/users/{nice['loner'].id}/calendar/events", status=403)

    # Changes and deletions are the owner's alone.
    event_id = mine[0]["id"]
    await viewer.call("PATCH", f"/api/v1/me/calendar/events/{event_id}", {"subject": "pwned"}, status=404)
    await viewer.call("DELETE", f"/api/v1/me/calendar/events/{event_id}", status=404)
    moved = await target.patch(
        f"/api/v1/me/calendar/events/{event_id}", {"start": "2026-12-01T11:00:00Z", "end": "2026-12-01T12:00:00Z", "show_as": "away"}
    )
    assert (moved["start"], moved["show_as"], moved["subject"]) == ("2026-12-01T11:00:00+00:00", "away", "Budget review")
    answer = await target.call("PATCH", f"/api/v1/me/calendar/events/{event_id}", {"end": "2026-12-01T10:00:00Z"})
    assert target.last_status == 400 and answer["field"] == "end"

    # A provider (an Exchange connector) feeds events; they are read-only through the API.
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    fed = [calendars.CalendarEvent(start + dt.timedelta(hours=16), start + dt.timedelta(hours=17), "Call with supplier", source_id="AAMk-1")]
    assert w.server.run(calendars.replace_events, nice["target"].id, "exchange", fed, start, start + dt.timedelta(days=1)) == {
        "deleted": 0,
        "inserted": 1,
    }
    again = [attrs.evolve(fed[0], subject="Call with supplier (moved)")]
    assert w.server.run(calendars.replace_events, nice["target"].id, "exchange", again, start, start + dt.timedelta(days=1)) == {
        "deleted": 1,
        "inserted": 1,
    }
    with pytest.raises(calendars.CalendarError, match="other than 'twp'"):
        w.server.run(calendars.replace_events, nice["target"].id, "twp", [], start, start + dt.timedelta(days=1))
    items = (await viewer.get(f"/api/v1/users/{nice['target'].id}/calendar/events", params=WINDOW))["items"]
    assert [e["subject"] for e in items] == ["Budget review", None, "Call with supplier (moved)"]
    provider_event = (await target.get("/api/v1/me/calendar/events", params=WINDOW))["items"][-1]
    assert provider_event["source"] == "exchange"
    answer = await target.call("PATCH", f"/api/v1/me/calendar/events/{provider_event['id']}", {"subject": "mine now"})
    assert target.last_status == 409 and "comes from exchange" in answer["detail"]
    await target.delete(f"/api/v1/me/calendar/events/{event_id}")

    # Leaving the group takes the calendar out of reach; revoking too.
    await w.admin.delete(f"/api/v1/groups/{nice['group']}/members/{nice['target'].id}")
    await viewer.get(f"/api/v1/users/{nice['target'].id}/calendar/events", status=403)
    await w.admin.delete(f"/api/v1/authorizations/{grant['id']}")
    # Administrators use the admin endpoints; the calendar routes are for users.
    await w.admin.call("GET", f"/api/v1/users/{nice['target'].id}/calendar/events", status=403)


# -- intercom groups and phone queues, live through the PBX simulator (7.4.4, 7.4.5) ------

PLUGINS = renamed_driver("csta_walk")


async def test_intercom_presence_reaches_granted_users_live_and_stops_when_the_grant_goes(twp_app):
    lab = await start_lab(twp_app, "csta_walk", plugins=PLUGINS)
    try:
        admin, tel = lab.admin, lab.kernel.telephony
        alice_device = (await admin.get("/api/v1/devices", params={"number": "201"}))["items"][0]["id"]
        hotline = await admin.create("intercom_groups", domain_id=lab.domain_id, name="Hotline")
        await admin.post(f"/api/v1/intercom-groups/{hotline['id']}/devices", {"device_id": alice_device}, status=204)
        support = await admin.create("groups", domain_id=lab.domain_id, name="Support")
        await admin.post(f"/api/v1/groups/{support['id']}/members", {"user_id": lab.user_ids["bob"]}, status=204)
        await admin.create(
            "authorizations",
            object_type="intercom_group",
            object_ref=f"intercom_group:{hotline['id']}",
            subject_type="group",
            subject_id=support["id"],
        )
        bob, carol = await lab.ws("bob"), await lab.ws("carol")
        await eventually(lambda: lab.user_ids["bob"] in tel.watchers.get((lab.domain_id, "201"), ()), "bob watches 201")

        mark_bob, mark_carol = bob.mark(), carol.mark()
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await bob.expect("presence.changed", after=mark_bob, device="201", presence="ringing")
        presence = await lab.users["bob"].get(f"/api/v1/intercom-groups/{hotline['id']}/presence")
        assert [(d["device"], d["presence"], d["supervised"], d["user_id"]) for d in presence["items"]] == [
            ("201", "ringing", True, lab.user_ids["alice"])
        ]
        await lab.users["carol"].get(f"/api/v1/intercom-groups/{hotline['id']}/presence", status=403)
        # Presence only: the call itself (who calls, from where) stays the owner's.
        await bob.expect_no("call.delivered", within=0.2, after=mark_bob)
        await carol.expect_no("presence.changed", within=0.0, after=mark_carol, device="201")
        # Do-not-disturb is device state too.
        await lab.users["alice"].put("/api/v1/devices/do-not-disturb", {"on": True})
        await bob.expect("device.do_not_disturb", after=mark_bob, device="201", on=True)
        presence = await lab.users["bob"].get(f"/api/v1/intercom-groups/{hotline['id']}/presence")
        assert presence["items"][0]["do_not_disturb"] is True
        await carol.expect_no("device.do_not_disturb", within=0.1, after=mark_carol)

        # Bob leaves the group: the watcher map follows the membership change.
        await admin.delete(f"/api/v1/groups/{support['id']}/members/{lab.user_ids['bob']}")
        await eventually(lambda: lab.user_ids["bob"] not in tel.watchers.get((lab.domain_id, "201"), ()), "bob no longer watches 201")
        mark_bob = bob.mark()
        lab.sim.hang_up(EXTERNAL, call_id)
        await lab.ws("alice")
        await lab.wait_calls("alice", lambda items: items == [])
        await bob.expect_no("presence.changed", within=0.2, after=mark_bob, device="201")
        await lab.users["bob"].get(f"/api/v1/intercom-groups/{hotline['id']}/presence", status=403)
    finally:
        await lab.close()


async def test_phone_queue_calls_come_from_the_call_model_for_granted_users(twp_app):
    lab = await start_lab(twp_app, "csta_walk", plugins=PLUGINS, sim_options={"queues": {"300": ("203",)}, "queue_delay": 30.0})
    try:
        admin = lab.admin
        # Guide 9.2.2: the queue is a supervised device of the domain, with the queue's number.
        await admin.create("devices", domain_id=lab.domain_id, number="300")
        link = lab.kernel.telephony.links[lab.link]
        await eventually(lambda: "300" in link.monitored, "the queue's device is monitored")
        queue = await admin.create("phone_queues", domain_id=lab.domain_id, name="Standard", number="300")
        await admin.create(
            "authorizations", object_type="phone_queue", object_ref=f"phone_queue:{queue['id']}", subject_type="user", subject_id=lab.user_ids["bob"]
        )
        bob, alice = lab.users["bob"], lab.users["alice"]
        empty = await bob.get(f"/api/v1/phone-queues/{queue['id']}/calls")
        assert (empty["supervised"], empty["items"], empty["reason"]) == (True, [], None)

        # Live: the queue's call events reach granted users (guide 7.4.5), nobody else.
        await eventually(lambda: lab.kernel.telephony.queue_watchers.get((lab.domain_id, "300")) == {lab.user_ids["bob"]},
                         "the grant reaches the queue watchers")
        bob_ws, alice_ws = await lab.ws("bob"), await lab.ws("alice")

        def queue_call_events(stream):
            return [e["type"] for e in stream.events if e.get("type", "").startswith("call.") and e.get("data", {}).get("device") == "300"]

        call_id = await lab.sim.incoming_call(EXTERNAL, "300")
        await eventually(lambda: queue_call_events(bob_ws), "bob sees the call arrive in the queue")
        deadline = time.monotonic() + 3
        while not (calls := await bob.get(f"/api/v1/phone-queues/{queue['id']}/calls"))["items"]:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.02)
        assert [(c["call_id"], c["state"], c["caller"]) for c in calls["items"]] == [(call_id, "queued", EXTERNAL)]
        assert calls["items"][0]["waiting"] >= 0 and (calls["name"], calls["number"]) == ("Standard", "300")
        assert [(q["name"], q["waiting"], q["supervised"]) for q in (await bob.get("/api/v1/me/phone-queues"))["items"]] == [("Standard", 1, True)]
        answer = await alice.call("GET", f"/api/v1/phone-queues/{queue['id']}/calls")
        assert alice.last_status == 403 and "phone queue Standard is not granted to you (guide 7.4.5)" in answer["detail"]
        assert (await alice.get("/api/v1/me/phone-queues"))["items"] == []
        # The company's administrators see it too.
        assert len((await admin.get(f"/api/v1/phone-queues/{queue['id']}/calls"))["items"]) == 1

        lab.sim.hang_up(EXTERNAL, call_id)
        deadline = time.monotonic() + 3
        while (await bob.get(f"/api/v1/phone-queues/{queue['id']}/calls"))["items"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await eventually(lambda: "call.cleared" in queue_call_events(bob_ws), "bob sees the call leave the queue")
        assert queue_call_events(alice_ws) == []  # not granted: not a single event of the queue
    finally:
        await lab.close()
