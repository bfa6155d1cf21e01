"""The directory service through the API: syncs and their reports, failures, rights, search, reverse lookup,
merge, VIP, red list, scheduler, built-in directories, private contacts and lists, pushed contacts.

The source is a connector plugin written here (a list the test controls, which can be
made to fail the ways real servers do); the SQL and file connectors have their own tests
against real databases and files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import threading
import uuid
from typing import ClassVar

import attrs
import pytest
import sqlalchemy as sa

from twpcore.clock import next_daily
from twpcore.directory import db
from twpcore.directory import service as directory_service
from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthFailed, ConnectorError, DirectoryConnector, NotReady, PbxDriver, SourceRecord
from twpcore.schema import setting
from twpcore.store import schema as t
from twpcore.telephony.events import PbxEvent

SOURCES: dict[str, dict] = {}


@attrs.frozen
class MemoryConfig:
    source: str = setting(help="key of the test's source")
    password: str = setting("", help="checked against the source's password")


class MemorySource(DirectoryConnector):
    """A directory server the test holds in its hand: records, and how it fails."""

    type_name = "memory"
    Config = MemoryConfig
    capabilities = frozenset({"sync", "test_connection"})

    async def setup(self):
        state = SOURCES[self.config.source]
        if state.get("down"):
            raise NotReady("connection refused by 127.0.0.1:389")
        if state.get("broken"):
            raise ConnectorError("127.0.0.1:389 answered HTTP, not LDAP")
        if state.get("hang"):
            await asyncio.Event().wait()
        if state.get("password", "") != self.config.password:
            raise AuthFailed("invalid credentials")

    async def test_connection(self):
        return f"{len(SOURCES[self.config.source]['records'])} entries"

    async def records(self, user=None):
        state = SOURCES[self.config.source]
        if state.get("gate") is not None:
            await state["gate"].wait()  # a slow server: the test says when it answers
        for i, (rid, fields) in enumerate(state["records"]):
            if state.get("die_after") == i:
                raise ConnectorError("the server closed the connection while paging")
            if state.get("crash_after") == i:
                raise RuntimeError("boom")
            yield SourceRecord(rid, fields)


class MemoryPlugin:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(MemorySource)


def source(records, **state):
    key = uuid.uuid4().hex
    SOURCES[key] = {"records": list(records), **state}
    return key


FIELDS = {"id": "uid", "last_name": "sn", "first_name": "givenName", "company": "o", "email": "mail",
          "phone": "telephoneNumber", "mobile": "mobile"}


async def world(twp_app, plugins=(), **config):
    server = await twp_app(plugins=[("memory", MemoryPlugin()), *plugins], config=config or None)
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris")
    nice = await admin.create("domains", company_id=company["id"], name="Nice")
    group = await admin.create("groups", domain_id=paris["id"], name="All")
    users = {}
    for login in ("alice", "bob"):
        u = await admin.create("users", domain_id=paris["id"], login=login, first_name=login.title(), password="a-long-password-1")
        users[login] = u
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": users["alice"]["id"]}, status=204)
    return {"server": server, "admin": admin, "company": company, "paris": paris, "nice": nice, "group": group, "users": users}


async def directory(w, name, records=(), domain="paris", grant=("group", None), **settings):
    admin = w["admin"]
    key = settings.pop("key", None) or source(records)
    body = {"domain_id": w[domain]["id"], "name": name, "connector": "memory", "options": {"source": key}, "fields": FIELDS, **settings}
    d = await admin.create("directories", **body)
    if grant:
        kind, ident = grant
        ident = ident or (w["group"]["id"] if kind == "group" else w["users"]["alice"]["id"])
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type=kind, subject_id=ident)
    d["source"] = key
    return d


def person(uid, sn, given="", o="", mail="", tel=None, mobile=None, **extra):
    fields = {"uid": uid, "sn": sn, "givenName": given, "o": o, "mail": mail, "telephoneNumber": tel, "mobile": mobile, **extra}
    return (f"uid={uid},ou=people", fields)


async def test_sync_reports_created_updated_deleted_ignored_and_keeps_ids(twp_app):
    w = await world(twp_app)
    d = await directory(w, "LDAP", [person("1", "Dupont", "Jean", tel="01 55 17 18 89"), person("2", "Martin", "Léa"),
                                    ("uid=3", {"uid": "3", "ou": "Compta"}), person("1", "Dupond", "Jean")])
    report = await w["admin"].post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["status"], report["records"], report["created"], report["ignored"]) == ("ok", 4, 2, 2)
    assert report["problems"] == [{"record": "uid=3", "reason": "no name and no number"},
                                  {"record": "uid=1,ou=people", "reason": "duplicate id '1' (already given by record uid=1,ou=people)"}]
    alice = await w["server"].login("alice", "a-long-password-1")
    first = (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"][0]

    SOURCES[d["source"]]["records"] = [person("1", "Dupont", "Jean", tel="01 55 17 18 90"), person("4", "Petit", "Paul")]
    report = await w["admin"].post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["created"], report["updated"], report["deleted"], report["unchanged"]) == (1, 1, 1, 0)
    again = (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"][0]
    assert again["id"] == first["id"] and again["numbers"] == [{"type": "phone", "number": "01 55 17 18 90"}]
    assert (await alice.get("/api/v1/directories/search", params={"q": "martin"}))["items"] == []
    report = await w["admin"].post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["created"], report["updated"], report["deleted"], report["unchanged"]) == (0, 0, 0, 2)

    history = await w["admin"].get(f"/api/v1/directories/{d['id']}/syncs")
    assert history["total"] == 3 and [h["trigger"] for h in history["items"]] == ["api", "api", "api"]
    assert history["items"][-1]["problems"][0] == {"record": "uid=3", "reason": "no name and no number"}
    assert history["items"][0]["duration"] is not None and history["items"][0]["finished_at"]


@pytest.mark.parametrize("failure, error", [
    ({"down": True}, "source not ready: connection refused by 127.0.0.1:389"),
    ({"password": "changed"}, "credentials refused: invalid credentials"),
    ({"die_after": 1}, "the server closed the connection while paging"),
    ({"crash_after": 1}, "RuntimeError: boom"),
])
async def test_a_failed_sync_keeps_the_previous_contacts(twp_app, failure, error):
    w = await world(twp_app)
    d = await directory(w, "LDAP", [person("1", "Dupont", tel="0155171889"), person("2", "Martin")])
    assert (await w["admin"].post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 2
    SOURCES[d["source"]]["records"] = [person("3", "Petit")]
    SOURCES[d["source"]]["records"] += [person("4", "Grand")]
    SOURCES[d["source"]].update(failure)
    report = await w["admin"].post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and error in report["error"] and "previous contacts kept" in report["error"]
    assert (report["created"], report["deleted"]) == (0, 0)
    alice = await w["server"].login("alice", "a-long-password-1")
    for q, expected in (("martin", ["Martin"]), ("dupont", ["Dupont"]), ("petit", []), ("grand", [])):
        assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": q}))["items"]] == expected
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 89"}))["found"]
    assert (await w["admin"].get(f"/api/v1/directories/{d['id']}/syncs"))["items"][0]["status"] == "failed"
    test = await w["admin"].post(f"/api/v1/directories/{d['id']}/test")
    assert test["ok"] is ("die_after" in failure or "crash_after" in failure)


@pytest.mark.parametrize("failure, state, message", [
    ({}, "ready", "2 entries"),
    ({"down": True}, "retrying", "connection refused by 127.0.0.1:389"),
    ({"hang": True}, "retrying", "the source gave no answer within 0.2 s; check that it is up and reachable"),
    ({"password": "changed"}, "auth_failed", "invalid credentials"),
    ({"broken": True}, "error", "ConnectorError: 127.0.0.1:389 answered HTTP, not LDAP"),
])
async def test_a_connection_test_answers_one_shape_whatever_the_outcome(twp_app, monkeypatch, failure, state, message):
    monkeypatch.setattr("twpcore.directory.service.TEST_TIMEOUT", 0.2)
    w = await world(twp_app)
    d = await directory(w, "LDAP", [person("1", "Dupont"), person("2", "Martin")])
    SOURCES[d["source"]].update(failure)
    answer = await w["admin"].post(f"/api/v1/directories/{d['id']}/test", status=200)
    assert set(answer) == {"ok", "state", "message", "duration"}, answer
    assert (answer["ok"], answer["state"], answer["message"]) == (state == "ready", state, message)
    doc = await w["server"].anonymous.get("/api/v1/openapi.json")
    schema = doc["paths"]["/api/v1/directories/{id}/test"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["ok", "state", "message", "duration"] and answer["state"] in schema["properties"]["state"]["enum"]


async def test_admin_crud_validates_options_and_fields_and_hides_secrets(twp_app):
    w = await world(twp_app)
    admin = w["admin"]
    base = {"domain_id": w["paris"]["id"], "name": "X", "connector": "memory", "options": {"source": "s"}}
    bad = await admin.call("POST", "/api/v1/directories", {**base, "fields": {"phone": "tel|p::9::^[0-9]{4}$"}}, status=422)
    assert bad["field"] == "fields.phone" and "p::9" in bad["detail"] and "{0}" in bad["detail"]
    bad = await admin.call("POST", "/api/v1/directories", {**base, "fields": {"last_name": "sn|u,z"}}, status=422)
    assert bad["field"] == "fields.last_name" and 'option "z" is unknown' in bad["detail"]
    bad = await admin.call("POST", "/api/v1/directories", {**base, "options": {"source": "s", "port": 389}}, status=422)
    assert bad["field"] == "options" and "options.port: unknown key" in bad["detail"]
    bad = await admin.call("POST", "/api/v1/directories", {**base, "sync_time": "25:00"}, status=422)
    assert bad["field"] == "sync_time"
    d = await admin.create("directories", **{**base, "options": {"source": "s", "password": "hunter2-secret"}, "sync_every": "15m"})
    assert d["options"] == {"source": "s", "password": "***"} and d["sync_every"] == 900 and d["state"] == "ready"
    changed = await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"source": "t", "password": "***"}, "priority": 5})
    assert changed["options"] == {"source": "t", "password": "***"} and changed["priority"] == 5
    stored = w["server"].kernel.directories.rows[d["id"]]["options"]
    assert stored == {"source": "t", "password": "hunter2-secret"}
    assert "hunter2" not in str(await admin.get(f"/api/v1/directories/{d['id']}"))
    draft = await admin.patch(f"/api/v1/directories/{d['id']}", {"type": "draft"})
    assert draft["state"] == "disabled"
    refused = await admin.call("POST", f"/api/v1/directories/{d['id']}/sync", status=200)
    assert refused["status"] == "failed" and "drafts never synchronize" in refused["error"]
    types = {c["name"]: c for c in (await admin.get("/api/v1/directory-connectors"))["items"]}
    assert {"twp_users", "private", "push", "memory"} <= set(types) and types["memory"]["options"][0]["name"] == "source"
    await admin.delete(f"/api/v1/directories/{d['id']}")
    await admin.get(f"/api/v1/directories/{d['id']}", status=404)


async def test_users_see_only_granted_directories_including_a_cross_domain_grant(twp_app):
    w = await world(twp_app)
    admin = w["admin"]
    paris = await directory(w, "Paris LDAP", [person("1", "Durand", tel="0155171889")])
    nice = await directory(w, "Nice CRM", [person("1", "Durand", "Nicolas", tel="0493000000")], domain="nice")  # shared with Paris's group
    hidden = await directory(w, "Secret", [person("1", "Durand", "Caché")], grant=None)
    other = await admin.create("companies", name="Other")
    od = await admin.create("domains", company_id=other["id"], name="Paris")
    ou = await admin.create("users", domain_id=od["id"], login="eve", password="a-long-password-1")
    theirs = await admin.create(
        "directories",
        domain_id=od["id"],
        name="Theirs",
        connector="memory",
        options={"source": source([person("1", "Durand", "Eve")])},
        fields=FIELDS,
    )
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{theirs['id']}", subject_type="user", subject_id=ou["id"])
    refused = await admin.call("POST", "/api/v1/authorizations", {"object_type": "directory", "object_ref": f"directory:{theirs['id']}",
                                                                  "subject_type": "user", "subject_id": w["users"]["alice"]["id"]}, status=404)
    assert refused["field"] == "object_ref"
    for d in (paris, nice, hidden, theirs):
        assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["status"] == "ok"

    alice = await w["server"].login("alice", "a-long-password-1")  # in group All
    bob = await w["server"].login("bob", "a-long-password-1")      # in no group
    eve = await w["server"].login("eve", "a-long-password-1")
    found = (await alice.get("/api/v1/directories/search", params={"q": "durand"}))["items"]
    assert sorted(c["directory"] for c in found) == ["Nice CRM", "Paris LDAP"]
    assert [d["name"] for d in (await alice.get("/api/v1/me/directories"))["items"]] == ["Nice CRM", "Paris LDAP"]
    assert (await bob.get("/api/v1/directories/search", params={"q": "durand"}))["items"] == []
    assert [c["directory"] for c in (await eve.get("/api/v1/directories/search", params={"q": "durand"}))["items"]] == ["Theirs"]
    # Contact cards follow the same rights.
    nice_card = next(c for c in found if c["directory"] == "Nice CRM")
    assert (await alice.get(f"/api/v1/directories/contacts/{nice_card['id']}"))["first_name"] == "Nicolas"
    await bob.get(f"/api/v1/directories/contacts/{nice_card['id']}", status=404)
    await eve.get(f"/api/v1/directories/contacts/{nice_card['id']}", status=404)
    # A grant given directly to a user works too; removing the group grant hides Nice.
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{hidden['id']}", subject_type="user", subject_id=w["users"]["bob"]["id"]
    )
    assert [c["first_name"] for c in (await bob.get("/api/v1/directories/search", params={"q": "durand"}))["items"]] == ["Caché"]
    grants = await admin.get("/api/v1/authorizations", params={"object_ref": f"directory:{nice['id']}"})
    await admin.delete(f"/api/v1/authorizations/{grants['items'][0]['id']}")
    assert [c["directory"] for c in (await alice.get("/api/v1/directories/search", params={"q": "durand"}))["items"]] == ["Paris LDAP"]
    # A draft is never searched, even when granted.
    await admin.patch(f"/api/v1/directories/{paris['id']}", {"type": "draft"})
    assert (await alice.get("/api/v1/directories/search", params={"q": "durand"}))["items"] == []


async def test_search_is_case_and_accent_insensitive_ranked_and_paged(twp_app):
    w = await world(twp_app)
    people = [person(str(i), n, g, o) for i, (n, g, o) in enumerate([
        ("Lefèvre", "Élodie", "Société Générale"), ("LEFEVRE", "Paul", ""), ("lefebvre", "Zoé", "ACME"), ("Durand", "Léa", "Lefèvre & Fils"),
        ("Martin", "Eric", "Leroy Merlin"), ("Ørsted", "Hans", ""), ("O'Brien", "Sean", "")], 1)]
    low = await directory(w, "B low", [person("9", "Lefevre", "Anne")], priority=50)
    d = await directory(w, "A main", people, priority=10)
    for x in (low, d):
        await w["admin"].post(f"/api/v1/directories/{x['id']}/sync")
    alice = await w["server"].login("alice", "a-long-password-1")

    async def names(q, **params):
        data = await alice.get("/api/v1/directories/search", params={"q": q, **params})
        return [f"{c.get('first_name', '')} {c.get('last_name', '')}".strip() for c in data["items"]]

    # Priority 10 first, then by name; Léa Durand works at "Lefèvre & Fils".
    assert await names("lefevre") == ["Léa Durand", "Élodie Lefèvre", "Paul LEFEVRE", "Anne Lefevre"]
    assert await names("LÉFÈVRE ÉLO") == ["Élodie Lefèvre"]
    assert await names("lef") == ["Léa Durand", "Zoé lefebvre", "Élodie Lefèvre", "Paul LEFEVRE", "Anne Lefevre"]
    assert await names("societe") == ["Élodie Lefèvre"]
    assert await names("orsted") == ["Hans Ørsted"] and await names("obrien") == ["Sean O'Brien"]
    page1 = await alice.get("/api/v1/directories/search", params={"q": "le", "limit": "2"})
    page2 = await alice.get("/api/v1/directories/search", params={"q": "le", "limit": "2", "offset": "2"})
    page3 = await alice.get("/api/v1/directories/search", params={"q": "le", "limit": "2", "offset": "4"})
    everyone = await names("le", limit="50")
    assert [c["id"] for c in page1["items"] + page2["items"] + page3["items"]] == [c["id"] for c in (await alice.get(
        "/api/v1/directories/search", params={"q": "le", "limit": "50"}))["items"]][:6]
    assert page1["more"] and not page3["more"] and len(everyone) == 6 and everyone[-1] == "Anne Lefevre"
    bad = await alice.call("GET", "/api/v1/directories/search", params={"q": " "}, status=400)
    assert bad["field"] == "q"


async def test_reverse_lookup_through_every_written_form(twp_app):
    w = await world(twp_app)
    d = await directory(
        w, "CRM", [person("1", "Dupont", "Jean", o="SSDEI", tel="+33 1 55 17 18 89"), person("2", "Int", "Erne", tel="1234")], priority=20
    )
    top = await directory(w, "Top", [person("1", "Boss", mobile="01.55.17.18.89")], priority=5)
    for x in (d, top):
        await w["admin"].post(f"/api/v1/directories/{x['id']}/sync")
    alice = await w["server"].login("alice", "a-long-password-1")
    for number in ("+33 1 55 17 18 89", "0033155171889", "0155171889", "00155171889", "+33 (0)1 55 17 18 89"):
        found = await alice.get("/api/v1/directories/reverse", params={"number": number})
        assert found["found"] and found["contact"]["last_name"] == "Boss" and found["number_type"] == "mobile", number
    await w["admin"].patch(f"/api/v1/directories/{top['id']}", {"priority": 30})
    found = await alice.get("/api/v1/directories/reverse", params={"number": "00155171889"})
    assert found["contact"]["last_name"] == "Dupont" and found["contact"]["company"] == "SSDEI" and "+33155171889" in found["keys"]
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "1234"}))["contact"]["last_name"] == "Int"
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "0155171800"}))["found"] is False
    # Numbers are searched the same way.
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "01 55 17 18 89"}))["items"]] == ["Dupont", "Boss"]
    # An admin looks a number up for a domain.
    assert (await w["admin"].get("/api/v1/directories/reverse", params={"number": "0155171889", "domain_id": str(w["paris"]["id"])}))["found"]


async def test_merge_by_email_vip_and_red_list(twp_app):
    w = await world(twp_app)
    fields = {**FIELDS, "assistant": "secretaire", "redlist_phone": "private", "redlist_mobile": "private", "private3": "Vip", "private0": "code"}
    rh = await directory(w, "RH", [person("2", "Hollande", "Noa", mail="Noa@acme.fr", tel="4594", mobile="0601020304", secretaire="4694",
                                          private="1", Vip="Direction"), person("1", "Dupont", "Francis", tel="6660", private="0")],
                         priority=10, merge=True, fields=fields, labels={"private3": "[VIP]", "private0": "Customer code"})
    crm = await directory(w, "CRM", [person("7", "HOLLANDE", "N.", o="ACME", mail="noa@acme.fr", tel="0155170000", code="C-42")],
                          priority=20, merge=True, fields={**FIELDS, "private0": "code"}, labels={"private0": "Customer code"})
    for x in (rh, crm):
        await w["admin"].post(f"/api/v1/directories/{x['id']}/sync")
    alice = await w["server"].login("alice", "a-long-password-1")
    found = (await alice.get("/api/v1/directories/search", params={"q": "hollande"}))["items"]
    assert len(found) == 1  # merged into the RH contact
    noa = found[0]
    assert noa["directory"] == "RH" and noa["company"] == "ACME" and noa["vip"] == "Direction"
    assert [m["directory"] for m in noa["merged"]] == ["RH", "CRM"]
    # Red list: the office and mobile numbers never leave the server; the assistant's does; merged numbers do.
    assert noa["numbers"] == [{"type": "assistant", "number": "4694"}, {"type": "phone", "number": "0155170000"}]
    assert "0601020304" not in str(found) and "4594" not in str(found)
    card = await alice.get(f"/api/v1/directories/contacts/{noa['id']}")
    assert "0601020304" not in str(card) and card["vip"] == "Direction"
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "06 01 02 03 04"}))["found"] is False
    assert (await alice.get("/api/v1/directories/search", params={"q": "0601020304"}))["items"] == []
    # The call enrichment still names the caller (guide 8.2.4: the name, not the number).
    svc = w["server"].kernel.directories
    await svc.refresh_visibility()
    who = svc.reverse_now("0601020304", w["paris"]["id"], w["users"]["alice"]["id"])
    assert who["name"] == "Noa Hollande" and who["vip"] == "Direction" and "number" not in who
    # Without the merge box the CRM contact stands alone.
    await w["admin"].patch(f"/api/v1/directories/{crm['id']}", {"merge": False})
    assert len((await alice.get("/api/v1/directories/search", params={"q": "hollande"}))["items"]) == 2
    francis = (await alice.get("/api/v1/directories/search", params={"q": "francis"}))["items"][0]
    assert francis["numbers"] == [{"type": "phone", "number": "6660"}] and francis["vip"] is None


async def test_high_frequency_sync_runs_on_its_own(twp_app):
    w = await world(twp_app)
    d = await directory(w, "HF", [person("1", "Dupont")], sync_every=1, sync_daily=False)
    svc = w["server"].kernel.directories
    SOURCES[d["source"]]["records"].append(person("2", "Martin"))
    for _ in range(200):
        history = await w["admin"].get(f"/api/v1/directories/{d['id']}/syncs")
        if sum(1 for h in history["items"] if h["finished_at"]) >= 2 and svc.index.contacts == 2:
            break
        await asyncio.sleep(0.05)
    assert history["total"] >= 2 and {h["trigger"] for h in history["items"]} == {"interval"}
    assert all(h["status"] == "ok" for h in history["items"] if h["finished_at"])
    assert svc.index.contacts == 2
    # Off again: no more syncs.
    await w["admin"].patch(f"/api/v1/directories/{d['id']}", {"sync_every": None})
    count = (await w["admin"].get(f"/api/v1/directories/{d['id']}/syncs"))["total"]
    await asyncio.sleep(1.5)
    assert (await w["admin"].get(f"/api/v1/directories/{d['id']}/syncs"))["total"] <= count + 1


def test_daily_sync_time_is_the_next_hh_mm():
    base = dt.datetime(2026, 11, 22, 1, 30).timestamp()
    assert dt.datetime.fromtimestamp(next_daily("02:00", base)) == dt.datetime(2026, 11, 22, 2, 0)
    assert dt.datetime.fromtimestamp(next_daily("01:00", base)) == dt.datetime(2026, 11, 23, 1, 0)


async def test_daily_schedule_uses_the_time_synchronization_parameter(twp_app):
    w = await world(twp_app)
    await w["admin"].create("parameter_values", name="timeSynchronizationDirectories", scope="domain", scope_id=w["paris"]["id"], value="03:15")
    d = await directory(w, "Daily", [person("1", "Dupont")])
    own = await directory(w, "Own time", [person("1", "Dupont")], sync_time="23:45")
    svc = w["server"].kernel.directories
    await svc._load_schedule()
    assert dt.datetime.fromtimestamp(svc._next[d["id"]][0]).strftime("%H:%M") == "03:15"
    assert dt.datetime.fromtimestamp(svc._next[own["id"]][0]).strftime("%H:%M") == "23:45"


async def test_twp_users_directory_follows_users_and_devices(twp_app):
    w = await world(twp_app)
    admin = w["admin"]
    await admin.create("devices", user_id=w["users"]["alice"]["id"], number="2001")
    d = await admin.create("directories", domain_id=w["paris"]["id"], name="[TwsUsers]", connector="twp_users", priority=1)
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="group", subject_id=w["group"]["id"]
    )
    alice = await w["server"].login("alice", "a-long-password-1")

    async def wait_for(q, expected):
        for _ in range(100):
            items = (await alice.get("/api/v1/directories/search", params={"q": q}))["items"]
            if [(c["first_name"], c["numbers"]) for c in items] == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{q}: {items}")

    await wait_for("alice", [("Alice", [{"type": "phone", "number": "2001"}])])
    await admin.create("devices", user_id=w["users"]["bob"]["id"], number="2002")
    await wait_for("bob", [("Bob", [{"type": "phone", "number": "2002"}])])
    # A search that showed the new number is never ahead of the lookup
    # (test_a_card_showing_a_new_number_is_never_ahead_of_the_reverse_lookup holds the race open).
    found = await alice.get("/api/v1/directories/reverse", params={"number": "2002"})
    assert found["contact"]["first_name"] == "Bob"


async def test_private_contacts_and_lists(twp_app):
    w = await world(twp_app)
    admin = w["admin"]
    priv = await admin.create("directories", domain_id=w["paris"]["id"], name="[TwsPrivate]", connector="private", type="private",
                              labels={"private0": "Birthday"})
    alice = await w["server"].login("alice", "a-long-password-1")
    bob = await w["server"].login("bob", "a-long-password-1")
    refused = await alice.call("POST", "/api/v1/me/contacts", {"last_name": "Mum"}, status=403)
    assert refused["error"] == "no_private_directory" and "TwsPrivate" in refused["detail"]
    for u in ("alice", "bob"):
        await admin.create(
            "authorizations", object_type="directory", object_ref=f"directory:{priv['id']}", subject_type="user", subject_id=w["users"][u]["id"]
        )
    mum = await alice.post("/api/v1/me/contacts", {"last_name": "Mum", "mobile": "06 11 22 33 44", "private0": "12/05"}, status=201)
    assert mum["custom"] == [{"field": "private0", "label": "Birthday", "value": "12/05"}]
    await alice.call("POST", "/api/v1/me/contacts", {"department": "x"}, status=422)
    await alice.call("POST", "/api/v1/me/contacts", {"nickname": "x"}, status=400)
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "mum"}))["items"]] == ["Mum"]
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "+33611223344"}))["contact"]["id"] == mum["id"]
    assert (await bob.get("/api/v1/directories/search", params={"q": "mum"}))["items"] == []  # only the owner
    await bob.call("PATCH", f"/api/v1/me/contacts/{mum['id']}", {"last_name": "Mine"}, status=404)
    await bob.get(f"/api/v1/directories/contacts/{mum['id']}", status=404)
    changed = await alice.patch(f"/api/v1/me/contacts/{mum['id']}", {"last_name": "Maman", "mobile": ["0611223344", "0700000000"]})
    assert changed["id"] == mum["id"] and len(changed["numbers"]) == 2
    assert (await alice.get("/api/v1/me/contacts"))["total"] == 1
    # AuthorizeContactFavorite = No: no new private contact.
    await admin.create("parameter_values", name="AuthorizeContactFavorite", scope="user", scope_id=w["users"]["bob"]["id"], value="No")
    assert (await bob.call("POST", "/api/v1/me/contacts", {"last_name": "X"}, status=403))["detail"].endswith(
        "(parameter AuthorizeContactFavorite, guide 9.1.8)"
    )

    # Lists: ordered, private or public (AuthorizePublicList).
    fav = await alice.post("/api/v1/me/lists", {"name": "Family"}, status=201)
    work = await alice.post("/api/v1/me/lists", {"name": "Work"}, status=201)
    d = await directory(w, "LDAP", [person("1", "Dupont", "Jean")])
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="user", subject_id=w["users"]["bob"]["id"]
    )
    jean = (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"][0]
    listed = await alice.put(f"/api/v1/me/lists/{fav['id']}/contacts", {"contact_ids": [jean["id"], mum["id"]]})
    assert [c["id"] for c in listed["items"]] == [jean["id"], mum["id"]]
    await alice.call("PUT", f"/api/v1/me/lists/{fav['id']}/contacts", {"contact_ids": [999999]}, status=404)
    ordered = await alice.put("/api/v1/me/lists/order", {"ids": [work["id"], fav["id"]]})
    assert [x["name"] for x in ordered["items"]] == ["Work", "Family"]
    await bob.get(f"/api/v1/me/lists/{fav['id']}", status=404)  # private list
    await admin.create("parameter_values", name="AuthorizePublicList", scope="user", scope_id=w["users"]["alice"]["id"], value="No")
    assert (await alice.call("PATCH", f"/api/v1/me/lists/{fav['id']}", {"public": True}, status=403))["field"] == "public"
    await admin.delete(
        f"/api/v1/parameter-values/{(await admin.get('/api/v1/parameter-values', params={'name': 'AuthorizePublicList'}))['items'][0]['id']}"
    )
    await alice.patch(f"/api/v1/me/lists/{fav['id']}", {"public": True})
    seen = await bob.get(f"/api/v1/me/lists/{fav['id']}")
    assert [c["id"] for c in seen["items"]] == [jean["id"]]  # never Alice's private contact
    assert [x["name"] for x in (await bob.get("/api/v1/me/lists"))["items"]] == ["Family"]
    await alice.delete(f"/api/v1/me/contacts/{mum['id']}")
    assert (await alice.get("/api/v1/me/contacts"))["total"] == 0


async def test_pushed_contacts_replace_the_previous_push(twp_app):
    w = await world(twp_app)
    admin = w["admin"]
    outlook = await admin.create("directories", domain_id=w["paris"]["id"], name="Outlook", connector="push", type="private", priority=30)
    alice = await w["server"].login("alice", "a-long-password-1")
    await alice.call("POST", "/api/v1/me/directories/Outlook/push", {"contacts": []}, status=404)  # no right yet
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{outlook['id']}", subject_type="group", subject_id=w["group"]["id"]
    )
    push = [{"EntryID": "a1", "FirstName": "Jean", "LastName": "Dupont", "BusinessTelephoneNumber": "+33 1 55 17 18 89"},
            {"EntryID": "a2", "FirstName": "Jeanne", "LastName": "Durand"}, {"EntryID": "a3", "JobTitle": "nobody"}, "junk"]
    report = await alice.post("/api/v1/me/directories/Outlook/push", {"contacts": push})
    assert (report["status"], report["created"], report["ignored"], report["trigger"]) == ("ok", 2, 2, "push")
    assert {p["record"] for p in report["problems"]} == {"a3", "#3"}
    assert len((await alice.get("/api/v1/directories/search", params={"q": "jean"}))["items"]) == 2
    report = await alice.post("/api/v1/me/directories/Outlook/push", {"contacts": push[:1]})
    assert (report["deleted"], report["unchanged"]) == (1, 1)
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "jean"}))["items"]] == ["Dupont"]
    history = await admin.get(f"/api/v1/directories/{outlook['id']}/syncs")
    assert history["items"][0]["user_id"] == w["users"]["alice"]["id"]


async def test_config_declared_directories_are_upserted_and_managed_by_the_file(twp_app, tmp_path):
    key = source([person("1", "Dupont", tel="0155171889")])
    config = {"directories": {"Corporate": {"connector": "memory", "company": "ACME", "domain": "Paris", "source": key,
                                            "type": "public", "priority": 7, "fields": FIELDS, "sync_every": "1h"}}}
    server = await twp_app(plugins=[("memory", MemoryPlugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    await admin.create("domains", company_id=company["id"], name="Paris")
    await server.kernel.stop()
    server2 = await twp_app(plugins=[("memory", MemoryPlugin())], config={**config, "storage": {"url": server.kernel.config.storage.url}})
    admin2 = await server2.admin()
    items = (await admin2.get("/api/v1/directories"))["items"]
    assert [(d["name"], d["priority"], d["config_managed"], d["sync_every"]) for d in items] == [("Corporate", 7, True, 3600)]
    refused = await admin2.call("PATCH", f"/api/v1/directories/{items[0]['id']}", {"priority": 1}, status=409)
    assert "[directories]" in refused["detail"]
    assert (await admin2.post(f"/api/v1/directories/{items[0]['id']}/sync"))["created"] == 1


class RingDriver(PbxDriver):
    type_name = "ring"
    capabilities = frozenset({"monitor"})
    ids = itertools.count(1)

    @property
    def connected(self):
        return True

    async def setup(self):
        self.link_up()

    async def monitor(self, device):
        pass


class RingPlugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(RingDriver)


async def test_a_call_is_enriched_once_with_the_caller_identity(twp_app):
    config = {"pbx": {"links": {"paris": {"driver": "ring", "company": "ACME", "domain": "Paris"}}}}
    server = await twp_app(plugins=[("memory", MemoryPlugin()), ("ring", RingPlugin())], config=config)
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris")
    alice = await admin.create("users", domain_id=paris["id"], login="alice", password="a-long-password-1")
    await admin.create("devices", user_id=alice["id"], number="201")
    d = await admin.create("directories", domain_id=paris["id"], name="CRM", connector="memory", fields=FIELDS,
                           options={"source": source([person("1", "Dupont", "Jean", o="SSDEI", tel="01 55 17 18 89")])})
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="user", subject_id=alice["id"])
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    kernel = server.kernel
    await kernel.directories.refresh_visibility()
    for _ in range(100):
        if ("201" in kernel.telephony.links["paris"].monitored):
            break
        await asyncio.sleep(0.02)
    sub = kernel.events.subscribe(lambda e: e.type.startswith("call."), name="test")
    calls = []
    original = kernel.directories.reverse_now
    kernel.directories.reverse_now = lambda *a: calls.append(a) or original(*a)
    driver = kernel.telephony.links["paris"].driver
    driver.emit(PbxEvent("delivered", "201", "c1", calling="+33155171889", called="201", other="+33155171889"))
    driver.emit(PbxEvent("established", "201", "c1", calling="+33155171889", called="201", other="+33155171889"))
    first = await asyncio.wait_for(sub.get(), 2)
    second = await asyncio.wait_for(sub.get(), 2)
    for event in (first, second):
        assert event.data["call"]["remote_name"] == "Jean Dupont" and event.data["call"]["contact"]["company"] == "SSDEI"
    assert len(calls) == 1


async def test_a_slow_index_load_does_not_hold_the_server_and_reads_answer_503(twp_app, monkeypatch):
    """With millions of contacts the index takes long to load: the server serves meanwhile."""
    from twpcore.directory.service import DirectoryService

    gate = asyncio.Event()
    original = DirectoryService.reload

    async def slow_reload(self):
        await gate.wait()
        await original(self)

    monkeypatch.setattr(DirectoryService, "start_wait", 0.05)
    monkeypatch.setattr(DirectoryService, "reload", slow_reload)
    w = await world(twp_app)  # the server started although the index is not loaded
    alice = await w["server"].login("alice", "a-long-password-1")
    assert (await w["admin"].get("/api/v1/health"))["ready"] is True
    err = await alice.call("GET", "/api/v1/directories/search", params={"q": "x"}, status=503)
    assert err["error"] == "directory_loading" and "retry" in err["detail"]
    await alice.call("GET", "/api/v1/directories/reverse", params={"number": "0155171889"}, status=503)
    gate.set()
    for _ in range(250):
        if w["server"].kernel.directories.ready.is_set():
            break
        await asyncio.sleep(0.02)
    found = await alice.get("/api/v1/directories/search", params={"q": "x"})
    assert found["items"] == []


# -- connector default fields ---------------------------------------------------------------

class LdapLike(MemorySource):
    """A connector that declares the mapping a directory gets when the admin sets none."""

    type_name = "memory_defaults"
    default_fields: ClassVar[dict[str, str]] = {"id": "uid", "last_name": "sn", "first_name": "givenName", "company": "o",
                      "phone": "telephoneNumber", "mobile": "mobile"}


class LdapLikePlugin:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(LdapLike)


async def test_a_connectors_default_fields_apply_and_a_directorys_fields_override_them(twp_app):
    w = await world(twp_app, plugins=[("memory_defaults", LdapLikePlugin())])
    admin = w["admin"]
    jean = person("1", "Dupont", "Jean", o="ACME", tel="01 55 17 18 89", mobile="06 11 22 33 44")
    plain = await directory(w, "Defaults", [jean], connector="memory_defaults", fields={}, priority=1)
    tuned = await directory(w, "Tuned", [jean], connector="memory_defaults", priority=2,
                            fields={"first_name": "givenName|u", "mobile": ""})  # one field changed, one default dropped
    assert plain["fields"] == {} and plain["default_fields"] == LdapLike.default_fields
    for d in (plain, tuned):
        assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 1
    alice = await w["server"].login("alice", "a-long-password-1")
    cards = (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"]
    assert [(c["directory"], c["first_name"], c["company"], [n["type"] for n in c["numbers"]]) for c in cards] == [
        ("Defaults", "Jean", "ACME", ["phone", "mobile"]), ("Tuned", "JEAN", "ACME", ["phone"])]


# -- large syncs: batches, other writers, failures, what readers see --------------------------

async def test_a_large_sync_writes_in_batches_and_other_writers_get_in_between(twp_app, monkeypatch):
    w = await world(twp_app)
    admin, svc = w["admin"], w["server"].kernel.directories
    svc.batch_size = 100
    d = await directory(w, "Big", [person("0", "Leaving", tel="01 55 17 18 00")])
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 1
    SOURCES[d["source"]]["records"] = [person(str(i), f"Newcomer{i:04d}", tel=f"01 56 00 {i:04d}") for i in range(1, 1001)]
    order: list[str] = []
    second_batch, reads_done = asyncio.Event(), asyncio.Event()
    insert, run = db.insert_contacts, svc.store.run

    def counting_insert(conn, *args):
        ids = insert(conn, *args)
        order.append("batch")  # inside the batch's transaction, which holds the write lock
        return ids

    async def holding_run(fn, *args):
        if fn is counting_insert and order.count("batch") == 1:  # the first batch is committed: hold the sync while the test reads
            second_batch.set()
            await reads_done.wait()
        return await run(fn, *args)

    monkeypatch.setattr(svc.store, "run", holding_run)
    monkeypatch.setattr(db, "insert_contacts", counting_insert)
    alice = await w["server"].login("alice", "a-long-password-1")
    sync = asyncio.create_task(admin.post(f"/api/v1/directories/{d['id']}/sync"))
    await second_batch.wait()
    # Mid-sync, readers see the previous contacts, not the hundred new ones already written.
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "leaving"}))["items"]] == ["Leaving"]
    assert (await alice.get("/api/v1/directories/search", params={"q": "newcomer"}))["items"] == []
    reads_done.set()
    # An admin write issued now does not wait for the whole sync: it gets the lock between two batches.
    await admin.create("companies", name="Written during the sync")
    order.append("admin write")
    report = await sync
    assert (report["status"], report["created"], report["deleted"], report["unchanged"]) == ("ok", 1000, 1, 0)
    assert order.count("batch") == 10
    assert order.index("admin write") < len(order) - 1 - order[::-1].index("batch"), order
    assert (await alice.get("/api/v1/directories/search", params={"q": "leaving"}))["items"] == []
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 56 00 0999"}))["contact"]["last_name"] == "Newcomer0999"


async def test_a_sync_failing_while_writing_keeps_the_previous_contacts(twp_app, monkeypatch):
    w = await world(twp_app)
    admin, svc = w["admin"], w["server"].kernel.directories
    svc.batch_size = 100
    d = await directory(w, "Big", [person("0", "Previous", tel="01 55 17 18 00")])
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    SOURCES[d["source"]]["records"] = [person(str(i), f"Newcomer{i:04d}") for i in range(1, 501)]
    calls = itertools.count(1)
    insert = db.insert_contacts

    def failing_insert(conn, *args):
        if next(calls) == 3:
            raise RuntimeError("disk I/O error")
        return insert(conn, *args)

    monkeypatch.setattr(db, "insert_contacts", failing_insert)
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and "disk I/O error" in report["error"] and (report["created"], report["deleted"]) == (0, 0)
    alice = await w["server"].login("alice", "a-long-password-1")
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "previous"}))["items"]] == ["Previous"]
    assert (await alice.get("/api/v1/directories/search", params={"q": "newcomer"}))["items"] == []
    stored = w["server"].run(lambda c: c.execute(sa.select(sa.func.count()).select_from(t.contacts)
                                                       .where(t.contacts.c.directory_id == d["id"])).scalar_one())
    assert stored == 1  # the 200 contacts of the first two batches were removed again
    monkeypatch.setattr(db, "insert_contacts", insert)
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 500


async def test_a_card_showing_a_new_number_is_never_ahead_of_the_reverse_lookup(twp_app, monkeypatch):
    """The users directory: a search showed Bob's new device, a reverse lookup just after did not find it.

    Cards and lookups are both read from the store; what the service keeps in memory
    after a write (contact counts, cached lookups) is refreshed after it.  That refresh is
    held here, between the two.
    """
    w = await world(twp_app)
    admin = w["admin"]
    d = await admin.create("directories", domain_id=w["paris"]["id"], name="[TwsUsers]", connector="twp_users", priority=1)
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="group", subject_id=w["group"]["id"]
    )
    alice = await w["server"].login("alice", "a-long-password-1")
    for _ in range(100):
        if (await alice.get("/api/v1/directories/search", params={"q": "bob"}))["items"]:
            break
        await asyncio.sleep(0.05)
    release, armed = threading.Event(), [True]
    load = directory_service.contact_counts

    def held_load(conn, directory_id=None):
        counts = load(conn, directory_id)
        if directory_id == d["id"] and armed:
            armed.clear()
            release.wait(20)
        return counts

    monkeypatch.setattr(directory_service, "contact_counts", held_load)
    await admin.create("devices", user_id=w["users"]["bob"]["id"], number="2002")
    number_stored = sa.select(sa.func.count()).select_from(t.contact_numbers).where(t.contact_numbers.c.number == "2002")
    for _ in range(200):
        if w["server"].run(lambda c: c.execute(number_stored).scalar_one()):
            break
        await asyncio.sleep(0.02)
    search = asyncio.create_task(alice.get("/api/v1/directories/search", params={"q": "bob"}))
    await asyncio.wait({search}, timeout=0.5)
    if search.done():
        shown = search.result()["items"][0]["numbers"]
        found = await alice.get("/api/v1/directories/reverse", params={"number": "2002"})
        assert not (shown and not found["found"]), "the search showed Bob's new number, the reverse lookup just after did not find it"
    release.set()
    assert (await search)["items"][0]["numbers"] == [{"type": "phone", "number": "2002"}]
    found = await alice.get("/api/v1/directories/reverse", params={"number": "2002"})
    assert found["contact"]["first_name"] == "Bob"


async def test_an_index_load_that_read_the_store_before_a_sync_never_replaces_the_syncs(twp_app, monkeypatch):
    w = await world(twp_app)
    admin = w["admin"]
    d = await directory(w, "LDAP", [person("1", "Dupont", tel="01 55 17 18 89")])
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    SOURCES[d["source"]]["records"].append(person("2", "Martin", tel="01 55 17 18 90"))
    has_read, release, armed = threading.Event(), threading.Event(), [True]
    load = directory_service.contact_counts

    def held_load(conn, directory_id=None):
        counts = load(conn, directory_id)
        if armed:
            armed.clear()
            has_read.set()
            release.wait(20)
        return counts

    monkeypatch.setattr(directory_service, "contact_counts", held_load)
    # An admin changes the directory: its segments are reloaded, and that load has read the store...
    patch = asyncio.create_task(admin.patch(f"/api/v1/directories/{d['id']}", {"priority": 5}))
    await asyncio.to_thread(has_read.wait, 20)
    # ...when a sync adds Martin and swaps its own, newer segment in.
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 1
    alice = await w["server"].login("alice", "a-long-password-1")
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 90"}))["found"]
    release.set()
    assert (await patch)["priority"] == 5
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 90"}))["found"]
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "martin"}))["items"]] == ["Martin"]


async def test_a_change_during_a_running_background_sync_syncs_again_after_it(twp_app):
    w = await world(twp_app)
    admin, svc = w["admin"], w["server"].kernel.directories
    d = await directory(w, "LDAP", [person("1", "Dupont")])
    gate = SOURCES[d["source"]]["gate"] = asyncio.Event()
    svc._soon("test", 0.0, functools.partial(svc.sync, d["id"], "change", wait=True))
    for _ in range(200):
        if svc.is_running(d["id"]):
            break
        await asyncio.sleep(0.01)
    SOURCES[d["source"]]["records"].append(person("2", "Martin"))
    svc._soon("test", 0.0, functools.partial(svc.sync, d["id"], "change", wait=True))  # a second change meanwhile
    await asyncio.sleep(0.05)
    gate.set()
    for _ in range(200):
        history = (await admin.get(f"/api/v1/directories/{d['id']}/syncs"))["items"]
        if len(history) == 2 and all(h["finished_at"] for h in history):
            break
        await asyncio.sleep(0.05)
    assert [(h["status"], h["error"]) for h in history] == [("ok", None), ("ok", None)]  # the first was not cancelled
    assert svc.index.contacts == 2


async def test_a_restart_answers_from_the_store_at_once_and_sees_changes_made_while_down(twp_app, tmp_path):
    """No index is rebuilt or read back from a file at start: searches and lookups read the store."""
    w = await world(twp_app)
    admin, kernel = w["admin"], w["server"].kernel
    kept = await directory(w, "Kept", [person("1", "Dupont", tel="01 55 17 18 89")])
    changed = await directory(w, "Changed", [person("1", "Martin", tel="01 55 17 18 90")])
    for d in (kept, changed):
        await admin.post(f"/api/v1/directories/{d['id']}/sync")
    files_before = {p.name for p in tmp_path.rglob("*")}
    await kernel.stop()
    assert not [p for p in tmp_path.rglob("*") if p.name not in files_before and "index" in p.name]  # no snapshot written
    # While the server is down, another process changes a contact of one directory (as `twp directory sync` would).
    def rename(conn):
        row = conn.execute(sa.select(t.contacts).where(t.contacts.c.directory_id == changed["id"])).one()
        data = {**row.data, "fields": {**row.data["fields"], "last_name": "Bernard"}}
        conn.execute(sa.update(t.contacts).where(t.contacts.c.id == row.id).values(last_name="Bernard", search_text="bernard", data=data))
        conn.execute(sa.delete(t.contact_words).where(t.contact_words.c.contact_id == row.id))
        conn.execute(sa.insert(t.contact_words).values(directory_id=changed["id"], word="bernard", contact_id=row.id))

    w["server"].run(rename)
    server = await twp_app(plugins=[("memory", MemoryPlugin())])
    assert server.kernel.directories.ready.is_set()
    alice = await server.login("alice", "a-long-password-1")
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 89"}))["contact"]["last_name"] == "Dupont"
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "bernard"}))["items"]] == ["Bernard"]
    assert (await alice.get("/api/v1/directories/search", params={"q": "martin"}))["items"] == []


# -- one contact per source record, also with two processes syncing one directory (migration 0008) --------------

BOTH_STORES = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)


@BOTH_STORES
def test_migration_0008_removes_duplicate_contacts_then_refuses_them(twp_db_url):
    from alembic import command

    from twpcore.store import Store

    store = Store(twp_db_url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store.alembic_config(conn), "0007")
        with store.engine.begin() as conn:
            company = conn.execute(sa.insert(t.companies).values(name="ACME").returning(t.companies.c.id)).scalar_one()
            domain = conn.execute(sa.insert(t.domains).values(company_id=company, name="Paris").returning(t.domains.c.id)).scalar_one()
            user = conn.execute(sa.insert(t.users).values(domain_id=domain, login="alice").returning(t.users.c.id)).scalar_one()
            public, private = (conn.execute(sa.insert(t.directories).values(domain_id=domain, name=name, connector="memory", type=kind)
                                            .returning(t.directories.c.id)).scalar_one() for name, kind in (("LDAP", "public"), ("Mine", "private")))

            def contact(directory_id, owner_id, source_id, name):
                cid = conn.execute(sa.insert(t.contacts).values(directory_id=directory_id, owner_id=owner_id, source_id=source_id,
                                                                last_name=name, data={}).returning(t.contacts.c.id)).scalar_one()
                conn.execute(sa.insert(t.contact_numbers).values(contact_id=cid, directory_id=directory_id, type="phone", position=0,
                                                                 number="0155171889"))
                return cid

            kept = contact(public, None, "1", "Dupont")
            twice = contact(public, None, "1", "Dupont (second insert)")
            contact(public, None, "1", "Dupont (third insert)")
            other_source = contact(public, None, "2", "Martin")
            mine = contact(private, user, "1", "Private Dupont")  # same source id, other owner: not a duplicate
            mine_twice = contact(private, user, "1", "Private Dupont again")
            listed = conn.execute(sa.insert(t.contact_lists).values(user_id=user, name="Favourites").returning(t.contact_lists.c.id)).scalar_one()
            conn.execute(sa.insert(t.contact_list_items), [{"list_id": listed, "contact_id": kept}, {"list_id": listed, "contact_id": twice},
                                                           {"list_id": listed, "contact_id": mine_twice}])
        before, after = store.upgrade()
        assert (before, after) == ("0007", store.head_revision())
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(t.contacts.c.id, t.contacts.c.last_name).order_by(t.contacts.c.id)).all()
            assert [tuple(r) for r in rows] == [(kept, "Dupont"), (other_source, "Martin"), (mine, "Private Dupont")]
            assert sorted(conn.execute(sa.select(t.contact_numbers.c.contact_id)).scalars()) == [kept, other_source, mine]
            assert conn.execute(sa.select(t.contact_list_items.c.contact_id)).scalars().all() == [kept]
        for directory_id, owner_id in ((public, None), (private, user)):
            with pytest.raises(sa.exc.IntegrityError, match=r"(?i)unique"), store.engine.begin() as conn:
                conn.execute(sa.insert(t.contacts).values(directory_id=directory_id, owner_id=owner_id, source_id="1", data={}))
        with store.engine.begin() as conn:  # another source id, or the same one in another directory, is welcome
            conn.execute(sa.insert(t.contacts).values(directory_id=public, owner_id=None, source_id="3", data={}))
            conn.execute(sa.insert(t.contacts).values(directory_id=private, owner_id=None, source_id="1", data={}))
    finally:
        store.close()


@BOTH_STORES
async def test_two_processes_syncing_a_large_directory_at_once_store_each_contact_once(twp_app, monkeypatch):
    """The server's sync (A) is held between two write batches while another process (B, `twp directory sync`
    or another node: a second kernel on the same store) syncs the same directory from start to end."""
    w = await world(twp_app)
    server_a = w["server"]
    svc_a = server_a.kernel.directories
    assert svc_a.batch_size == 5000
    count = 11_000
    d = await directory(w, "Big", [person(str(i), f"Person{i:05d}", tel=f"01 56 {i // 10000:02d} {i % 10000:04d}") for i in range(count)])
    server_b = await twp_app(plugins=[("memory", MemoryPlugin())])
    svc_b = server_b.kernel.directories
    await svc_b.ready.wait()
    batches = 0
    first_batch_done, b_done = asyncio.Event(), asyncio.Event()
    run_a = svc_a.store.run

    async def holding_run(fn, *args):
        nonlocal batches
        if fn is db.insert_contacts:
            batches += 1
            if batches == 2:  # A's first batch (5,000 contacts) is committed: let B run from start to end
                first_batch_done.set()
                await b_done.wait()
        return await run_a(fn, *args)

    monkeypatch.setattr(svc_a.store, "run", holding_run)
    sync_a = asyncio.create_task(svc_a.sync(d["id"]))
    await first_batch_done.wait()
    # Meanwhile the source changed the number of its last thousand records: B reads them so, A had read them before.
    records = SOURCES[d["source"]]["records"]
    for i in range(10_000, count):
        records[i] = person(str(i), f"Person{i:05d}", tel=f"01 57 00 {i % 10000:04d}")
    report_b = await svc_b.sync(d["id"], "manual")
    b_done.set()
    report_a = await sync_a
    # B found A's first 5,000 contacts stored and created the 6,000 others, in two batches of its own.
    assert (report_b.status, report_b.error, report_b.created, report_b.updated, report_b.unchanged, report_b.deleted) == \
        ("ok", None, 6000, 0, 5000, 0)
    # A created its first batch; of the 6,000 B had created meanwhile, 5,000 were as A read them (unchanged) and
    # 1,000 had B's newer numbers, which A rewrote with what it had read: last writer wins, one row each.
    assert (report_a.status, report_a.error, report_a.created, report_a.updated, report_a.unchanged, report_a.deleted) == \
        ("ok", None, 5000, 1000, 5000, 0)
    assert batches == 2  # A inserted twice; the last thousand were stored by B, so A rewrote them as changes

    def stored(conn):
        c = t.contacts
        cond = c.c.directory_id == d["id"]
        total, distinct = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(c.c.source_id))).where(cond)).one()
        numbers = conn.execute(
            sa.select(sa.func.count()).select_from(t.contact_numbers).where(t.contact_numbers.c.directory_id == d["id"])
        ).scalar_one()
        last = conn.execute(sa.select(t.contact_numbers.c.number).join(c, c.c.id == t.contact_numbers.c.contact_id)
                            .where(cond, c.c.source_id == str(count - 1))).scalars().all()
        return total, distinct, numbers, last

    total, distinct, numbers, last = server_a.run(stored)
    assert (total, distinct, numbers) == (count, count, count)  # one contact, with one number, per source record
    assert last == ["01 56 01 0999"]  # A's number of the last record: A wrote last
    alice = await server_a.login("alice", "a-long-password-1")
    found = (await alice.get("/api/v1/directories/search", params={"q": "person10999"}))["items"]
    assert [(c["last_name"], len(c["numbers"])) for c in found] == [("Person10999", 1)]
    # A third sync sees the source's current numbers as changes of the existing contacts: no new contact.
    report = await svc_a.sync(d["id"])
    assert (report.status, report.created, report.updated, report.unchanged, report.deleted) == ("ok", 0, 1000, 10_000, 0)
    assert server_a.run(stored)[:2] == (count, count)


@pytest.mark.parametrize("twp_db_url", ["postgresql"], indirect=True)
def test_an_insert_waiting_for_another_transactions_same_contacts_takes_them_over(twp_db_url):
    """PostgreSQL writers do not block each other until they meet on the unique index: the second insert waits for the
    first transaction, then reads its rows back instead of failing (what two one-transaction syncs do)."""
    import concurrent.futures

    from twpcore.directory.fields import MappedContact, MappedNumber
    from twpcore.store import Store

    store = Store(twp_db_url)
    try:
        store.upgrade()
        with store.engine.begin() as conn:
            company = conn.execute(sa.insert(t.companies).values(name="ACME").returning(t.companies.c.id)).scalar_one()
            domain = conn.execute(sa.insert(t.domains).values(company_id=company, name="Paris").returning(t.domains.c.id)).scalar_one()
            did = conn.execute(sa.insert(t.directories).values(domain_id=domain, name="LDAP", connector="memory", type="public")
                               .returning(t.directories.c.id)).scalar_one()

        def contacts(version):
            return [MappedContact(str(i), {"last_name": f"Person{i}"}, (MappedNumber("phone", f"0155{i:06d}"),), digest=f"{version}-{i}")
                    for i in range(3)]

        stamp = db.now()
        first = store.engine.connect()
        try:
            tx = first.begin()
            mine = db.insert_contacts(first, did, None, contacts("v1"), {}, stamp)
            assert len(mine.ids) == 3
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                def second():
                    with store.engine.begin() as conn:
                        return db.insert_contacts(conn, did, None, contacts("v1")[:2] + contacts("v2")[2:], {}, stamp)

                waiting = pool.submit(second)
                with pytest.raises(concurrent.futures.TimeoutError):
                    waiting.result(timeout=0.5)  # blocked on the unique index by the first, uncommitted transaction
                tx.commit()
                theirs = waiting.result(timeout=30)
        finally:
            first.close()
        assert theirs.ids == []
        assert [(cid, m.source_id) for cid, m in theirs.same] == list(zip(mine.ids[:2], ["0", "1"], strict=True))
        assert [(cid, m.digest) for cid, m in theirs.taken] == [(mine.ids[2], "v2-2")]
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(t.contacts.c.source_id, t.contacts.c.digest).order_by(t.contacts.c.source_id)).all()
            assert [tuple(r) for r in rows] == [("0", "v1-0"), ("1", "v1-1"), ("2", "v2-2")]
            assert conn.execute(sa.select(sa.func.count()).select_from(t.contact_numbers)).scalar_one() == 3
    finally:
        store.close()
