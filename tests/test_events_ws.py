"""The live event WebSocket ``/api/v1/events``: each caller sees only what its rights allow.

Admins receive the ``admin.*`` events of the companies they manage; users receive the
events addressed to them (``user_ids``); a client that stops reading is told to
``system.resync`` and never slows the server or the other clients down.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from twpcore.auth import issue_token
from twpcore.events import Event


async def connect(server, token, **kw):
    return await server.client.ws_connect("/api/v1/events", params={"access_token": token}, **kw)


async def next_event(ws, timeout=5.0):
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return msg.json()


async def events_until(ws, marker_type, timeout=5.0):
    """Every event received up to the marker event (included)."""
    seen = []
    while not seen or seen[-1]["type"] != marker_type:
        seen.append(await next_event(ws, timeout))
    return seen


@pytest.fixture
async def two_companies(twp_app):
    server = await twp_app(config={"http": {"websocket_queue": 8}})
    root = await server.admin()
    ids = {}
    for name in ("Alpha", "Bravo"):
        company = await root.create("companies", name=name)
        domain = await root.create("domains", company_id=company["id"], name="Paris")
        ids[name] = {"company": company["id"], "domain": domain["id"]}
    ids["Alpha"]["u1"] = (await root.create("users", domain_id=ids["Alpha"]["domain"], login="ann", password="ann-password-1"))["id"]
    ids["Alpha"]["u2"] = (await root.create("users", domain_id=ids["Alpha"]["domain"], login="bob", password="bob-password-1"))["id"]
    return server, root, ids


async def test_admins_receive_the_admin_events_of_their_companies_only(two_companies):
    server, root, ids = two_companies
    limited = await server.admin(super_user=False, companies=(ids["Alpha"]["company"],))
    ws_limited = await connect(server, limited.token)
    ws_root = await connect(server, root.token)
    hello = await next_event(ws_limited)
    assert hello["type"] == "system.hello" and hello["data"]["principal"]["companies"] == [ids["Alpha"]["company"]]
    await next_event(ws_root)

    b_user = await root.create("users", domain_id=ids["Bravo"]["domain"], login="bravo-user")
    await root.patch(f"/api/v1/domains/{ids['Bravo']['domain']}", {"numbering_plan_length": 5})
    a_user = await root.create("users", domain_id=ids["Alpha"]["domain"], login="alpha-user")
    await root.delete(f"/api/v1/users/{a_user['id']}")

    seen = await events_until(ws_limited, "admin.user.deleted")
    assert [(e["type"], e["company_id"], e["data"]["id"]) for e in seen] == [
        ("admin.user.created", ids["Alpha"]["company"], a_user["id"]), ("admin.user.deleted", ids["Alpha"]["company"], a_user["id"])]
    everything = await events_until(ws_root, "admin.user.deleted")
    assert [e["type"] for e in everything] == ["admin.user.created", "admin.domain.updated", "admin.user.created", "admin.user.deleted"]
    assert everything[0]["data"]["id"] == b_user["id"] and everything[0]["company_id"] == ids["Bravo"]["company"]
    # Server-wide objects (admin accounts) are for super users' eyes only.
    await root.create("admins", login="another", password="another-password")
    server.kernel.events.publish(Event("admin.marker", {}, ids["Alpha"]["company"]))
    assert [e["type"] for e in await events_until(ws_limited, "admin.marker")] == ["admin.marker"]
    assert [e["type"] for e in await events_until(ws_root, "admin.marker")] == ["admin.admin.created", "admin.marker"]
    await ws_limited.close()
    await ws_root.close()


async def test_users_receive_only_events_addressed_to_them(two_companies):
    server, root, ids = two_companies
    alpha = ids["Alpha"]
    ann = await server.login("ann", "ann-password-1")
    bob = await server.login("bob", "bob-password-1")
    ws_ann, ws_bob = await connect(server, ann.token), await connect(server, bob.token)
    assert (await next_event(ws_ann))["data"]["principal"]["id"] == alpha["u1"]
    await next_event(ws_bob)

    bus = server.kernel.events
    bus.publish(Event("call.delivered", {"call_id": "c1", "device": "201"}, alpha["company"], alpha["domain"], frozenset({alpha["u1"]})))
    bus.publish(Event("call.delivered", {"call_id": "c2", "device": "202"}, alpha["company"], alpha["domain"], frozenset({alpha["u2"]})))
    bus.publish(Event("presence.changed", {"device": "203"}, alpha["company"], alpha["domain"], frozenset()))  # for nobody in particular
    await root.create("users", domain_id=alpha["domain"], login="carol")  # admin events are not for users
    bus.publish(Event("call.cleared", {"call_id": "c1"}, alpha["company"], alpha["domain"], frozenset({alpha["u1"], alpha["u2"]})))

    ann_saw = await events_until(ws_ann, "call.cleared")
    bob_saw = await events_until(ws_bob, "call.cleared")
    assert [(e["type"], e["data"].get("call_id")) for e in ann_saw] == [("call.delivered", "c1"), ("call.cleared", "c1")]
    assert [(e["type"], e["data"].get("call_id")) for e in bob_saw] == [("call.delivered", "c2"), ("call.cleared", "c1")]
    # A ping is answered; the socket keeps working.
    await ws_ann.send_str("ping")
    assert (await ws_ann.receive(timeout=5)).data == "pong"
    await ws_ann.close()
    await ws_bob.close()


async def test_a_client_that_stops_reading_is_told_to_resync_and_slows_nobody(two_companies):
    server, _root, ids = two_companies
    alpha = ids["Alpha"]
    ann = await server.login("ann", "ann-password-1")
    bob = await server.login("bob", "bob-password-1")
    slow = await connect(server, ann.token, compress=0)  # never reads until the end
    fast = await connect(server, bob.token, compress=0)
    await next_event(fast)
    received: list[dict] = []

    async def read_fast():
        while True:
            event = await next_event(fast, timeout=20)
            received.append(event)
            if event["type"] == "test.done":
                return

    reader = asyncio.create_task(read_fast())
    bus = server.kernel.events
    payload = "x" * 65536
    everyone = frozenset({alpha["u1"], alpha["u2"]})
    slowest_publish, published = 0.0, 0
    def ann_sub():
        return next(s for s in bus.subscriptions if s.name == "ws user:ann")

    while not ann_sub().dropped and published < 2000:
        t0 = time.perf_counter()
        bus.publish(Event("test.big", {"n": published, "pad": payload}, alpha["company"], alpha["domain"], everyone))
        slowest_publish = max(slowest_publish, time.perf_counter() - t0)
        published += 1
        await asyncio.sleep(0.001)
    assert ann_sub().dropped, f"{published} events of 64 KiB did not fill the slow client's queue"
    bus.publish(Event("test.done", {"n": published}, alpha["company"], alpha["domain"], everyone))
    await asyncio.wait_for(reader, 30)

    # The reading client got every event, in order, while the other one lagged.
    assert [e["data"]["n"] for e in received] == list(range(published + 1))
    # publish() never waits for a client: far below the seconds the slow client sat unread.
    assert slowest_publish < 1.0, f"publishing took up to {slowest_publish:.3f} s"
    # The slow client finds the events it had room for, then one resync, then the live stream again.
    seen = await events_until(slow, "system.resync", timeout=20)
    assert seen[0]["type"] == "system.hello"
    assert seen[-1]["data"]["dropped"] >= 1 and "fresh snapshot" in seen[-1]["data"]["reason"]
    numbers = [e["data"]["n"] for e in seen[1:-1]]
    assert numbers == list(range(len(numbers))) and len(numbers) < published
    bus.publish(Event("test.after", {}, alpha["company"], alpha["domain"], everyone))
    assert (await next_event(slow))["type"] == "test.after"
    await slow.close()
    await fast.close()


async def test_the_websocket_needs_a_valid_token(twp_server, admin):
    for params in ({}, {"access_token": "twp_not-a-token"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await twp_server.client.ws_connect("/api/v1/events", params=params)
        assert caught.value.status == 401
    resp = await twp_server.client.get("/api/v1/events")
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    # The token may also come as a header.
    ws = await twp_server.client.ws_connect("/api/v1/events", headers={"Authorization": f"Bearer {admin.token}"})
    assert (await next_event(ws))["type"] == "system.hello"
    await admin.post("/api/v1/auth/logout", status=204)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await twp_server.client.ws_connect("/api/v1/events", params={"access_token": admin.token})
    await ws.close()


async def test_the_server_closes_the_socket_when_the_token_expires(two_companies):
    server, _root, ids = two_companies
    # A token that lives one second (the shortest configurable lifetime is a minute).
    token, _ = server.run(lambda c: issue_token(c, "user", ids["Alpha"]["u1"], 1.0))
    ws = await connect(server, token)
    assert (await next_event(ws))["type"] == "system.hello"
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and "expired" in msg.extra
