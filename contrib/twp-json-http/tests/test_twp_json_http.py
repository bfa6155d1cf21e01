"""The json-http connector with the TWP test kit, against real HTTP sources started in the test (aiohttp on 127.0.0.1).

``twp_app`` (a fixture of the kit, no import needed) starts a real TWP server;
``twpcore.testing.directories`` gives a company, a domain, a user and the grant of a
directory to that user.  Each test plays what an admin does through the API and checks
what the admin and the user see.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from twpcore.testing.directories import USER_PASSWORD, directory_world, granted_directory, reverse

TOKEN = "s3cret-token-4711"
PAGES = {
    "1": {"contacts": [{"id": 1, "last_name": "Dupont", "first_name": "Jean", "company": "ACME", "phone": "+33 1 40 00 00 42"},
                       {"id": 2, "last_name": "Martin", "first_name": "Léa", "mobile": "06 12 34 56 78"}], "next": "/contacts?page=2"},
    "2": {"contacts": [{"id": 3, "last_name": "Petit", "email": "paul.petit@example.com"}, ["not", "a", "contact"]], "next": None},
}


class Source:
    """A CRM's JSON API: pages of contacts linked by "next", a bearer token, and a status the test can change."""

    def __init__(self) -> None:
        self.status = 200
        self.pages = dict(PAGES)
        self.requests: list[str] = []

    async def contacts(self, request: web.Request) -> web.Response:
        self.requests.append(str(request.rel_url))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        return web.json_response(self.pages[request.query.get("page", "1")])


@pytest.fixture
async def source(aiohttp_server):
    crm = Source()
    app = web.Application()
    app.router.add_get("/contacts", crm.contacts)
    server = await aiohttp_server(app)
    crm.url = str(server.make_url("/contacts"))
    return crm


def options(crm: Source, **more):
    return {"url": crm.url, "token": {"env": "CRM_TOKEN"}, "items": "contacts", "next": "next", **more}


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", TOKEN)


async def test_a_sync_reads_every_page_and_the_user_finds_the_contacts(twp_app, source):
    server, admin, domain, user = await directory_world(twp_app)
    directory = await granted_directory(admin, domain, user, name="CRM", connector="json-http", options=options(source))
    test = await admin.post(f"/api/v1/directories/{directory['id']}/test", status=200)
    assert test["ok"] is True and test["state"] == "ready", test
    assert test["message"] == f"2 contacts on the first page at {source.url}, more pages follow"

    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (report["status"], report["records"], report["created"], report["ignored"]) == ("ok", 4, 3, 1), report
    assert report["problems"] == [{"record": "contact 4", "reason": 'expected an object with an "id" field'}]
    assert source.requests[-2:] == ["/contacts", "/contacts?page=2"]

    alice = await server.login("alice", USER_PASSWORD)
    found = await alice.get("/api/v1/directories/search", params={"q": "petit"})
    assert [(c["last_name"], c["email"]) for c in found["items"]] == [("Petit", "paul.petit@example.com")]
    caller = await reverse(alice, "01 40 00 00 42")
    assert caller["found"] is True and caller["contact"]["last_name"] == "Dupont", caller


async def test_a_source_that_fails_keeps_the_previous_contacts_and_the_directory_says_why(twp_app, source):
    _server, admin, domain, user = await directory_world(twp_app)
    directory = await granted_directory(admin, domain, user, name="CRM", connector="json-http", options=options(source))
    assert (await admin.post(f"/api/v1/directories/{directory['id']}/sync"))["created"] == 3
    source.status = 503
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync")
    assert report["status"] == "failed" and f"{source.url} answered HTTP 503" in report["error"], report
    shown = await admin.get(f"/api/v1/directories/{directory['id']}")
    assert shown["state"] == "retrying" and "answered HTTP 503" in shown["reason"], shown
    assert (await reverse(admin, "+33140000042", domain_id=domain["id"]))["found"] is True  # the previous contacts stay

    source.status = 200
    source.pages["2"] = {"contacts": {"id": 9}, "next": None}
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync")
    assert report["status"] == "failed" and 'its "contacts" is a JSON dict, expected an array of contacts' in report["error"], report
    assert (await admin.get(f"/api/v1/directories/{directory['id']}"))["state"] == "setup_error"


async def test_a_wrong_token_answers_auth_failed_and_the_token_never_shows(twp_app, source, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", "wrong-token-0815")
    _server, admin, domain, user = await directory_world(twp_app)
    directory = await granted_directory(admin, domain, user, name="CRM", connector="json-http",
                                        options={**options(source), "token": "typed-token-9999"})
    assert directory["options"]["token"] == "***"
    test = await admin.post(f"/api/v1/directories/{directory['id']}/test")
    assert (test["ok"], test["state"]) == (False, "auth_failed") and "refused the token (HTTP 401); check the token option" in test["message"]
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync")
    assert report["status"] == "failed" and (await admin.get(f"/api/v1/directories/{directory['id']}"))["state"] == "auth_failed"
    assert "typed-token-9999" not in json.dumps([directory, test, report, await admin.get(f"/api/v1/directories/{directory['id']}")])


async def test_pages_that_loop_are_cut_off(twp_app, source):
    source.pages["2"] = {"contacts": [], "next": "/contacts?page=2"}
    _server, admin, domain, user = await directory_world(twp_app)
    directory = await granted_directory(admin, domain, user, name="CRM", connector="json-http", options=options(source, max_pages=5))
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync")
    assert report["status"] == "failed" and "links more than 5 pages; raise max_pages" in report["error"], report
    assert len(source.requests) == 5


@pytest.mark.parametrize(("bad", "message"), [
    ({"url": "crm.example.com/contacts"}, 'url: expected an http:// or https:// URL such as "https://crm.example.com/api/contacts", '
                                          'got "crm.example.com/contacts"'),
    ({"max_pages": 0}, "options.max_pages: expected"),
    ({"timeout": "soon"}, "options.timeout: expected"),
])
async def test_bad_options_are_refused_naming_the_key(twp_app, source, bad, message):
    _server, admin, domain, _user = await directory_world(twp_app)
    answer = await admin.call("POST", "/api/v1/directories", {"domain_id": domain["id"], "name": "CRM", "connector": "json-http",
                                                              "options": {**options(source), **bad}}, status=422)
    assert answer["field"] == "options" and message in answer["detail"], answer
