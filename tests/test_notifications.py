"""Notifications of the event journal (user guide 4.1.1-4.1.3): custom to one colleague, general to the whole company.

A notification reaches its recipients live (``notification.received`` on the WebSocket)
and stays in their "received" tab; it is kept in the journal of both users, and the
recipient cannot delete it (4.1.2).  A general notification reaches every user of the
company, in every domain, and nobody outside it; ``AuthorizeNote`` (guide 9.1.8) governs both.
"""

from __future__ import annotations

import pytest

from twp_csta.testing import event_stream as stream
from twpcore.testing.office import office as kit_office

BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)
"""The scenario on both stores: the queries are plain SQLAlchemy Core, the proof is running them."""


async def office(twp_app):
    """Ann and Bob in Alpha's Paris, Carl in Alpha's Nice, Zoe in Bravo."""
    return await kit_office(twp_app, (("ann", "Alpha"), ("bob", "Alpha"), ("carl", "Alpha", "Nice"), ("zoe", "Bravo")),
                            user_fields=lambda login: {"first_name": login.title()})


async def test_a_custom_notification_reaches_the_colleague_live_and_stays_in_both_journals(twp_app):
    o = await office(twp_app)
    ann, bob = o["ann"]["client"], o["bob"]["client"]
    bob_ws = await stream(o["server"], bob)
    admin_ws = await stream(o["server"], o["root"])
    sent = await ann.post("/api/v1/journal/entries", {"text": "Your 3 pm visitor is here", "audience": "user", "user_id": o["bob"]["id"]},
                          status=201)
    live = await bob_ws.expect("notification.received", id=sent["id"])
    assert live["kind"] == "notification" and live["author"]["login"] == "ann" and live["text"] == "Your 3 pm visitor is here"
    received = await bob.get("/api/v1/notifications/received")
    assert [n["id"] for n in received["items"]] == [sent["id"]]
    assert [e["id"] for e in (await bob.get("/api/v1/journal", params={"user_id": str(o["ann"]["id"])}))["items"]] == [sent["id"]]
    assert [e["id"] for e in (await ann.get("/api/v1/journal", params={"user_id": str(o["bob"]["id"])}))["items"]] == [sent["id"]]
    refused = await bob.delete(f"/api/v1/journal/entries/{sent['id']}", status=403)
    assert "cannot be deleted" in refused["detail"]
    await admin_ws.expect_no("notification.received", within=0.2)
    await ann.delete(f"/api/v1/journal/entries/{sent['id']}")
    assert (await bob.get("/api/v1/notifications/received"))["items"] == []
    await bob_ws.close()
    await admin_ws.close()


@BOTH
async def test_a_general_notification_reaches_every_user_of_the_company_and_nobody_else(twp_app):
    o = await office(twp_app)
    streams = {login: await stream(o["server"], o[login]["client"]) for login in ("bob", "carl", "zoe")}
    sent = await o["ann"]["client"].post("/api/v1/journal/entries", {"text": "Fire drill at 11", "audience": "all"}, status=201)
    assert sent["kind"] == "general"
    for login in ("bob", "carl"):
        await streams[login].expect("notification.received", id=sent["id"])
        assert [n["id"] for n in (await o[login]["client"].get("/api/v1/notifications/received"))["items"]] == [sent["id"]]
    await streams["zoe"].expect_no("notification.received", within=0.2)
    assert (await o["zoe"]["client"].get("/api/v1/notifications/received"))["items"] == []
    assert (await o["zoe"]["client"].get("/api/v1/notifications/general"))["items"] == []
    assert [n["text"] for n in (await o["ann"]["client"].get("/api/v1/notifications/general"))["items"]] == ["Fire drill at 11"]
    assert (await o["ann"]["client"].get("/api/v1/notifications/received"))["items"] == []  # not one's own
    for s in streams.values():
        await s.close()


async def test_authorize_note_governs_notifications_not_personal_notes_and_companies_stay_apart(twp_app):
    o = await office(twp_app)
    ann = o["ann"]["client"]
    foreign = await ann.post("/api/v1/journal/entries", {"text": "hi", "audience": "user", "user_id": o["zoe"]["id"]}, status=404)
    assert foreign["field"] == "user_id"
    # Carl's domain shows no users directory to Ann, nor Ann's to Carl.
    await ann.post("/api/v1/journal/entries", {"text": "hi", "audience": "user", "user_id": o["carl"]["id"]}, status=403)
    await ann.post("/api/v1/journal/entries", {"text": "hi", "audience": "all", "number": "12"}, status=400)
    await ann.post("/api/v1/journal/entries", {"text": "hi", "audience": "user", "user_id": o["ann"]["id"]}, status=400)
    await o["root"].create("parameter_values", name="AuthorizeNote", scope="user", scope_id=o["ann"]["id"], value="No")
    for body in ({"audience": "user", "user_id": o["bob"]["id"]}, {"audience": "all"}):
        off = await ann.post("/api/v1/journal/entries", {"text": "hi", **body}, status=403)
        assert "AuthorizeNote = No" in off["detail"]
    await ann.post("/api/v1/journal/entries", {"text": "mine only", "audience": "me", "user_id": o["bob"]["id"]}, status=201)
