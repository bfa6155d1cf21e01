"""An admin adds Exchange directories and synchronizes them through the API (guide 8.7).

End to end: the installed ``twp-exchange`` plugin, the kernel's directory service and
exchangelib talking to the EWS simulator.  A public directory over public folders is
searched and reverse-looked-up with its pre-filled field mapping; unreadable items are
named in the report; a server that goes down fails the sync and keeps the contacts.  A
private directory reads each granted user's mailbox through impersonation, and a user
whose mailbox cannot be opened makes the sync partial without touching the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from twp_exchange.testing import EwsContact, EwsFolder, EwsServer
from twpcore.testing.directories import admin_and_domain, reverse

SERVICE = "svc-twp@corp.example.com"


@pytest.fixture
def ews() -> Iterator[EwsServer]:
    server = EwsServer(users={SERVICE: "S3cret!"})
    suppliers = EwsFolder("Algo suppliers", items=[
        EwsContact(given_name="Anne", surname=f"Martin{i:03d}", company_name="Algo",
                   phones={"BusinessPhone": f"+33 1 40 00 {i:04d}"}, emails={"EmailAddress1": f"anne{i}@algo.example"})
        for i in range(1, 121)])
    suppliers.items.append(EwsContact(surname="Broken", corrupt=True))
    server.public.add(EwsFolder("General", folder_class="IPF.Note").add(suppliers))
    server.mailbox(SERVICE)
    server.mailbox("alice@acme.example").contacts.items.append(
        EwsContact(given_name="Maman", surname="Lefebvre", phones={"MobilePhone": "+33 6 11 22 33 44"}))
    with server:
        yield server


async def test_public_folders_sync_with_the_prefilled_mapping_and_survive_a_server_down(twp_app: Any, ews: EwsServer) -> None:
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Exchange suppliers", "connector": "exchange",
        "options": {"url": f"{ews.url}|public|General/Algo suppliers", "auth": "basic", "user": SERVICE,
                    "password": "S3cret!", "page_size": 50},
    }, status=201)
    assert "S3cret!" not in json.dumps(directory)  # the API never shows the password

    test = await admin.post(f"/api/v1/directories/{directory['id']}/test", status=200)
    assert test["ok"] is True and "General/Algo suppliers (121)" in test["message"]

    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (report["status"], report["created"], report["ignored"]) == ("ok", 120, 1), report
    assert report["problems"] == [{"record": "General/Algo suppliers #121",
                                   "reason": "Exchange cannot read this item: ErrorItemCorrupt: The item is corrupt."}]
    found = await reverse(admin, "+33140000042", domain_id=domain_id)
    assert found["found"] is True
    assert (found["contact"]["last_name"], found["contact"]["first_name"], found["contact"]["company"]) == ("Martin042", "Anne", "Algo")

    ews.stop()
    failed = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert failed["status"] == "failed" and "cannot reach the EWS endpoint" in failed["error"]
    assert failed["error"].endswith("previous contacts kept")
    assert (await reverse(admin, "+33140000042", domain_id=domain_id))["found"] is True


async def test_private_directory_reads_each_granted_users_mailbox(twp_app: Any, ews: EwsServer) -> None:
    ews.impersonators.add(SERVICE)
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    alice = await admin.create("users", domain_id=domain_id, login="alice", email="alice@acme.example", password="a-long-password-1")
    bob = await admin.create("users", domain_id=domain_id, login="bob", email="bob@acme.example", password="a-long-password-1")
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Exchange private", "connector": "exchange", "type": "private",
        "options": {"url": ews.url, "auth": "basic", "user": SERVICE, "password": "S3cret!", "access": "impersonation"},
    }, status=201)
    for user in (alice, bob):
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{directory['id']}",
                           subject_type="user", subject_id=user["id"])

    test = await admin.post(f"/api/v1/directories/{directory['id']}/test", status=200)
    assert test["ok"] is True and "each granted user's Contacts are read through impersonation" in test["message"]
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    # Bob has no mailbox: his part fails, Alice's contacts are synchronized.
    assert report["status"] == "partial" and report["created"] == 1, report
    assert report["problems"][0]["record"] == "user:bob" and "no such mailbox" in report["problems"][0]["reason"]

    as_alice = await server.login("alice", "a-long-password-1")
    hits = (await as_alice.get("/api/v1/directories/search", params={"q": "lefebvre"}))["items"]
    assert [(h["last_name"], h["first_name"]) for h in hits] == [("Lefebvre", "Maman")]
    as_bob = await server.login("bob", "a-long-password-1")
    assert (await as_bob.get("/api/v1/directories/search", params={"q": "lefebvre"}))["items"] == []
