"""Boss / secretary (guide 9.1.7) and interception, end to end: API → kernel → CSTA XML driver → PBX simulator → WebSocket."""

from __future__ import annotations

from test_reception_kit import bosses_group, intercom_with_book, lab_of, set_parameter

from twp_csta.testing import EXTERNAL
from twpcore.testing.waiting import eventually

DUPONT = [("u1", {"uid": "u1", "sn": "Dupont", "givenName": "Jean", "telephoneNumber": EXTERNAL})]


async def secretary_of_bob(lab) -> None:
    """Alice is the secretary of Bob (group "Patrons"); they share the intercom group "Intercom Hotline", whose directory names Dupont."""
    await bosses_group(lab, "Patrons", "bob")
    await set_parameter(lab, "AuthorizeSupervisionInformation", "Patrons", user="alice")
    await set_parameter(lab, "AuthorizeShareRulesGroup", "Patrons", user="alice")
    await intercom_with_book(lab, "Intercom Hotline", ("201", "202"), ("alice", "bob"), DUPONT)
    reception = lab.kernel.reception
    await eventually(lambda: lab.user_ids["alice"] in reception.secretaries.get(lab.user_ids["bob"], ()), "alice sees bob's calls")


async def test_a_secretary_sees_her_bosss_call_and_intercepts_it(twp_app):
    lab = await lab_of(twp_app)
    try:
        await secretary_of_bob(lab)
        alice, carol = await lab.ws("alice"), await lab.ws("carol")

        # A call rings at Bob's: on CSTA the secretary learns a call rings, the caller once it is answered (guide 9.1.7, NB).
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        ringing = await alice.expect("supervision.call", device="202", call_id=call_id, state="alerting")
        assert (ringing["details"], ringing["caller"], ringing["boss_user_id"]) == (False, None, lab.user_ids["bob"])
        seen = await lab.users["alice"].get("/api/v1/me/bosses")
        assert seen["calls_group"] == "Patrons" and [b["login"] for b in seen["items"]] == ["bob"]
        device = seen["items"][0]["devices"][0]
        assert device["device"] == "202" and device["presence"] == "ringing" and device["details_at_ringing"] is False
        assert [(c["call_id"], c["state"], c["caller"]) for c in device["calls"]] == [(call_id, "alerting", None)]
        await carol.expect_no("supervision.call", within=0.1)

        # Carol watches no device of Bob's: she may not intercept.
        refused = await lab.users["carol"].post(f"/api/v1/calls/{call_id}/pickup", {"device": "202"}, status=403)
        assert "not one you watch" in refused["detail"]

        # Alice intercepts: the call leaves Bob's phone and is answered on hers.
        picked = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/pickup", {"device": "202"})
        assert picked["device"] == "201" and picked["from_device"] == "202"
        request = [m for m in lab.sim.requests if m.name == "DirectedPickupCall"][-1]
        assert request.device_field("requestingDevice") == "201" and request.connection_field("callToBePickedUp").device_id == "202"
        await alice.expect("call.established", device="201", call={"remote": EXTERNAL, "state": "connected"})
        assert lab.sim.calls[call_id].connections == {EXTERNAL: "connected", "201": "connected"}
        await lab.wait_calls("bob", lambda items: items == [])
        again = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/pickup", {"device": "202"}, status=409)
        assert again["error"] == "no_call"
    finally:
        await lab.close()


async def test_once_the_boss_answers_the_secretary_sees_the_callers_name_and_the_bosss_forwarding(twp_app):
    lab = await lab_of(twp_app)
    try:
        await secretary_of_bob(lab)
        alice = await lab.ws("alice")
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        await alice.expect("supervision.call", call_id=call_id, state="alerting")
        lab.sim.answer("202", call_id)
        answered = await alice.expect("supervision.call", call_id=call_id, state="connected")
        assert answered["details"] is True and answered["caller"] == EXTERNAL
        assert "Dupont" in answered["caller_name"] and answered["contact"]["directory"] == "Book Intercom Hotline"
        await lab.users["bob"].put("/api/v1/devices/forwarding", {"type": "immediate", "number": "203"})
        await eventually(lambda: lab.kernel.telephony.models[lab.domain_id].forwarding.get("202"), "bob's forwarding known")
        boss = (await lab.users["alice"].get("/api/v1/me/bosses"))["items"][0]
        assert boss["devices"][0]["forwarding"] == {"immediate": "203"}
        assert [(c["caller"], "Dupont" in (c["caller_name"] or "")) for c in boss["devices"][0]["calls"]] == [(EXTERNAL, True)]
    finally:
        await lab.close()


async def test_a_pbx_that_names_the_caller_while_ringing_shows_it_at_once(twp_app):
    lab = await lab_of(twp_app, "csta_ringing_details")
    try:
        await secretary_of_bob(lab)
        alice = await lab.ws("alice")
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        ringing = await alice.expect("supervision.call", call_id=call_id, state="alerting")
        assert ringing["details"] is True and ringing["caller"] == EXTERNAL and "Dupont" in ringing["caller_name"]
    finally:
        await lab.close()


async def test_a_driver_without_directed_pickup_answers_501_and_never_reaches_the_pbx(twp_app):
    lab = await lab_of(twp_app, "csta_no_pickup")
    try:
        await secretary_of_bob(lab)
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        await lab.wait_calls("bob", lambda items: [c["state"] for c in items] == ["alerting"])
        answer = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/pickup", {"device": "202"}, status=501)
        assert answer["error"] == "not_supported" and '"directed_pickup"' in answer["detail"] and "csta_no_pickup" in answer["detail"]
        assert not [m for m in lab.sim.requests if m.name == "DirectedPickupCall"]
    finally:
        await lab.close()
