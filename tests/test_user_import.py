"""Users import (guide 7.2): an admin imports the users of one domain from LDAP, Active Directory or the PBX.

Against a real slapd (``SlapdServer``, which caps plain searches at 1,000 entries like a
domain controller) and the built-in PBX simulator, through the admin API: the first run
creates users and their devices, a second run after entries changed or left the source
does what its sync type says (Full deletes, Insert-update-disable disables, Insert-update
and Update leave them) and never touches users the import did not create; a source that
cannot be read changes nothing; hostile values match nothing; the bind password never
leaves the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from twpcore.kinds import SourceRecord
from twpcore.store import schema as t
from twpcore.testing.servers import SlapdServer
from twpcore.user_imports import PRESETS, RunReport, device_number, map_entries

needs_slapd = pytest.mark.skipif(
    not SlapdServer.available() and not os.environ.get("CI"),
    reason="slapd / ldap-utils not installed (run scripts/install-system-deps.sh)",
)
pytest.importorskip("twp_ldap")

SUFFIX = "dc=example,dc=com"
AD_SUFFIX = "DC=corp,DC=example,DC=com"
PASSWORD = "reader-Pa55-secret"


def person(uid: str, first: str, last: str, phone: str | None, **extra: Any) -> tuple[str, dict[str, Any]]:
    attributes: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": uid, "cn": f"{first} {last}", "sn": last, "givenName": first, "mail": f"{uid}@example.com",
    }
    if phone:
        attributes["telephoneNumber"] = phone
    attributes.update(extra)
    return f"uid={uid},ou=people,{SUFFIX}", attributes


def ad_user(login: str, last: str, phone: str | None, *, disabled: bool = False) -> tuple[str, dict[str, Any]]:
    attributes: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": login, "sn": last, "givenName": "Louise", "sAMAccountName": login, "sAMAccountType": 805306368,
        "userAccountControl": 514 if disabled else 512, "mail": f"{login}@corp.example.com",
        "objectGUID": uuid.uuid5(uuid.NAMESPACE_DNS, login).bytes_le,
    }
    if phone:
        attributes["telephoneNumber"] = phone
    return f"CN={login},OU=people,{AD_SUFFIX}", attributes


def slapd(entries: list, **kw: Any) -> SlapdServer:
    return SlapdServer(suffix=kw.pop("suffix", SUFFIX), entries=entries, reader_password=PASSWORD, **kw)


async def company_world(admin: Any, name: str = "Corp") -> dict[str, Any]:
    company = await admin.create("companies", name=name)
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    return {"company": company["id"], "domain": domain["id"]}


def ldap_settings(server: SlapdServer, **more: Any) -> dict[str, Any]:
    host, port = server.url.removeprefix("ldap://").rsplit(":", 1)
    return {"source": "ldap", "host": host, "port": int(port), "bind_dn": server.reader_dn, "password": PASSWORD,
            "base_dn": server.people_dn, **more}


async def run(admin: Any, import_id: int, **params: str) -> dict[str, Any]:
    return await admin.post(f"/api/v1/user-imports/{import_id}/run", params=params or None, status=200)


def users_of(server: Any, domain_id: int) -> dict[str, dict[str, Any]]:
    def q(conn: sa.Connection) -> dict[str, dict[str, Any]]:
        u, d = t.users, t.devices
        out = {r.login: dict(r._mapping) | {"devices": []} for r in conn.execute(sa.select(u).where(u.c.domain_id == domain_id))}
        by_id = {v["id"]: v for v in out.values()}
        for r in conn.execute(sa.select(d.c.number, d.c.user_id).where(d.c.domain_id == domain_id)):
            if r.user_id in by_id:
                by_id[r.user_id]["devices"].append(r.number)
        return out

    return server.run(q)


def actions(report: dict[str, Any]) -> dict[str, str]:
    return {e["login"]: e["action"] for e in report["entries"] if e["login"]}


# -- LDAP: many users, past the size limit ----------------------------------------------

@needs_slapd
async def test_an_ldap_import_creates_1200_users_and_devices_past_the_1000_size_limit(twp_app: Any) -> None:
    entries = [person(f"u{i:04d}", "Camille", f"Name{i:04d}", f"+33 1 40 00 {2000 + i:04d}") for i in range(1200)]
    with slapd(entries) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "Corp LDAP", **ldap_settings(ldap)}, status=201)
        assert imp["mapping"] == PRESETS["ldap"]  # guide 7.2.1: the standard fields are pre-filled

        report = await run(admin, imp["id"])
        assert report["status"] == "ok", report["error"]
        assert (report["records"], report["created"], report["ignored"]) == (1200, 1200, 0)
        users = users_of(server, w["domain"])
        assert len(users) == 1200
        last = users["u1199"]
        assert (last["first_name"], last["last_name"], last["email"], last["enabled"]) == ("Camille", "Name1199", "u1199@example.com", True)
        # The device is the extension: the last 4 digits (the domain's internal length) of the number.
        assert last["devices"] == ["3199"]
        again = await run(admin, imp["id"])
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1200)


# -- the sync types on a second run ------------------------------------------------------

SECOND_RUN = {
    # sync type: (alice, bob after leaving, eve new, carol manual) on the second run
    "full": {"bob": None, "eve": True},
    "insert_update_disable": {"bob": False, "eve": True},
    "insert_update": {"bob": True, "eve": True},
    "update": {"bob": "absent", "eve": "absent"},
}


@needs_slapd
@pytest.mark.parametrize("sync_type", list(SECOND_RUN))
async def test_each_sync_type_on_a_second_run_after_entries_changed_and_left(twp_app: Any, sync_type: str) -> None:
    entries = [
        person("alice", "Alice", "Martin", "+33 1 40 00 1001"),
        person("bob", "Bob", "Durand", "+33 1 40 00 1002"),
        person("carol", "Carol", "Imported", "+33 1 40 00 1003"),
        person("dave", "Dave", "Nophone", None),
    ]
    with slapd(entries) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        # Two users an admin created by hand: carol (also in the directory) and zoe (not in it).
        carol = await admin.create("users", domain_id=w["domain"], login="carol", first_name="Carol", last_name="Manual")
        zoe = await admin.create("users", domain_id=w["domain"], login="zoe", first_name="Zoe")
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "sync_type": sync_type,
                                                         **ldap_settings(ldap)}, status=201)

        first = await run(admin, imp["id"])
        assert first["status"] == "ok", first["error"]
        seen = actions(first)
        assert seen["dave"] == "ignored"
        assert next(e for e in first["entries"] if e["login"] == "dave")["reason"] == "no phone number (telephoneNumber is empty)"
        assert seen["carol"] == "updated"  # the login matches a manual user: updated, not taken over
        if sync_type == "update":
            assert (seen["alice"], seen["bob"]) == ("ignored", "ignored")
        else:
            assert (seen["alice"], seen["bob"]) == ("created", "created")
        users = users_of(server, w["domain"])
        assert users["carol"]["last_name"] == "Imported" and users["carol"]["devices"] == ["1003"]
        assert "dave" not in users

        # The directory changes: alice is renamed and gets another number; bob and carol leave; eve arrives.
        ldap.modify(f"dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: sn\nsn: Martin-Dupont\n-\n"
                    f"replace: telephoneNumber\ntelephoneNumber: +33 1 40 00 1011\n")
        ldap.delete(f"uid=bob,ou=people,{SUFFIX}", f"uid=carol,ou=people,{SUFFIX}")
        ldap.add([person("eve", "Eve", "New", "+33 1 40 00 1005")])

        second = await run(admin, imp["id"])
        assert second["status"] == "ok", second["error"]
        users = users_of(server, w["domain"])
        expected = SECOND_RUN[sync_type]
        if sync_type == "update":
            assert "alice" not in users and "bob" not in users and "eve" not in users
            assert actions(second)["eve"] == "ignored"
        else:
            assert actions(second)["alice"] == "updated"
            assert users["alice"]["last_name"] == "Martin-Dupont" and users["alice"]["devices"] == ["1011"]
            assert actions(second)["eve"] == "created" and users["eve"]["enabled"] is True
            if expected["bob"] is None:
                assert "bob" not in users and actions(second)["bob"] == "deleted" and second["deleted"] == 1
            else:
                assert users["bob"]["enabled"] is expected["bob"]
                assert second["disabled"] == (1 if expected["bob"] is False else 0)
        # Users the import did not create are never disabled or deleted, whatever the sync type.
        assert users["carol"]["enabled"] is True and users["carol"]["id"] == carol["id"]
        assert users["zoe"]["enabled"] is True and users["zoe"]["id"] == zoe["id"]
        assert "carol" not in actions(second)

        history = (await admin.get(f"/api/v1/user-imports/{imp['id']}/runs"))["items"]
        assert [h["id"] for h in history] == [second["id"], first["id"]]
        assert history[0]["created"] == second["created"] and history[0]["status"] == "ok"


# -- Active Directory -----------------------------------------------------------------

@needs_slapd
async def test_the_active_directory_preset_maps_sam_account_name_and_disables_disabled_accounts(twp_app: Any) -> None:
    entries = [ad_user("ldurand", "Durand", "+33 1 45 00 2001"), ad_user("jdoe", "Doe", "+33 1 45 00 2002", disabled=True),
               ad_user("nophone", "Nophone", None)]
    with slapd(entries, suffix=AD_SUFFIX, active_directory=True) as dc:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        settings = {**ldap_settings(dc), "source": "active_directory", "base_dn": AD_SUFFIX}
        imp = await admin.post(
            "/api/v1/user-imports", {"domain_id": w["domain"], "name": "AD", "sync_type": "insert_update_disable", **settings}, status=201
        )
        assert imp["mapping"]["login"] == "sAMAccountName"

        report = await run(admin, imp["id"])
        assert report["status"] == "ok", report["error"]
        users = users_of(server, w["domain"])
        assert set(users) == {"ldurand", "jdoe"}
        assert users["ldurand"]["enabled"] is True and users["ldurand"]["devices"] == ["2001"]
        assert users["jdoe"]["enabled"] is False  # userAccountControl 514: ACCOUNTDISABLE
        assert actions(report)["nophone"] == "ignored"

        # The account is disabled in AD, the other one enabled again and renamed (its objectGUID stays).
        jdoe_id = users["jdoe"]["id"]
        dc.modify(f"dn: CN=ldurand,OU=people,{AD_SUFFIX}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n"
                  f"dn: CN=jdoe,OU=people,{AD_SUFFIX}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n-\n"
                  "replace: sAMAccountName\nsAMAccountName: john.doe\n")
        again = await run(admin, imp["id"])
        users = users_of(server, w["domain"])
        assert (users["ldurand"]["enabled"], users["john.doe"]["enabled"]) == (False, True)
        assert users["john.doe"]["id"] == jdoe_id and "jdoe" not in users and users["john.doe"]["devices"] == ["2002"]
        assert actions(again) == {"ldurand": "updated", "john.doe": "updated", "nophone": "ignored"}
        assert next(e for e in again["entries"] if e["login"] == "john.doe")["reason"] == "login (was jdoe), enabled"
        assert again["disabled"] == 0  # a renamed account is not one that left


# -- failures change nothing ----------------------------------------------------------

@needs_slapd
async def test_refused_credentials_or_a_server_down_fail_the_run_and_change_nothing(twp_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    entries = [person("alice", "Alice", "Martin", "+33 1 40 00 1001"), person("bob", "Bob", "Durand", "+33 1 40 00 1002")]
    with slapd(entries) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        imp = await admin.post(
            "/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "sync_type": "full", **ldap_settings(ldap)}, status=201
        )
        assert (await run(admin, imp["id"]))["created"] == 2
        before = users_of(server, w["domain"])

        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"password": "Winter2024!"})
        refused = await run(admin, imp["id"])
        assert refused["status"] == "failed"
        assert refused["error"].startswith("credentials refused: ") and refused["error"].endswith("nothing changed")
        assert "invalidCredentials" in refused["error"]
        assert (refused["created"], refused["updated"], refused["deleted"], refused["disabled"]) == (0, 0, 0, 0)
        assert users_of(server, w["domain"]) == before  # a Full sync that read nothing deletes nothing
        assert "Winter2024!" not in str(refused) and "Winter2024!" not in caplog.text

        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"password": PASSWORD})
        ldap.stop()
        down = await run(admin, imp["id"])
        assert down["status"] == "failed" and down["error"].startswith("source not reachable: "), down["error"]
        assert users_of(server, w["domain"]) == before
        assert PASSWORD not in caplog.text


# -- hostile values ---------------------------------------------------------------------

@needs_slapd
async def test_hostile_names_and_over_long_values_match_and_overwrite_nothing(twp_app: Any) -> None:
    specials = ',+"\\<>;=#'
    entries = [
        person("victim", "Victor", "Victim", "+33 1 40 00 1001"),
        (f"uid=x1,ou=people,{SUFFIX}", {**person("x1", "X", "Y", "+33 1 40 00 1002")[1], "uid": "*)(|(uid=*"}),
        (f"uid=x2,ou=people,{SUFFIX}", {**person("x2", "X", "Y", "+33 1 40 00 1003")[1], "uid": "victim\\00"}),
        (f"uid=x3,ou=people,{SUFFIX}", {**person("x3", "X", "Y", "+33 1 40 00 1004")[1], "uid": "v" * 300}),
        # DN specials in names are just text; in the DN they are escaped.
        (f"cn=O\\+Brien\\, \\\"Jr\\\" \\<x\\>\\;\\=\\#,ou=people,{SUFFIX}",
         {**person("obrien", "Seán", specials, "+33 1 40 00 1005")[1], "cn": 'O+Brien, "Jr" <x>;=#'}),
        person("long", "L" * 5000, "Long", "+33 1 40 00 1006"),
        person("victim2", "Twin", "Victim", "+33 1 40 00 1001"),  # the number of another entry
    ]
    with slapd(entries) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        # Manual users whose names a filter-injection or a truncation would reach.
        victim = await admin.create("users", domain_id=w["domain"], login="victim", first_name="Manual", last_name="Victim")
        star = await admin.create("users", domain_id=w["domain"], login="v" * 200, first_name="Manual")
        imp = await admin.post(
            "/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "sync_type": "full", **ldap_settings(ldap)}, status=201
        )

        report = await run(admin, imp["id"])
        assert report["status"] == "ok", report["error"]
        reasons = {e["entry"].split(",")[0]: e for e in report["entries"] if e["action"] == "ignored"}
        assert "characters no login may hold: * = |" in reasons["uid=x1"]["reason"]
        assert "characters no login may hold: \\" in reasons["uid=x2"]["reason"]
        assert reasons["uid=x3"]["reason"] == "login (uid) is 300 characters, at most 200"
        assert reasons["uid=x3"]["login"].endswith("… (300 characters)")
        assert reasons["uid=long"]["reason"] == "givenName is 5000 characters long; no user field holds that much"
        assert reasons["uid=victim2"]["reason"].startswith("number 1001 is also the number of entry uid=victim,")
        users = users_of(server, w["domain"])
        # victim matched by its exact login is updated (a manual user), the others untouched.
        assert users["victim"]["id"] == victim["id"] and users["victim"]["first_name"] == "Victor"
        assert users["v" * 200]["first_name"] == "Manual" and users["v" * 200]["id"] == star["id"]
        assert users["obrien"]["last_name"] == specials and users["obrien"]["first_name"] == "Seán"
        assert set(users) == {"victim", "v" * 200, "obrien"}
        link = server.run(lambda c: c.execute(sa.select(t.user_import_links.c.external_id).where(
            t.user_import_links.c.user_id == users["obrien"]["id"])).scalar_one())
        assert link.lower().startswith("cn=o\\2bbrien\\2c ") and link.endswith(f",ou=people,{SUFFIX}")  # the DN as the server wrote it
        # A second Full run: the malformed "long" entry keeps nothing away; victim is not the import's.
        again = await run(admin, imp["id"])
        assert again["deleted"] == 0 and "victim" in users_of(server, w["domain"])


def test_control_characters_and_nul_in_a_login_are_refused_and_shown_escaped() -> None:
    report = RunReport(1, "t", "manual")
    records = [SourceRecord("e1", {"uid": "ali\x00ce", "telephoneNumber": "1001"}),
               SourceRecord("e2", {"uid": "bob", "telephoneNumber": "1002", "sn": "Du\x00rand"}),
               SourceRecord("e3", {"uid": "BOB", "telephoneNumber": "1003"}),
               SourceRecord("e4", {"uid": "", "telephoneNumber": "1004"}),
               SourceRecord("e5", {"uid": "carol", "telephoneNumber": b"\x01\x02"})]
    candidates, kept = map_entries(records, PRESETS["ldap"], "ldap", "extension", 4, report)
    by_entry = {e["entry"]: e for e in report.entries}
    assert candidates == [] and report.ignored == 5
    assert by_entry["e1"]["reason"] == "login (uid) contains control characters" and by_entry["e1"]["login"] == "ali\\x00ce"
    assert by_entry["e2"]["reason"] == "last_name (sn) contains control characters"
    assert kept == {"bob", "BOB", "carol"}  # malformed or duplicate entries with a usable login protect their user
    assert by_entry["e4"]["reason"] == "no login: uid is empty"
    assert by_entry["e5"]["reason"] == "telephoneNumber is binary (2 bytes), not text; map another attribute"
    # e3: "BOB" is bob for a Windows login: a duplicate, even though bob itself was malformed.
    assert by_entry["e3"]["reason"] == "duplicate login: entry e2 gives it too"


def test_the_device_number_is_the_extension_or_the_whole_number() -> None:
    assert device_number("+33 1 40 00 12 34", "extension", 4) == "1234"
    assert device_number("201", "extension", 4) == "201"
    assert device_number("+33 1 40 00 12 34", "as_is", 4) == "+33140001234"
    assert device_number("n/a", "extension", 4) == ""


# -- the PBX's subscriber list ------------------------------------------------------------

async def test_a_pbx_import_reads_the_simulator_subscriber_list(twp_app: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from twp_csta.demo import simulator

    server = await twp_app(config={
        "plugins": {"pbxsim": {"listen": f"127.0.0.1:{port}", "traffic_interval": 0,
                               "subscribers": {"201": "Alice Martin", "202": "Bob Durand", "203": "Standard"}}},
        "pbx": {"links": {"sim": {"driver": "pbxsim", "company": "Corp", "domain": "Paris", "host": "127.0.0.1", "port": port,
                                  "reconnect_min": 0.1, "heartbeat_interval": 0}}},
    })
    admin = await server.admin()
    w = await company_world(admin)
    sim = simulator(server.kernel.plugin_context("pbxsim"))
    assert sim is not None
    link = server.kernel.telephony.links["sim"]
    await sim.wait_until(lambda: link.driver.connected and link.domain_id == w["domain"], 5, "the pbxsim link connected to domain Paris")
    sim.config.subscriber_segment = 2  # the list comes in two segments
    imp = await admin.post(
        "/api/v1/user-imports", {"domain_id": w["domain"], "name": "PBX", "source": "pbx", "link": "sim", "sync_type": "full"}, status=201
    )
    report = await run(admin, imp["id"])
    assert report["status"] == "ok", report["error"]
    users = users_of(server, w["domain"])
    assert {k: (v["first_name"], v["last_name"], v["devices"]) for k, v in users.items()} == {
        "201": ("Alice", "Martin", ["201"]), "202": ("Bob", "Durand", ["202"]), "203": ("", "Standard", ["203"])}

    del sim.subscribers["202"]
    again = await run(admin, imp["id"])
    assert actions(again) == {"202": "deleted"} and "202" not in users_of(server, w["domain"])

    # A link that serves another domain (or none) is not this import's source: refused when
    # named (tests/test_limited_admin_security.py), and a run fails if the link's config changed since.
    other = await company_world(admin, "Other")
    refused = await admin.call("POST", "/api/v1/user-imports", {"domain_id": other["domain"], "name": "PBX", "source": "pbx", "link": "sim"})
    assert admin.last_status == 422 and refused["field"] == "link"
    foreign = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "PBX 2", "source": "pbx", "link": "sim"}, status=201)
    server.run(lambda c: c.execute(sa.update(t.user_imports).where(t.user_imports.c.id == foreign["id"]).values(domain_id=other["domain"])))
    failed = await run(admin, foreign["id"])
    assert failed["status"] == "failed" and failed["error"].startswith('no PBX link named "sim" serves this domain')
    assert users_of(server, other["domain"]) == {}


# -- schedule, dry run, seats ---------------------------------------------------------------

@needs_slapd
async def test_a_scheduled_import_runs_in_the_background_and_a_dry_run_writes_nothing(twp_app: Any) -> None:
    with slapd([person("alice", "Alice", "Martin", "+33 1 40 00 1001")]) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", **ldap_settings(ldap)}, status=201)
        dry = await run(admin, imp["id"], dry_run="true")
        assert dry["dry_run"] is True and dry["created"] == 1 and actions(dry) == {"alice": "created"}
        assert users_of(server, w["domain"]) == {}

        server.kernel.user_imports.tick = 0.1
        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"schedule": "interval", "every": 1})
        deadline = time.monotonic() + 10
        while "alice" not in users_of(server, w["domain"]):
            assert time.monotonic() < deadline, "the scheduled run did not happen"
            await asyncio.sleep(0.1)
        runs = (await admin.get(f"/api/v1/user-imports/{imp['id']}/runs"))["items"]
        assert any(r["trigger"] == "interval" and r["status"] == "ok" for r in runs)
        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"enabled": False, "schedule": "manual"})


@needs_slapd
async def test_imported_users_join_the_groups_without_exceeding_a_seat_quota(twp_app: Any) -> None:
    entries = [person(f"u{i}", "U", f"N{i}", f"+33 1 40 00 100{i}") for i in range(3)]
    with slapd(entries) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        group = await admin.create("groups", domain_id=w["domain"], name="All")
        await admin.put(f"/api/v1/companies/{w['company']}/quotas/Caller", {"seats": 2})
        await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=group["id"])
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "group_ids": [group["id"]],
                                                         **ldap_settings(ldap)}, status=201)
        report = await run(admin, imp["id"])
        assert report["status"] == "ok" and report["created"] == 3
        notes = [e for e in report["entries"] if e["action"] == "note"]
        assert len(notes) == 1 and "not added to group" in notes[0]["reason"] and "quota of 2" in notes[0]["reason"]
        members = await admin.get(f"/api/v1/groups/{group['id']}/members")
        assert len(members["items"]) == 2
        usage = (await admin.get(f"/api/v1/companies/{w['company']}/quotas"))["items"]
        assert next(q for q in usage if q["application"] == "Caller")["used"] == 2


# -- the definition: secrets, tenancy, checks ----------------------------------------------

async def test_the_password_is_never_returned_and_other_companies_get_404(twp_app: Any) -> None:
    server = await twp_app()
    admin = await server.admin()
    a = await company_world(admin, "Alpha")
    b = await company_world(admin, "Bravo")
    body = {"domain_id": a["domain"], "name": "AD", "source": "active_directory", "host": "dc1.corp.example.com",
            "bind_dn": "svc@corp", "password": "S3cret-bind!", "base_dn": AD_SUFFIX, "security": "ldaps"}
    imp = await admin.post("/api/v1/user-imports", body, status=201)
    assert "password" not in imp and imp["password_set"] is True
    listed = await admin.get("/api/v1/user-imports")
    assert "S3cret-bind!" not in str(listed) and "S3cret-bind!" not in str(await admin.get(f"/api/v1/user-imports/{imp['id']}"))
    audit = await admin.get("/api/v1/audit")
    assert "S3cret-bind!" not in str(audit)

    bravo_admin = await server.admin(super_user=False, companies=(b["company"],))
    path = f"/api/v1/user-imports/{imp['id']}"
    for method, url in (("GET", path), ("PATCH", path), ("DELETE", path), ("POST", path + "/run"), ("GET", path + "/runs")):
        answer = await bravo_admin.call(method, url, {"name": "pwned"} if method == "PATCH" else None)
        assert bravo_admin.last_status == 404, (method, url, answer)
    assert (await bravo_admin.get("/api/v1/user-imports"))["items"] == []
    answer = await bravo_admin.call("POST", "/api/v1/user-imports", {**body, "name": "mine"})
    assert bravo_admin.last_status == 404 and answer["field"] == "domain_id"
    assert (await admin.get(path))["name"] == "AD"

    # Settings are checked and the errors name the field.
    bad = await admin.call("POST", "/api/v1/user-imports", {**body, "name": "x", "host": "dc1;rm -rf"})
    assert admin.last_status == 400 and bad["field"] == "host"
    bad = await admin.call("POST", "/api/v1/user-imports", {**body, "name": "x", "group_ids": [999]})
    assert admin.last_status == 404 and bad["field"] == "group_ids"
    bad = await admin.call("POST", "/api/v1/user-imports", {**body, "name": "x", "schedule": "daily"})
    assert admin.last_status == 400 and bad["field"] == "at"
    bad = await admin.call("POST", "/api/v1/user-imports", {**body, "name": "x", "fields": {"login": "uid)(x"}})
    assert admin.last_status == 400 and bad["field"] == "fields.login"
    # null clears the password.
    assert (await admin.patch(path, {"password": None}))["password_set"] is False


# -- the command line ---------------------------------------------------------------------

@needs_slapd
async def test_twp_users_import_list_and_run_with_dry_run(twp_app: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from twpcore import cli

    with slapd([person("alice", "Alice", "Martin", "+33 1 40 00 1001"), person("dave", "Dave", "Nophone", None)]) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "Corp LDAP", **ldap_settings(ldap)}, status=201)
        config = tmp_path / "twp.toml"
        config.write_text(f'[storage]\nurl = "{server.kernel.config.storage.url}"\n')

        def twp(*argv: str) -> tuple[int, Any]:
            code = cli.main(["--config", str(config), *argv])
            return code, capsys.readouterr()

        code, out = await asyncio.to_thread(twp, "users", "import", "run", str(imp["id"]), "--dry-run")
        assert code == 0 and "user import Corp LDAP (dry run: nothing written): ok" in out.out and "1 created" in out.out
        assert "ignored dave: no phone number (telephoneNumber is empty)" in out.out
        assert users_of(server, w["domain"]) == {}
        code, out = await asyncio.to_thread(twp, "users", "import", "run", str(imp["id"]))
        assert code == 0 and "1 created" in out.out and "dry run" not in out.out
        assert users_of(server, w["domain"])["alice"]["devices"] == ["1001"]
        code, out = await asyncio.to_thread(twp, "users", "import", "list")
        assert code == 0 and "Corp LDAP" in out.out and "insert_update" in out.out and " ok" in out.out
        assert PASSWORD not in out.out
        ldap.stop()
        code, out = await asyncio.to_thread(twp, "users", "import", "run", str(imp["id"]))
        assert code == 1 and "source not reachable" in out.err and "nothing changed" in out.err
        with pytest.raises(SystemExit, match="user import 999 does not exist"):
            await asyncio.to_thread(twp, "users", "import", "run", "999")


@needs_slapd
async def test_a_source_that_suddenly_gives_no_entry_deletes_nobody(twp_app: Any) -> None:
    with slapd([person("alice", "Alice", "Martin", "+33 1 40 00 1001")]) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        imp = await admin.post(
            "/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "sync_type": "full", **ldap_settings(ldap)}, status=201
        )
        assert (await run(admin, imp["id"]))["created"] == 1
        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"filter": "(uid=nobody-has-this-uid)"})  # an admin's typo
        report = await run(admin, imp["id"])
        assert report["status"] == "failed" and report["deleted"] == 0
        assert report["error"].startswith("the source gave no entry at all: this full run would delete the 1 users this import created")
        assert "alice" in users_of(server, w["domain"])


@needs_slapd
async def test_ldaps_and_starttls_and_an_untrusted_certificate_changes_nothing(twp_app: Any) -> None:
    pytest.importorskip("trustme")
    with slapd([person("alice", "Alice", "Martin", "+33 1 40 00 1001")], tls=True) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        port = int(ldap.ldaps_url.rsplit(":", 1)[1])
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAPS", **ldap_settings(ldap),
                                                         "security": "ldaps", "port": port}, status=201)
        # The test CA is in no system store: full verification refuses the server, nothing is written.
        refused = await run(admin, imp["id"])
        assert refused["status"] == "failed" and "certif" in refused["error"].lower() and refused["error"].endswith("nothing changed")
        assert users_of(server, w["domain"]) == {}
        # With the company's CA the certificate and the host name are checked and pass.
        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"ca_file": str(ldap.ca_file)})
        assert (await run(admin, imp["id"]))["created"] == 1
        await admin.patch(f"/api/v1/user-imports/{imp['id']}", {"security": "starttls", "port": ldap.port})
        report = await run(admin, imp["id"])
        assert report["status"] == "ok" and report["unchanged"] == 1
        # A file path on the server is for super users only.
        limited = await server.admin(super_user=False, companies=(w["company"],))
        answer = await limited.call("PATCH", f"/api/v1/user-imports/{imp['id']}", {"ca_file": "/etc/shadow"})
        assert limited.last_status == 403 and answer["field"] == "ca_file"
        assert (await limited.patch(f"/api/v1/user-imports/{imp['id']}", {"description": "kept CA"}))["ca_file"] == str(ldap.ca_file)


@needs_slapd
async def test_an_account_coming_back_past_the_seat_quota_fails_the_run_and_changes_nothing(twp_app: Any) -> None:
    with slapd([person("alice", "Alice", "Martin", "+33 1 40 00 1001"), person("bob", "Bob", "Durand", "+33 1 40 00 1002")]) as ldap:
        server = await twp_app()
        admin = await server.admin()
        w = await company_world(admin)
        group = await admin.create("groups", domain_id=w["domain"], name="All")
        await admin.put(f"/api/v1/companies/{w['company']}/quotas/Caller", {"seats": 2})
        await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=group["id"])
        imp = await admin.post("/api/v1/user-imports", {"domain_id": w["domain"], "name": "LDAP", "group_ids": [group["id"]],
                                                         "sync_type": "insert_update_disable", **ldap_settings(ldap)}, status=201)
        assert (await run(admin, imp["id"]))["created"] == 2
        ldap.delete(f"uid=bob,ou=people,{SUFFIX}")
        assert (await run(admin, imp["id"]))["disabled"] == 1  # bob's seat is free
        zed = await admin.create("users", domain_id=w["domain"], login="zed")
        await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": zed["id"]}, status=204)  # and taken
        ldap.add([person("bob", "Bob", "Durand", "+33 1 40 00 1002")])
        report = await run(admin, imp["id"])
        assert report["status"] == "failed" and "quota of 2" in report["error"] and report["error"].endswith("nothing changed")
        assert users_of(server, w["domain"])["bob"]["enabled"] is False
