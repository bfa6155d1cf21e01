"""The store-backed directory index on SQLite and PostgreSQL: both search plans (rare words through
``contact_words``, common words by walking a directory in rank order) give the same pages, ranked by
priority then name, folded for case and accents; reverse lookup through written forms; what a private
directory's owner sees; a sync's new contacts hidden until it publishes them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.test_directory_service import directory, person, world
from twpcore.directory import search as searching
from twpcore.store import schema as t

BOTH_STORES = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)

NAMES = ["Émile Zola", "Emma Martin", "Martine Lefèvre", "Marc Martinez", "Léa Martin", "Hugo Marchand", "Zoé Dupont"]


def people(prefix: int):
    out = []
    for i, name in enumerate(NAMES):
        given, last = name.split()
        out.append(person(f"{prefix}{i}", last, given, o="ACME Conseil", mail=f"{given.lower()}.{i}@acme.example",
                          tel=f"01 55 {prefix:02d} 18 {i:02d}"))
    return out


async def _pages(alice, q, size=3):
    items, offset = [], 0
    while True:
        page = await alice.get("/api/v1/directories/search", params={"q": q, "offset": offset, "limit": size})
        items += [(c["directory"], c["last_name"], c["first_name"]) for c in page["items"]]
        if not page["more"]:
            return items
        offset += size


@BOTH_STORES
@pytest.mark.parametrize("plan", ["rare", "common"])
async def test_search_pages_are_ranked_folded_and_the_same_with_either_plan(twp_app, monkeypatch, plan):
    if plan == "common":
        monkeypatch.setattr(searching, "SPARSE", 0)  # every word counts as common: walk in rank order
        monkeypatch.setattr(searching, "WALK", 2)  # several reads per directory
    w = await world(twp_app)
    admin = w["admin"]
    first = await directory(w, "CRM", people(1), priority=10)
    second = await directory(w, "LDAP", people(2), priority=20)
    for d in (first, second):
        assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == len(NAMES)
    alice = await w["server"].login("alice", "a-long-password-1")
    # "mart" starts a word of Martin, Martine, Martinez (not Marchand); CRM (priority 10) first, then by name.
    expected = [(d, last, given) for d in ("CRM", "LDAP")
                for last, given in sorted([("Lefèvre", "Martine"), ("Martin", "Emma"), ("Martin", "Léa"), ("Martinez", "Marc")],
                                          key=lambda x: (x[0].lower().replace("è", "e"), x[1].lower().replace("é", "e")))]
    assert await _pages(alice, "MART") == expected
    assert await _pages(alice, "mart lea") == [("CRM", "Martin", "Léa"), ("LDAP", "Martin", "Léa")]
    assert await _pages(alice, "emile") == [("CRM", "Zola", "Émile"), ("LDAP", "Zola", "Émile")]
    assert await _pages(alice, "lefevre marti") == [("CRM", "Lefèvre", "Martine"), ("LDAP", "Lefèvre", "Martine")]
    assert await _pages(alice, "acme", size=5) == [(d, last, given) for d in ("CRM", "LDAP") for last, given in
                                                   sorted(((n.split()[1], n.split()[0]) for n in NAMES),
                                                          key=lambda x: (x[0].lower().replace("è", "e"), x[1].lower()))]
    assert await _pages(alice, "nobody") == []
    # Numbers: a search by number and a reverse lookup through another written form.
    assert await _pages(alice, "01 55 02 18 03") == [("LDAP", "Martinez", "Marc")]
    found = await alice.get("/api/v1/directories/reverse", params={"number": "+33 (0)1 55 02 18 03"})
    assert found["contact"]["last_name"] == "Martinez" and found["contact"]["directory"] == "LDAP"


@BOTH_STORES
async def test_private_contacts_are_seen_by_their_owner_only_and_unpublished_contacts_by_nobody(twp_app):
    w = await world(twp_app)
    server, admin = w["server"], w["admin"]
    priv = await admin.create("directories", domain_id=w["paris"]["id"], name="[TwsPrivate]", connector="private", type="private")
    for u in ("alice", "bob"):
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{priv['id']}", subject_type="user",
                           subject_id=w["users"][u]["id"])
    alice = await server.login("alice", "a-long-password-1")
    bob = await server.login("bob", "a-long-password-1")
    await alice.post("/api/v1/me/contacts", {"last_name": "Secrétaire", "first_name": "Anne", "phone": "0155171800"}, status=201)
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "secre"}))["items"]] == ["Secrétaire"]
    assert (await bob.get("/api/v1/directories/search", params={"q": "secre"}))["items"] == []
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 00"}))["found"]
    assert not (await bob.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 00"}))["found"]
    # A contact a running sync wrote but has not published yet: nobody finds it, its card is not shown.
    d = await directory(w, "CRM", [person("1", "Dupont", tel="01 55 17 18 89")])
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    hidden = server.run(lambda c: c.execute(sa.update(t.contacts).where(t.contacts.c.directory_id == d["id"])
                                            .values(pending=999_999).returning(t.contacts.c.id)).scalar_one())
    assert (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"] == []
    assert not (await alice.get("/api/v1/directories/reverse", params={"number": "01 55 17 18 89"}))["found"]
    await alice.get(f"/api/v1/directories/contacts/{hidden}", status=404)
    server.run(lambda c: c.execute(sa.update(t.contacts).where(t.contacts.c.id == hidden).values(pending=None)))
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"]] == ["Dupont"]
