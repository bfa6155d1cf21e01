"""TWP presence (user guide 3): states and messages, inactivity, and what a colleague sees under their rights.

Telephony presence comes from calls on the PBX simulator behind the CSTA XML driver; the
rights are those of admin guide 7.4.3, 7.4.4, 9.1.3 and 9.1.8.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from twp_csta.testing import EXTERNAL, renamed_driver, start_lab


@pytest.fixture
async def lab(twp_app: Any) -> Any:
    lab = await start_lab(twp_app, "csta_presence", plugins=renamed_driver("csta_presence"))
    try:
        yield lab
    finally:
        await lab.close()


async def parameter(lab: Any, name: str, value: str, login: str) -> None:
    await lab.admin.create("parameter_values", name=name, scope="user", scope_id=lab.user_ids[login], value=value)


async def test_a_state_and_custom_message_reach_colleagues_live_and_through_the_api(lab: Any) -> None:
    alice, bob = lab.users["alice"], lab.users["bob"]
    ws = await lab.ws("bob")
    assert (await alice.get("/api/v1/me/presence"))["twp"]["state"] == "online"  # nobody set anything yet
    mark = ws.mark()
    await alice.put("/api/v1/me/presence", {"state": "absent", "message": "Pause midi"})
    event = await ws.expect("user_presence.changed", after=mark, user_id=lab.user_ids["alice"])
    assert (event["state"], event["message"], event["source"]) == ("absent", "Pause midi", "user")
    seen = await bob.get(f"/api/v1/users/{lab.user_ids['alice']}/presence")
    assert (seen["twp"]["state"], seen["twp"]["message"], seen["shown"]) == ("absent", "Pause midi", "absent")
    # Another company's user does not exist for alice's colleagues.
    other = await lab.admin.create("companies", name="Other")
    domain = await lab.admin.create("domains", company_id=other["id"], name="Far")
    stranger = await lab.admin.create("users", domain_id=domain["id"], login="zed")
    await bob.call("GET", f"/api/v1/users/{stranger['id']}/presence", status=404)
    # A state outside the guide's four, and a custom message without the right, are refused.
    refused = await alice.call("PUT", "/api/v1/me/presence", {"state": "sleeping"}, status=400)
    assert refused["field"] == "state"
    await parameter(lab, "AuthorizedCustomMessagePresences", "No", "bob")
    refused = await bob.call("PUT", "/api/v1/me/presence", {"state": "busy", "message": "Réunion"}, status=403)
    assert "AuthorizedCustomMessagePresences" in refused["detail"]
    assert (await bob.put("/api/v1/me/presence", {"state": "busy"}))["state"] == "busy"


async def test_inactivity_reported_by_a_client_makes_the_user_absent_until_activity_comes_back(lab: Any) -> None:
    alice = lab.users["alice"]
    await alice.put("/api/v1/me/presence", {"state": "online", "message": "Bureau 12"})
    idle = await alice.post("/api/v1/me/presence/activity", {"idle": True})
    assert (idle["state"], idle["source"], idle["message"]) == ("absent", "inactivity", "Bureau 12")
    back = await alice.post("/api/v1/me/presence/activity", {"idle": False})
    assert (back["state"], back["message"]) == ("online", "Bureau 12")
    # A state chosen on purpose is not overridden by inactivity.
    await alice.put("/api/v1/me/presence", {"state": "busy"})
    assert (await alice.post("/api/v1/me/presence/activity", {"idle": True}))["state"] == "busy"


async def test_telephony_presence_needs_the_right_and_a_granted_intercom_group(lab: Any) -> None:
    bob, carol = lab.users["bob"], lab.users["carol"]
    alice_id = lab.user_ids["alice"]
    group = await lab.admin.create("intercom_groups", domain_id=lab.domain_id, name="Hotline")
    devices = (await lab.admin.get("/api/v1/devices", params={"domain_id": str(lab.domain_id)}))["items"]
    device_id = next(d["id"] for d in devices if d["number"] == "201")
    await lab.admin.post(f"/api/v1/intercom-groups/{group['id']}/devices", {"device_id": device_id}, status=204)
    await lab.admin.create("authorizations", object_type="intercom_group", object_ref=f"intercom_group:{group['id']}", subject_type="user",
                           subject_id=lab.user_ids["bob"])
    ws = await lab.ws("alice")
    call_id = await lab.sim.incoming_call(EXTERNAL, "201")
    await ws.expect("call.delivered", call={"call_id": call_id})
    seen = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert [(p["device"], p["presence"]) for p in seen["telephony"]] == [("201", "ringing")] and seen["shown"] == "ringing"
    hidden = await carol.get(f"/api/v1/users/{alice_id}/presence")
    assert hidden["telephony"] is None and "7.4.4" in hidden["telephony_hidden"] and hidden["shown"] == "online"
    await parameter(lab, "AuthorizedPhoneSupervisionPresences", "No", "bob")
    refused = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert refused["telephony"] is None and "AuthorizedPhoneSupervisionPresences" in refused["telephony_hidden"]
    own = await lab.users["alice"].get("/api/v1/me/presence")
    assert own["telephony"][0]["presence"] == "ringing"


async def test_calendar_presence_follows_the_calendar_grant_and_the_display_parameters(lab: Any) -> None:
    alice, bob = lab.users["alice"], lab.users["bob"]
    alice_id = lab.user_ids["alice"]
    now = dt.datetime.now(dt.UTC)
    await alice.post("/api/v1/me/calendar/events", {"start": (now - dt.timedelta(minutes=10)).isoformat(),
                                                    "end": (now + dt.timedelta(minutes=50)).isoformat(),
                                                    "subject": "Comité de direction", "location": "Salle 2", "show_as": "busy",
                                                    "private": True}, status=201)
    hidden = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert hidden["calendar"] is None and "7.4.3" in hidden["calendar_hidden"]
    await lab.admin.create("authorizations", object_type="calendar", object_ref=f"user:{alice_id}", subject_type="user",
                           subject_id=lab.user_ids["bob"])
    seen = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert seen["calendar"]["state"] == "busy" and "subject" not in seen["calendar"] and seen["shown"] == "in_a_meeting"  # private: busy only
    await parameter(lab, "DisplayCalendarPrivate", "Yes", "bob")
    seen = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert (seen["calendar"]["subject"], seen["calendar"]["location"], seen["calendar"]["private"]) == ("Comité de direction", "Salle 2", True)
    await parameter(lab, "DisplayCalendarSummary", "No", "bob")
    assert "subject" not in (await bob.get(f"/api/v1/users/{alice_id}/presence"))["calendar"]
    await parameter(lab, "AuthorizedCalendarPresences", "No", "bob")
    refused = await bob.get(f"/api/v1/users/{alice_id}/presence")
    assert refused["calendar"] is None and "AuthorizedCalendarPresences" in refused["calendar_hidden"]
    # A calendar provider's events count the same (what the Exchange and Google connectors write).
    from twpcore import calendars

    await lab.kernel.store.run(calendars.replace_events, lab.user_ids["carol"], "exchange",
                               [calendars.CalendarEvent(now - dt.timedelta(minutes=5), now + dt.timedelta(minutes=5), "Call", show_as="away")],
                               now - dt.timedelta(days=1), now + dt.timedelta(days=1))
    own = await lab.users["carol"].get("/api/v1/me/presence")
    assert own["calendar"]["state"] == "away" and own["shown"] == "away_in_calendar"
