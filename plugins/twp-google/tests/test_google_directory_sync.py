"""An admin adds Google Workspace directories and synchronizes them through the API (guide 8.9).

End to end: the installed ``twp-google`` plugin, the kernel's directory service and the
simulated Google API.  The domain directory syncs with its pre-filled mapping and keeps
its contacts when Google fails half-way; a private directory reads each granted user's
Google contacts with the People API's pre-filled mapping, each user seeing only their own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from twp_google.connector import DIRECTORY_DEFAULT_FIELDS, PEOPLE_DEFAULT_FIELDS
from twp_google.testing import GoogleApiServer, GoogleUser
from twpcore.testing.directories import admin_and_domain, reverse


@pytest.fixture
async def google() -> AsyncIterator[GoogleApiServer]:
    users = [GoogleUser("admin@acme.example", "Ada", "Admin", is_admin=True)]
    users += [GoogleUser(f"u{i:03d}@acme.example", "Jean", f"Dupont{i:03d}",
                         phones=[{"value": f"+33 1 40 00 {i:04d}", "type": "work"}],
                         organizations=[{"name": "ACME", "title": "Engineer", "primary": True}]) for i in range(1, 601)]
    users[1].contacts.append({"resourceName": "people/c1", "names": [{"familyName": "Lefebvre", "givenName": "Maman"}],
                              "phoneNumbers": [{"value": "06 11 22 33 44", "canonicalForm": "+33611223344", "type": "mobile"}]})
    async with GoogleApiServer(domain="acme.example", users=users) as api:
        yield api


async def test_the_domain_directory_syncs_and_survives_a_failure_half_way(twp_app: Any, google: GoogleApiServer) -> None:
    key = google.service_account()
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Google ACME", "connector": "google",
        "options": {"service_account_key": json.dumps(key), "workspace_domain": "acme.example", "admin": "admin@acme.example",
                    "directory_url": google.base_url},
    }, status=201)
    assert key["private_key"] not in json.dumps(directory)
    assert directory["default_fields"] == DIRECTORY_DEFAULT_FIELDS and directory["fields"] == {}

    test = await admin.post(f"/api/v1/directories/{directory['id']}/test", status=200)
    assert test["ok"] is True and "601 users listed by admin@acme.example" in test["message"]
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (report["status"], report["created"]) == ("ok", 601), report
    found = (await reverse(admin, "+33140000042", domain_id=domain_id))
    assert found["found"] is True and (found["contact"]["last_name"], found["contact"]["company"]) == ("Dupont042", "ACME")

    google.fail_after = google.pages_served + 1  # the second page of users.list answers 503
    failed = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert failed["status"] == "failed" and "HTTP 503" in failed["error"] and failed["error"].endswith("previous contacts kept")
    assert (await reverse(admin, "+33140000042", domain_id=domain_id))["found"] is True


async def test_a_private_directory_reads_each_users_google_contacts(twp_app: Any, google: GoogleApiServer) -> None:
    key = google.service_account()
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    jean = await admin.create("users", domain_id=domain_id, login="jean", email="u001@acme.example", password="a-long-password-1")
    paul = await admin.create("users", domain_id=domain_id, login="paul", email="u002@acme.example", password="a-long-password-1")
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Google contacts", "connector": "google", "type": "private",
        "options": {"service_account_key": json.dumps(key), "workspace_domain": "acme.example", "people_url": google.base_url},
        # The People API's mapping is the default of a private directory; the admin overrides one field of it.
        "fields": {"first_name": "names.givenName|u"},
    }, status=201)
    assert directory["default_fields"] == PEOPLE_DEFAULT_FIELDS
    for user in (jean, paul):
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{directory['id']}",
                           subject_type="user", subject_id=user["id"])
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (report["status"], report["created"]) == ("ok", 1), report
    assert ("connections.list", "u001@acme.example") in google.requests and ("connections.list", "u002@acme.example") in google.requests

    # The contact is in u001's Google account (Jean's): Jean finds it, Paul does not.
    as_jean = await server.login("jean", "a-long-password-1")
    hits = (await as_jean.get("/api/v1/directories/search", params={"q": "lefebvre"}))["items"]
    assert [(h["last_name"], h["first_name"], h["numbers"]) for h in hits] == [("Lefebvre", "MAMAN", [{"type": "mobile", "number": "+33611223344"}])]
    as_paul = await server.login("paul", "a-long-password-1")
    assert (await as_paul.get("/api/v1/directories/search", params={"q": "lefebvre"}))["items"] == []
