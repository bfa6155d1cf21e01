"""Instant messages (user guide 2.6): two users of one company chat, live over the WebSocket and stored for the absent.

The scenarios follow the guide: a message to a colleague who is offline waits until the
colleague connects and reads it, and the sender then receives the read receipt.  Chat
never crosses a company, a user of another domain is reachable only through a TWP users
directory granted to one of the two, and ``AuthorizeChat`` (guide 9.1.8) switches it off.
"""

from __future__ import annotations

import time

import pytest

from twp_csta.testing import event_stream as stream
from twpcore.testing.office import OFFICE_PEOPLE
from twpcore.testing.office import office as kit_office

BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)
"""The scenario on both stores: the queries are plain SQLAlchemy Core, the proof is running them."""


async def office(twp_app):
    """(server, root, {company: ids}, {login: user}, {login: client}) of the kit's office, users named "<Login> Smith"."""
    o = await kit_office(twp_app, user_fields=lambda login: {"first_name": login.title(), "last_name": "Smith"})
    logins = [p[0] for p in OFFICE_PEOPLE]
    return o["server"], o["root"], {c: o[c] for c in ("Alpha", "Bravo")}, {x: o[x]["user"] for x in logins}, {x: o[x]["client"] for x in logins}


@BOTH
async def test_two_users_chat_one_offline_then_reads_and_the_sender_gets_the_receipt(twp_app):
    server, root, _, users, c = await office(twp_app)
    ann_ws = await stream(server, c["ann"])
    admin_ws = await stream(server, root)
    # Bob is offline: the messages wait for him.
    first = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "Lunch at noon?"}, status=201)
    second = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "Room 4."}, status=201)
    assert first["from"] == {"id": users["ann"]["id"], "login": "ann", "name": "Ann Smith"} and first["read_at"] is None
    await ann_ws.expect("chat.message", id=second["id"])  # the sender's other windows follow the conversation

    unread = await c["bob"].get("/api/v1/chat/unread")
    assert unread["count"] == 2 and [m["text"] for m in unread["items"]] == ["Lunch at noon?", "Room 4."]
    talks = await c["bob"].get("/api/v1/chat/conversations")
    assert [(t["user"]["login"], t["unread"], t["last"]["text"]) for t in talks["items"]] == [("ann", 2, "Room 4.")]

    bob_ws = await stream(server, c["bob"])
    receipt = await c["bob"].post("/api/v1/chat/read", {"with": users["ann"]["id"]}, status=200)
    assert receipt["read"] == 2 and receipt["up_to"] == second["id"]
    seen = await ann_ws.expect("chat.read", up_to=second["id"])
    assert seen["by"] == users["bob"]["id"] and seen["read_at"]
    assert (await c["bob"].get("/api/v1/chat/unread"))["count"] == 0
    history = await c["ann"].get("/api/v1/chat/messages", params={"with": str(users["bob"]["id"])})
    assert [m["read_at"] is not None for m in history["items"]] == [True, True]

    # Both connected: Bob's answer arrives live.
    reply = await c["bob"].post("/api/v1/chat/messages", {"to": users["ann"]["id"], "text": "Yes!"}, status=201)
    live = await ann_ws.expect("chat.message", id=reply["id"])
    assert live["text"] == "Yes!" and live["from"]["login"] == "bob"
    await bob_ws.expect("chat.message", id=reply["id"])
    # Messages are private: the company's administrator never receives them.
    await admin_ws.expect_no("chat.message", within=0.2)
    await admin_ws.expect_no("chat.read", within=0)
    for s in (ann_ws, bob_ws, admin_ws):
        await s.close()


async def test_history_comes_in_pages_newest_first(twp_app):
    _, _, _, users, c = await office(twp_app)
    sent = [await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": f"message {i}"}, status=201) for i in range(5)]
    page = await c["bob"].get("/api/v1/chat/messages", params={"with": str(users["ann"]["id"]), "limit": "2"})
    texts = [m["text"] for m in page["items"]]
    while page["next_before"]:
        page = await c["bob"].get("/api/v1/chat/messages", params={"with": str(users["ann"]["id"]), "limit": "2",
                                                                   "before": str(page["next_before"])})
        texts += [m["text"] for m in page["items"]]
    assert texts == [m["text"] for m in reversed(sent)]
    # Up to one message: the later ones stay unread.
    await c["bob"].post("/api/v1/chat/read", {"with": users["ann"]["id"], "up_to": sent[2]["id"]})
    assert [m["text"] for m in (await c["bob"].get("/api/v1/chat/unread"))["items"]] == ["message 3", "message 4"]


async def test_a_foreign_company_user_can_neither_send_nor_read(twp_app):
    _, root, _, users, c = await office(twp_app)
    await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "internal"}, status=201)
    refused = await c["zoe"].post("/api/v1/chat/messages", {"to": users["ann"]["id"], "text": "hello"}, status=404)
    assert refused["field"] == "to" and "does not exist in your company" in refused["detail"]
    await c["zoe"].get("/api/v1/chat/messages", params={"with": str(users["ann"]["id"])}, status=404)
    await c["zoe"].post("/api/v1/chat/read", {"with": users["ann"]["id"]}, status=404)
    assert (await c["zoe"].get("/api/v1/chat/unread"))["count"] == 0
    assert (await c["zoe"].get("/api/v1/chat/conversations"))["items"] == []
    # Administrators do not chat.
    await root.post("/api/v1/chat/messages", {"to": users["ann"]["id"], "text": "hi"}, status=403)


async def test_another_domain_needs_its_users_directory_and_authorize_chat_switches_chat_off(twp_app):
    server, root, ids, users, c = await office(twp_app)
    nice = await root.create("domains", company_id=ids["Alpha"]["company"], name="Nice")
    carl = await root.create("users", domain_id=nice["id"], login="carl")
    refused = await c["ann"].post("/api/v1/chat/messages", {"to": carl["id"], "text": "hi"}, status=403)
    assert "users directory" in refused["detail"] and refused["field"] == "to"
    directory = await root.create("directories", domain_id=nice["id"], name="[TwsUsers]", connector="twp_users")
    await root.create("authorizations", object_type="directory", object_ref=f"directory:{directory['id']}", subject_type="user",
                      subject_id=users["ann"]["id"])
    await c["ann"].post("/api/v1/chat/messages", {"to": carl["id"], "text": "hi"}, status=201)
    # Carl cannot see Ann's domain, but may answer her: one of the two sees the other.
    await server.user_client(carl["id"]).post("/api/v1/chat/messages", {"to": users["ann"]["id"], "text": "hello"}, status=201)

    await root.create("parameter_values", name="AuthorizeChat", scope="user", scope_id=users["ann"]["id"], value="No")
    off = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "still there?"}, status=403)
    assert "AuthorizeChat = No" in off["detail"]


async def test_bad_messages_are_refused_with_the_field_and_the_fix(twp_app):
    _, root, _, users, c = await office(twp_app)
    empty = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "   "}, status=400)
    assert empty["field"] == "text"
    me = await c["ann"].post("/api/v1/chat/messages", {"to": users["ann"]["id"], "text": "note to self"}, status=400)
    assert me["field"] == "to" and "that is you" in me["detail"]
    long = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "x" * 4001}, status=400)
    assert long["field"] == "text"
    await c["ann"].get("/api/v1/chat/messages", status=400)  # with= is required
    await root.patch(f"/api/v1/users/{users['bob']['id']}", {"enabled": False})
    disabled = await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "hi"}, status=409)
    assert "disabled" in disabled["detail"]


async def test_the_daily_purge_applies_chat_number_days_of_storage_per_domain(twp_app):
    server, root, ids, users, c = await office(twp_app)
    await c["ann"].post("/api/v1/chat/messages", {"to": users["bob"]["id"], "text": "old news"}, status=201)
    await root.create("parameter_values", name="Chat-NumberDaysOfStorage", scope="domain", scope_id=ids["Alpha"]["domain"], value="2")
    kernel = server.kernel
    assert (await kernel.teamwork.purge(time.time() + 86400))["chat_messages"] == 0  # one day later: kept
    assert (await kernel.teamwork.purge(time.time() + 3 * 86400))["chat_messages"] == 1
    assert (await c["bob"].get("/api/v1/chat/unread"))["count"] == 0
