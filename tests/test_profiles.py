"""Profiles (user guide 5.1.1, 5.1.2): named, with a current device, one active, switched by the user or by a schedule.

A schedule switching a profile also sets the presence it names and applies the profile's
simple rules in the PBX (the simulator's forwarding table shows it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from twp_csta.testing import renamed_driver, start_lab

PARIS = dt.timezone(dt.timedelta(hours=1))




@pytest.fixture
async def lab(twp_app: Any) -> Any:
    lab = await start_lab(twp_app, "csta_profiles", plugins=renamed_driver("csta_profiles"))
    try:
        yield lab
    finally:
        await lab.close()


async def parameter(lab: Any, name: str, value: str, login: str) -> None:
    await lab.admin.create("parameter_values", name=name, scope="user", scope_id=lab.user_ids[login], value=value)


async def test_profiles_one_active_at_a_time(lab: Any) -> None:
    alice = lab.users["alice"]
    [office] = (await alice.get("/api/v1/me/profiles"))["items"]
    assert (office["name"], office["device"], office["device_kind"], office["active"]) == ("Office", "201", "office", True)
    mobile = await alice.post("/api/v1/me/profiles", {"name": "Mobile", "device": "06 12 34 56 78", "device_kind": "mobile"}, status=201)
    assert (mobile["device"], mobile["active"]) == ("0612345678", False)
    await alice.post(f"/api/v1/me/profiles/{mobile['id']}/activate")
    listed = {p["name"]: p["active"] for p in (await alice.get("/api/v1/me/profiles"))["items"]}
    assert listed == {"Office": False, "Mobile": True}
    refused = await alice.call("DELETE", f"/api/v1/me/profiles/{mobile['id']}", status=409)
    assert "active one" in refused["detail"]
    await alice.delete(f"/api/v1/me/profiles/{office['id']}")
    clash = await alice.call("POST", "/api/v1/me/profiles", {"name": "Mobile"}, status=409)
    assert clash["field"] == "name"
    # Another user's profile does not exist for alice.
    bobs = (await lab.users["bob"].get("/api/v1/me/profiles"))["items"][0]
    await alice.call("POST", f"/api/v1/me/profiles/{bobs['id']}/activate", status=404)


async def test_creating_profiles_and_current_devices_follows_the_switches(lab: Any) -> None:
    alice = lab.users["alice"]
    await parameter(lab, "AuthorizedCurrentDevice", "No", "alice")
    refused = await alice.call("POST", "/api/v1/me/profiles", {"name": "Home", "device": "0140000000"}, status=403)
    assert "AuthorizedCurrentDevice" in refused["detail"]
    await alice.post("/api/v1/me/profiles", {"name": "Desk", "device": "201"}, status=201)  # one of her own devices
    await parameter(lab, "AuthorizedCreateProfil", "No", "alice")
    refused = await alice.call("POST", "/api/v1/me/profiles", {"name": "Other"}, status=403)
    assert "AuthorizedCreateProfil" in refused["detail"]


async def test_a_schedule_switches_the_profile_sets_presence_and_applies_its_simple_rules(lab: Any) -> None:
    alice = lab.users["alice"]
    meeting = await alice.post("/api/v1/me/profiles", {
        "name": "Réunion hebdo", "presence": "busy",
        "schedule": {"days": ["mon"], "from": "09:00", "to": "10:00", "timezone": "Europe/Paris"}}, status=201)
    await alice.post("/api/v1/me/forward-rules", {"name": "To Bob", "forward": "immediate", "target": "202", "active": True,
                                                  "profile_id": meeting["id"]}, status=201)
    bad = await alice.call("POST", "/api/v1/me/profiles", {"name": "x", "schedule": {"from": "9h", "to": "10:00"}}, status=400)
    assert "HH:MM" in bad["detail"]
    presence = lab.kernel.presence
    sunday = dt.datetime(2026, 12, 6, 9, 30, tzinfo=PARIS)
    assert await presence.apply_schedules(sunday) == []
    monday = dt.datetime(2026, 12, 7, 9, 5, tzinfo=PARIS)
    assert await presence.apply_schedules(monday) == [(lab.user_ids["alice"], meeting["id"])]
    active = [p["name"] for p in (await alice.get("/api/v1/me/profiles"))["items"] if p["active"]]
    assert active == ["Réunion hebdo"]
    seen = await alice.get("/api/v1/me/presence")
    assert (seen["twp"]["state"], seen["twp"]["source"]) == ("busy", "profile")
    assert lab.sim.devices["201"].forwarding == {"forwardImmediate": "202"}
    # Within the same window the schedule does not switch again: the user's own choice stands.
    office = next(p for p in (await alice.get("/api/v1/me/profiles"))["items"] if p["name"] == "Office")
    await alice.post(f"/api/v1/me/profiles/{office['id']}/activate")
    assert await presence.apply_schedules(monday + dt.timedelta(minutes=10)) == []
    assert lab.sim.devices["201"].forwarding == {}
