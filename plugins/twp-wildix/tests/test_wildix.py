"""The Wildix pop-up URL, as the Wildix WMS start guide describes it, end to end through a running TWP.

The PBX side is played by ``expand``: it fills a user's pop-up URL template with the
guide's variables ({CALLERNUM}, {CALLERNAME}, {USERNUM}, {USERNAME}, {CALLTYPE}, {TAGS})
and manipulations ({CALLERNUM:1}) as Wildix does, and the test opens the result as the
user's browser would.  What is checked is what users and admins see: the screen pop on
the user's WebSocket with the caller found in her directory, her call log with the cost
from the company's price list, and forged or broken URLs refused without any event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from twp_csta.testing import EventStream, event_stream
from twp_wildix.popup import PopupError, PopupHit, expand, url_template, user_key
from twpcore.testing.call_logs import wait_call_log

SECRET = "wildix-link-secret-for-tests"
LINK = {"driver": "wildix", "company": "ACME", "domain": "Paris", "secret": SECRET, "ring_timeout": 0.4}
# A Wildix price list (columns of the guide): French mobiles and fixed lines, day and night bands.
PRICES = """dialprefix,destination,rate,min_duration,billing block,connect_charge,start_day,stop_day,start_time,stop_time
0033,France fixed,0.02,0,60,0.10,1,7,0,86400
00336,France mobile,0.12,0,60,0.15,1,7,0,86400
"""

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")


def test_the_guides_variables_and_the_callernum_manipulation_expand_as_on_the_pbx():
    # "{CALLERNUM:1} – supprime le premier chiffre": the trunk's leading 0 goes away.
    template = "https://twp.example.com/p?number={CALLERNUM:1}&raw={CALLERNUM}&name={CALLERNAME}&type={CALLTYPE}&tags={TAGS}&x={OTHER}"
    url = expand(template, {"CALLERNUM": "0612345678", "CALLERNAME": "Jean Dupont & Fils", "CALLTYPE": "incoming", "TAGS": "VIP,sales"})
    assert url == ("https://twp.example.com/p?number=612345678&raw=0612345678&name=Jean%20Dupont%20%26%20Fils&type=incoming"
                   "&tags=VIP%2Csales&x={OTHER}")
    hit = PopupHit.parse({"user": "201", "number": "06 12 34 56 78", "name": "Jean", "type": "Incoming", "tags": "VIP", "event": "answer"})
    assert (hit.user_number, hit.direction, hit.number, hit.caller_name, hit.tags, hit.event) == (
        "201", "incoming", "0612345678", "Jean", "VIP", "answer")
    anonymous = PopupHit.parse({"user": "201", "number": "{CALLERNUM}", "type": "outgoing"})  # a variable the PBX left unfilled
    assert (anonymous.number, anonymous.direction, anonymous.event) == (None, "outgoing", "ringing")
    for query, field in (({"user": "201", "type": "sideways"}, "type"), ({"type": "incoming"}, "user"),
                         ({"user": "201", "type": "incoming", "number": "DROP TABLE"}, "number"),
                         ({"user": "201", "type": "incoming", "event": "hangup"}, "event")):
        with pytest.raises(PopupError) as err:
            PopupHit.parse(query)
        assert err.value.field == field and field in str(err.value)


async def wildix_world(twp_app: Any, **link: Any) -> dict[str, Any]:
    """ACME/Paris with alice (201) and bob (202) on a Wildix link, alice's private contact Jean Dupont, a price list."""
    server = await twp_app(config={"pbx": {"links": {"wildix": {**LINK, **link}}}})
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=3)
    users = {}
    for login, number in (("alice", "201"), ("bob", "202")):
        users[login] = await admin.create("users", domain_id=paris["id"], login=login, first_name=login.title(), last_name="Martin")
        await admin.create("devices", user_id=users[login]["id"], number=number)
    private = await admin.create("directories", domain_id=paris["id"], name="[TwsPrivate]", connector="private", type="private")
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{private['id']}", subject_type="user",
                       subject_id=users["alice"]["id"])
    alice = server.user_client(users["alice"]["id"])
    await alice.post("/api/v1/me/contacts", {"last_name": "Dupont", "first_name": "Jean", "phone": "06 12 34 56 78"}, status=201)
    await admin.post("/api/v1/price-lists", {"company_id": company["id"], "name": "Operator 2026", "currency": "EUR", "csv": PRICES}, status=201)
    kernel = server.kernel
    await kernel.directories.refresh_visibility()
    deadline = time.monotonic() + 5
    while (kernel.directories.reverse_now("0612345678", paris["id"], users["alice"]["id"]) is None
           or not {"201", "202"} <= kernel.telephony.links["wildix"].monitored):
        assert time.monotonic() < deadline, "the contact or the link's devices never became ready"
        await asyncio.sleep(0.05)
    return {"server": server, "admin": admin, "company": company, "paris": paris, "users": users, "alice": alice,
            "driver": kernel.telephony.links["wildix"].driver}


async def events_of(w: dict[str, Any], client: Any) -> EventStream:
    return await event_stream(w["server"], client, "ws")


async def urls_of(w: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The pop-up URLs an admin pastes into Wildix, by user number."""
    body = await w["admin"].get("/api/v1/wildix/wildix/popup-urls", params={"base": "http://twp.example.com"})
    return {item["user_number"]: item for item in body["items"]}


async def open_popup(w: dict[str, Any], template: str, status: int = 200, **variables: str) -> str:
    """What happens on a call: Wildix fills the user's URL and the user's browser opens it."""
    url = expand(template, variables).removeprefix("http://twp.example.com")
    resp = await w["server"].client.get(url)
    text = await resp.text()
    assert resp.status == status, f"{resp.status}: {text[:300]}"
    return text


async def test_an_incoming_call_pops_up_with_the_caller_from_her_directory_and_lands_in_her_call_log(twp_app):
    w = await wildix_world(twp_app)
    alice, urls = w["alice"], await urls_of(w)
    ws = await events_of(w, alice)
    try:
        call = {"CALLERNUM": "0612345678", "CALLERNAME": "DUPONT J", "USERNUM": "201", "USERNAME": "Alice Martin", "CALLTYPE": "incoming",
                "TAGS": "sales"}
        page = await open_popup(w, urls["201"]["ringing"], **call)
        assert "Call from DUPONT J (0612345678)" in page
        ringing = await ws.expect("call.delivered", call={"state": "alerting", "direction": "incoming"})
        assert ringing["device"] == "201" and ringing["call"]["remote"] == "0612345678"
        assert ringing["call"]["remote_name"] == "Jean Dupont"  # the reverse lookup in alice's directories
        await open_popup(w, urls["201"]["answer"], **call)
        await ws.expect("call.established", call={"call_id": ringing["call"]["call_id"], "state": "connected"})
        await ws.expect("call.cleared", call={"call_id": ringing["call"]["call_id"]})
        [entry] = (await wait_call_log(alice, 1))["items"]
        assert {k: entry[k] for k in ("device", "direction", "number", "name", "outcome", "cost", "price_list")} == {
            "device": "201", "direction": "incoming", "number": "0612345678", "name": "Jean Dupont", "outcome": "answered",
            "cost": None, "price_list": None}  # an incoming call costs the company nothing
        assert (await w["server"].user_client(w["users"]["bob"]["id"]).get("/api/v1/me/call-logs"))["total"] == 0
    finally:
        await ws.close()


async def test_an_outgoing_call_is_priced_by_the_companys_price_list(twp_app):
    w = await wildix_world(twp_app)
    alice, urls = w["alice"], await urls_of(w)
    ws = await events_of(w, alice)
    try:
        call = {"CALLERNUM": "0033612345678", "CALLERNAME": "", "USERNUM": "201", "USERNAME": "Alice Martin", "CALLTYPE": "outgoing", "TAGS": ""}
        await open_popup(w, urls["201"]["ringing"], **call)
        placed = await ws.expect("call.originated", call={"direction": "outgoing"})
        await open_popup(w, urls["201"]["answer"], **call)
        await ws.expect("call.cleared", call={"call_id": placed["call"]["call_id"]})
        [entry] = (await wait_call_log(alice, 1))["items"]
        # 00336 (France mobile) is longer than 0033 (France fixed): it wins.  Wildix never says when a call ends,
        # so the duration is 0, under every rate's min_duration: no unit, no connect charge.
        assert {k: entry[k] for k in ("direction", "outcome", "number", "duration", "cost", "currency", "price_list", "destination")} == {
            "direction": "outgoing", "outcome": "answered", "number": "0033612345678", "duration": 0.0, "cost": 0.0, "currency": "EUR",
            "price_list": "Operator 2026", "destination": "France mobile"}
    finally:
        await ws.close()


async def test_a_ringing_call_no_answer_pop_up_follows_is_a_missed_call(twp_app):
    w = await wildix_world(twp_app)
    alice, urls = w["alice"], await urls_of(w)
    ws = await events_of(w, alice)
    try:
        call = {"CALLERNUM": "0612345678", "USERNUM": "201", "CALLTYPE": "incoming"}
        await open_popup(w, urls["201"]["ringing"], **call)
        await open_popup(w, urls["201"]["ringing"], **call)  # the same pop-up opened twice is one call
        await ws.expect("call.cleared", timeout=3)
        assert len(ws.matching("call.delivered")) == 1
        [entry] = (await wait_call_log(alice, 1))["items"]
        assert (entry["outcome"], entry["name"], entry["duration"]) == ("missed", "Jean Dupont", 0.0)
    finally:
        await ws.close()


async def test_forged_and_broken_pop_ups_are_refused_counted_and_publish_nothing(twp_app, caplog):
    w = await wildix_world(twp_app)
    alice, urls = w["alice"], await urls_of(w)
    ws = await events_of(w, alice)
    client = w["server"].client
    try:
        mark = ws.mark()
        caplog.set_level(logging.WARNING)
        bob_key = user_key(SECRET, "wildix", "202")
        forged = [
            (f"/api/v1/wildix/wildix/popup?user=201&key={bob_key}&number=0612345678&type=incoming", 403),  # bob's URL, alice's number
            ("/api/v1/wildix/wildix/popup?user=201&key=00000000000000000000000000000000&number=0612345678&type=incoming", 403),
            ("/api/v1/wildix/wildix/popup?user=201&number=0612345678&type=incoming", 403),  # no key
            (f"/api/v1/wildix/paris/popup?user=201&key={user_key(SECRET, 'paris', '201')}&type=incoming", 404),  # no such link
        ]
        alice_key = user_key(SECRET, "wildix", "201")
        broken = [
            (f"/api/v1/wildix/wildix/popup?user=201&key={alice_key}&number=0612345678&type=sideways", 400, "type"),
            (f"/api/v1/wildix/wildix/popup?user=201&key={alice_key}&number=<script>&type=incoming", 400, "number"),
            (f"/api/v1/wildix/wildix/popup?user=299&key={user_key(SECRET, 'wildix', '299')}&type=incoming", 409, "not supervised"),
        ]
        for path, status in forged:
            resp = await client.get(path)
            body = await resp.json()
            assert resp.status == status and body["error"] in ("forbidden", "not_found"), (path, body)
        for path, status, says in broken:
            resp = await client.get(path)
            body = await resp.json()
            assert resp.status == status and says in body["detail"], (path, body)
        await ws.expect_no("call.delivered", after=mark, within=0.3)
        assert w["driver"].refused == 6 and w["driver"].hits == 0
        refusals = [r.getMessage() for r in caplog.records if "pop-up from" in r.getMessage()]
        assert refusals and all(SECRET not in m and alice_key not in m and bob_key not in m for m in refusals)
        # The link still works for the real alice.
        await open_popup(w, urls["201"]["ringing"], CALLERNUM="0612345678", USERNUM="201", CALLTYPE="incoming")
        await ws.expect("call.delivered", after=mark)
    finally:
        await ws.close()


async def test_the_pop_up_urls_are_given_to_super_users_only(twp_app):
    w = await wildix_world(twp_app)
    urls = await urls_of(w)
    assert set(urls) == {"201", "202"}
    assert urls["202"]["answer"] == url_template("http://twp.example.com", "wildix", "202", user_key(SECRET, "wildix", "202"), "answer")
    assert "user={USERNUM}" in urls["202"]["ringing"] and "event=ringing" in urls["202"]["ringing"]
    limited = await w["server"].admin(super_user=False, companies=(w["company"]["id"],))
    refused = await limited.call("GET", "/api/v1/wildix/wildix/popup-urls", status=403)
    assert "super users" in refused["detail"]
    await w["admin"].call("GET", "/api/v1/wildix/nowhere/popup-urls", status=404)
    await w["admin"].call("GET", "/api/v1/wildix/wildix/popup-urls", params={"base": "javascript:alert(1)"}, status=400)
