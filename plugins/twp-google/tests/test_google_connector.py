"""The Google Workspace connector against the simulated Google API (guide 8.9).

The simulator checks what Google checks: the JWT's RS256 signature against the service
account's key, its audience and lifetime, the scopes authorized for the account's client
id (domain-wide delegation) and the user it acts for.  Scenarios: the domain directory
read page by page, a user's contacts, and the failures that must keep the previous
contacts (API down, time-out, refused key or delegation, a 503 half-way, malformed
entries).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from twp_google.connector import GoogleConfig, GoogleConnector
from twp_google.testing import CONTACTS_SCOPE, DIRECTORY_SCOPE, GoogleApiServer, GoogleUser
from twpcore.directory import SkippedRecord
from twpcore.directory.service import DirectoryRef
from twpcore.kinds import AuthFailed, ConnectorError, InstanceContext, Kind, NotReady, SourceRecord
from twpcore.schema import ConfigErrors, structure


def person(i: int) -> dict[str, Any]:
    return {"resourceName": f"people/c{i}", "etag": "%EgUBAi43PRoEAQIFByIMR", "names": [
        {"metadata": {"primary": True}, "displayName": f"Paul Durand{i}", "familyName": f"Durand{i}", "givenName": "Paul"}],
        "phoneNumbers": [{"value": f"06 12 00 {i:04d}", "canonicalForm": f"+336120{i:05d}", "type": "mobile"}],
        "emailAddresses": [{"value": f"paul{i}@client.example", "type": "work"}],
        "organizations": [{"name": "Client SA", "title": "Buyer"}]}


@pytest.fixture
async def google() -> AsyncIterator[GoogleApiServer]:
    users = [GoogleUser("admin@example.com", "Ada", "Admin", is_admin=True)]
    users += [GoogleUser(f"user{i:04d}@example.com", "Jean", f"Dupont{i:04d}",
                         phones=[{"value": f"+33 1 40 00 {i:04d}", "type": "work"}, {"value": f"+33 6 00 00 {i:04d}", "type": "mobile"}],
                         organizations=[{"name": "Example", "title": "Engineer", "department": "R&D", "primary": True}])
              for i in range(1, 1201)]
    users.append(GoogleUser("gone@example.com", "Old", "Timer", suspended=True))
    users[1].contacts.extend(person(i) for i in range(1, 151))
    users[1].contacts.append({"etag": "no-resource-name", "names": [{"displayName": "Ghost"}]})
    async with GoogleApiServer(users=users) as api:
        yield api


def make(api: GoogleApiServer, key: dict[str, Any], **options: Any) -> GoogleConnector:
    data = {"service_account_key": json.dumps(key), "workspace_domain": "example.com", "admin": "admin@example.com",
            "directory_url": api.base_url, "people_url": api.base_url, **options}
    return GoogleConnector(structure(GoogleConfig, data, source="test", path="options"), InstanceContext("test", Kind.DIRECTORY_CONNECTOR))


async def collect(connector: GoogleConnector, user: Any = None) -> list[Any]:
    try:
        return [record async for record in connector.records(user)]
    finally:
        await connector.close()


async def test_the_domain_directory_is_read_page_by_page(google: GoogleApiServer) -> None:
    key = google.service_account()
    connector = make(google, key)
    try:
        assert await connector.test_connection() == (
            f"Google Workspace example.com: 1201 users listed by admin@example.com through {key['client_email']}")
    finally:
        await connector.close()
    records = await collect(make(google, key))
    assert len(records) == 1201  # the suspended user is left out
    jean = next(r for r in records if r.fields["primaryEmail"] == "user0042@example.com")
    assert jean.fields["name.familyName"] == "Dupont0042" and jean.fields["phones.work"] == "+33 1 40 00 0042"
    assert jean.fields["phones.mobile"] == "+33 6 00 00 0042" and jean.fields["organizations.department"] == "R&D"
    # users.list answers at most 500 per page: 1,202 users take three pages.
    assert [op for op, _ in google.requests].count("users.list") == 3 + 3


async def test_a_users_contacts_are_read_acting_as_that_user(google: GoogleApiServer) -> None:
    key = google.service_account()
    connector = make(google, key, page_size=100)
    connector.directory = DirectoryRef(1, "Google contacts", "private", 1, 1)
    assert await connector.test_connection() == (
        f"Google Workspace example.com: Google accepted the service account {key['client_email']} acting for admin@example.com; "
        "each granted user's contacts are read through the People API")
    records = await collect(connector, {"login": "jean", "email": "user0001@example.com"})
    contacts = [r for r in records if isinstance(r, SourceRecord)]
    assert len(contacts) == 150
    assert contacts[41].fields == {
        "resourceName": "people/c42", "names.givenName": "Paul", "names.familyName": "Durand42", "names.displayName": "Paul Durand42",
        "organizations.name": "Client SA", "organizations.title": "Buyer", "phoneNumbers.mobile": "+33612000042",
        "emailAddresses.work": "paul42@client.example"}
    assert [r for r in records if isinstance(r, SkippedRecord)] == [
        SkippedRecord("user0001@example.com #151", "no resourceName in the People API entry")]
    assert ("connections.list", "user0001@example.com") in google.requests
    with pytest.raises(ConnectorError, match="user paul has no Email"):
        await collect(make(google, google.service_account()), {"login": "paul", "email": ""})


async def test_malformed_directory_entries_are_named(google: GoogleApiServer) -> None:
    google.extra_users.extend([{"primaryEmail": "broken@example.com"}, "not an object"])
    records = await collect(make(google, google.service_account()))
    skipped = [r for r in records if isinstance(r, SkippedRecord)]
    assert skipped == [SkippedRecord("broken@example.com", "no id in the Directory API entry"),
                       SkippedRecord("users.list #1204", "no id in the Directory API entry")]


async def test_refused_keys_delegations_and_users_are_auth_failed(google: GoogleApiServer) -> None:
    # A key Google never issued (another project's, or a deleted key).
    stranger = {**GoogleApiServer().service_account("stranger"), "token_uri": google.token_url}
    with pytest.raises(AuthFailed, match=r"refused the service account stranger@twp-test.iam.gserviceaccount.com"):
        await collect(make(google, stranger))

    # The key is fine but the admin did not authorize its client id for the directory scope.
    key = google.service_account("contacts-only", authorize=(CONTACTS_SCOPE,))
    with pytest.raises(AuthFailed, match=rf"authorize client id {key['client_id']} for {DIRECTORY_SCOPE} in the Admin console") as info:
        await collect(make(google, key))
    assert "PRIVATE KEY" not in str(info.value)

    # Acting as a user who is not an administrator.
    with pytest.raises(AuthFailed, match="Not Authorized to access this resource/api"):
        await collect(make(google, google.service_account(), admin="user0001@example.com"))
    # A user unknown to the domain.
    with pytest.raises(AuthFailed, match="Invalid email or User ID"):
        await collect(make(google, google.service_account()), {"login": "x", "email": "nobody@example.com"})


async def test_api_down_time_out_and_failure_half_way_are_not_ready(google: GoogleApiServer) -> None:
    key = google.service_account()
    google.fail_after = 1
    with pytest.raises(NotReady, match=r"users.list: Google answered HTTP 503: The service is currently unavailable"):
        await collect(make(google, key))
    google.fail_after = None

    google.delay = 2
    with pytest.raises(NotReady, match="no answer within 1 s"):
        await collect(make(google, key, timeout=1))
    google.delay = 0

    base = google.base_url
    await google.stop()
    with pytest.raises(NotReady, match="cannot reach Google"):
        await collect(make(google, key, directory_url=base))


async def test_the_key_may_be_a_file(google: GoogleApiServer, tmp_path: Any) -> None:
    path = tmp_path / "twp-google-key.json"
    path.write_text(json.dumps(google.service_account()))
    connector = GoogleConnector(structure(GoogleConfig, {
        "service_account_file": str(path), "workspace_domain": "example.com", "admin": "admin@example.com",
        "directory_url": google.base_url}), InstanceContext("file", Kind.DIRECTORY_CONNECTOR))
    assert len(await collect(connector)) == 1201


def test_config_errors_name_the_fix(tmp_path: Any) -> None:
    with pytest.raises(ConfigErrors, match=r"cannot read service_account_file .*missing.json: No such file or directory"):
        structure(GoogleConfig, {"service_account_file": str(tmp_path / "missing.json"), "workspace_domain": "example.com"})
    with pytest.raises(ConfigErrors, match="set exactly one of service_account_key and service_account_file"):
        structure(GoogleConfig, {"workspace_domain": "example.com"})
    with pytest.raises(ConfigErrors, match="not JSON: give the content of the service account's JSON key file"):
        structure(GoogleConfig, {"service_account_key": "api-google-apitws.p12", "workspace_domain": "example.com"}, source="twp.toml", path="x")
    with pytest.raises(ConfigErrors, match="lacks private_key: download a JSON key"):
        structure(GoogleConfig, {"service_account_key": '{"client_email": "a@b"}', "workspace_domain": "example.com"}, source="twp.toml", path="x")


def test_loading_the_plugin_does_not_import_cryptography() -> None:
    """cryptography is needed to sign the first token, not to load the plugin."""
    import subprocess
    import sys

    probe = "import sys, twp_google.plugin; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
