"""Forward rules (admin guide 9.6, user guide 5.1.3-5.1.5) with real calls through the PBX simulator.

Simple rules become the PBX forwarding of the user's device (the simulator's forwarding
table), again after the link comes back; advanced rules are evaluated by TWP on each call
ringing a device and the call is deflected by the driver; the call log names the rule.
The guide's worked example "Renvoi au standard" is ``test_renvoi_au_standard``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from twp_csta.testing import EXTERNAL, renamed_driver, start_lab
from twpcore.testing.waiting import eventually

PARIS = dt.timezone(dt.timedelta(hours=2))
MARC = "0687654321"




@pytest.fixture
async def lab(twp_app: Any) -> Any:
    lab = await start_lab(twp_app, "csta_rules", plugins=renamed_driver("csta_rules"))
    try:
        yield lab
    finally:
        await lab.close()


async def parameter(lab: Any, name: str, value: str, login: str | None = None) -> None:
    """Set a parameter for the lab's domain, or for one user."""
    scope, scope_id = ("user", lab.user_ids[login]) if login else ("domain", lab.domain_id)
    answer = await lab.admin.call("POST", "/api/v1/parameter-values", {"name": name, "scope": scope, "scope_id": scope_id, "value": value})
    if lab.admin.last_status == 409:  # already set at this scope: change it
        listed = await lab.admin.get("/api/v1/parameter-values", params={"name": name})
        [row] = [v for v in listed["items"] if v["scope"] == scope and v["scope_id"] == scope_id]
        await lab.admin.patch(f"/api/v1/parameter-values/{row['id']}", {"value": value})
    else:
        assert lab.admin.last_status == 201, answer


async def grant_rules(lab: Any, login: str) -> None:
    await lab.admin.create("authorizations", object_type="application", object_ref="Rules", subject_type="user", subject_id=lab.user_ids[login])




async def logged(client: Any, n: int = 1) -> list[dict[str, Any]]:
    async def entries() -> list[dict[str, Any]] | None:
        body = await client.get("/api/v1/me/call-logs")
        return body["items"] if body["total"] >= n else None

    return await eventually(entries, f"{n} call-log entries")


RENVOI = {
    "name": "Renvoi au standard", "kind": "advanced", "forward": "no_answer", "target": "5020", "active": True,
    "conditions": {"presence": ["absent"], "days": ["mon", "tue", "wed", "fri"], "hours": {"from": "08:00", "to": "18:00"},
                   "date_from": "2013-06-03T07:45:00+02:00", "date_to": "2013-06-28T19:15:00+02:00", "timezone": "Europe/Paris",
                   "origin": "external"},
}


# -- the guide's worked example ---------------------------------------------------------------------

async def test_renvoi_au_standard(lab: Any) -> None:
    """User guide 5.1.4: absent, Mon-Tue-Wed-Fri 8:00-18:00, 3 June 7:45 to 28 June 2013 19:15, external calls including
    Marc ICKSEMELLE, on no answer, to the switchboard 5020."""
    alice = lab.users["alice"]
    await grant_rules(lab, "alice")
    await parameter(lab, "WAITTIMENOREPLY", "1")
    private = await lab.admin.create("directories", domain_id=lab.domain_id, name="[TwsPrivate]", connector="private", type="private")
    await lab.admin.create("authorizations", object_type="directory", object_ref=f"directory:{private['id']}", subject_type="user",
                           subject_id=lab.user_ids["alice"])
    marc = await alice.post("/api/v1/me/contacts", {"last_name": "ICKSEMELLE", "first_name": "Marc", "phone": MARC}, status=201)
    await lab.kernel.directories.refresh_visibility()
    await eventually(lambda: lab.kernel.directories.reverse_now(MARC, lab.domain_id, lab.user_ids["alice"]), "Marc known to the reverse lookup")
    rule = await alice.post("/api/v1/me/forward-rules", {**RENVOI, "conditions": {**RENVOI["conditions"],
                                                                                  "include": {"contacts": [marc["id"]]}}}, status=201)
    assert (rule["kind"], rule["forward"], rule["target"], rule["active"]) == ("advanced", "no_answer", "5020", True)
    await alice.put("/api/v1/me/presence", {"state": "absent"})

    tuesday = dt.datetime(2013, 6, 4, 10, 0, tzinfo=PARIS)
    why = await alice.post("/api/v1/me/forward-rules/explain", {"caller": MARC, "contact_id": marc["id"], "at": tuesday.isoformat()})
    assert why["fired"]["name"] == "Renvoi au standard" and why["then"].startswith("the call rings 1 s")
    assert {c["condition"]: c["ok"] for c in why["rules"][0]["checks"]} == {
        "presence": True, "dates": True, "days": True, "hours": True, "origin": True, "include": True}
    # Each condition on its own stops the rule, and the explanation names it.
    for change, failing in (({"at": "2013-06-06T10:00:00+02:00"}, "days"),          # a Thursday
                            ({"at": "2013-06-04T18:30:00+02:00"}, "hours"),
                            ({"at": "2013-07-02T10:00:00+02:00"}, "dates"),
                            ({"presence": "online"}, "presence"),
                            ({"caller": "0611111111", "contact_id": None}, "include"),
                            ({"internal": True}, "origin")):
        body = {k: v for k, v in {"caller": MARC, "contact_id": marc["id"], "at": tuesday.isoformat(), **change}.items() if v is not None}
        answer = await alice.post("/api/v1/me/forward-rules/explain", body)
        assert answer["fired"] is None, change
        assert [c["condition"] for c in answer["rules"][0]["checks"] if not c["ok"]] == [failing]

    # A real call from Marc on that Tuesday: it rings alice 1 s (WAITTIMENOREPLY), then the driver sends it to 5020.
    lab.kernel.rules.now = lambda: tuesday
    ws = await lab.ws("alice")
    call_id = await lab.sim.incoming_call(MARC, "201")
    await ws.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
    diverted = await ws.expect("call.diverted", call={"call_id": call_id}, timeout=5)
    assert diverted["cause"] == "forward rule: Renvoi au standard"
    assert "5020" in lab.sim.calls[call_id].connections
    [entry] = await logged(alice)
    assert (entry["outcome"], entry["outcome_to"], entry["cause"]) == ("forwarded", "5020", "forward rule: Renvoi au standard")
    [decision] = (await alice.get("/api/v1/me/forward-decisions", params={"call_id": call_id}))["items"]
    assert decision["rule"] == "Renvoi au standard" and decision["action"] == "forwarded" and decision["target"] == "5020"
    assert "rang 1 s unanswered" in decision["reason"]

    # Another outside caller is not included: the call keeps ringing alice.
    other = await lab.sim.incoming_call(EXTERNAL, "201")
    await ws.expect("call.delivered", call={"call_id": other})
    await asyncio.sleep(1.5)
    assert lab.sim.calls[other].connections.get("201") == "alerting"
    assert (await alice.get("/api/v1/me/forward-decisions", params={"call_id": other}))["items"] == []


# -- simple rules in the PBX ----------------------------------------------------------------------------

async def test_a_simple_rule_sets_the_pbx_forwarding_and_is_set_again_after_the_link_comes_back(lab: Any) -> None:
    alice = lab.users["alice"]
    rule = await alice.post("/api/v1/me/forward-rules", {"name": "To Bob", "forward": "immediate", "target": "202", "active": True}, status=201)
    assert rule["pbx"]["applied"] is True and rule["pbx"]["forwarding"] == {"immediate": "202"}
    assert lab.sim.devices["201"].forwarding == {"forwardImmediate": "202"}
    dnd = await alice.post("/api/v1/me/forward-rules", {"name": "Quiet", "forward": "dnd", "active": True}, status=201)
    assert lab.sim.devices["201"].dnd is True
    await alice.delete(f"/api/v1/me/forward-rules/{dnd['id']}")
    assert lab.sim.devices["201"].dnd is False

    # The PBX restarts and forgets the forwarding; when the link is back, TWP sets it again.
    admin = await lab.ws("admin")
    lab.sim.refuse_connections = True
    await lab.sim.drop_links()
    await admin.expect("link.down", link=lab.link)
    lab.sim.devices["201"].forwarding.clear()
    lab.sim.refuse_connections = False
    await admin.expect("link.up", link=lab.link, timeout=5)
    await eventually(lambda: lab.sim.devices["201"].forwarding == {"forwardImmediate": "202"}, "forwarding set again")

    # Deactivating the rule cancels what TWP set; a call then rings alice.
    await alice.patch(f"/api/v1/me/forward-rules/{rule['id']}", {"active": False})
    assert lab.sim.devices["201"].forwarding == {}


async def test_simple_rules_belong_to_a_profile_and_switching_profile_switches_the_pbx_forwarding(lab: Any) -> None:
    alice = lab.users["alice"]
    office = (await alice.get("/api/v1/me/profiles"))["items"][0]
    home = await alice.post("/api/v1/me/profiles", {"name": "Home", "device": "201", "device_kind": "home"}, status=201)
    await alice.post("/api/v1/me/forward-rules", {"name": "To mobile", "forward": "immediate", "target": "0612345678", "active": True,
                                                  "profile_id": home["id"]}, status=201)
    assert lab.sim.devices["201"].forwarding == {}  # Home is not the active profile
    switched = await alice.post(f"/api/v1/me/profiles/{home['id']}/activate")
    assert switched["active"] is True and switched["pbx"]["forwarding"] == {"immediate": "0612345678"}
    assert lab.sim.devices["201"].forwarding == {"forwardImmediate": "00612345678"}  # the domain's dialing plan adds the outside prefix
    await alice.post(f"/api/v1/me/profiles/{office['id']}/activate")
    assert lab.sim.devices["201"].forwarding == {}


# -- the Authorize* switches and the Rules parameters ----------------------------------------------------

async def test_the_authorize_switches_guard_rules_and_the_device_forwarding(lab: Any) -> None:
    alice, bob = lab.users["alice"], lab.users["bob"]
    await parameter(lab, "AuthorizeSimpleRules", "No", "alice")
    refused = await alice.call("POST", "/api/v1/me/forward-rules", {"name": "x", "forward": "immediate", "target": "202"}, status=403)
    assert "AuthorizeSimpleRules" in refused["detail"] and refused["field"] == "AuthorizeSimpleRules"
    refused = await alice.call("PUT", "/api/v1/devices/forwarding", {"type": "immediate", "number": "202"}, status=403)
    assert "AuthorizeSimpleRules" in refused["detail"]
    assert lab.sim.devices["201"].forwarding == {}

    await parameter(lab, "AuthorizedForwardTypeBusy", "No", "bob")
    refused = await bob.call("POST", "/api/v1/me/forward-rules", {"name": "x", "forward": "busy", "target": "203"}, status=403)
    assert "AuthorizedForwardTypeBusy" in refused["detail"]
    refused = await bob.call("PUT", "/api/v1/devices/forwarding", {"type": "busy", "number": "203"}, status=403)
    assert "AuthorizedForwardTypeBusy" in refused["detail"]
    await bob.put("/api/v1/devices/forwarding", {"type": "immediate", "number": "203"})  # the other types stay allowed
    await bob.put("/api/v1/devices/forwarding", {"type": "busy", "number": None})  # cancelling is no new forward

    refused = await bob.call("POST", "/api/v1/me/forward-rules", {"name": "x", "kind": "advanced", "forward": "immediate", "target": "203"},
                             status=403)
    assert "Rules application" in refused["detail"]
    await grant_rules(lab, "bob")
    await parameter(lab, "AuthorizedForwardPresenceAsbsent", "No", "bob")
    refused = await bob.call("POST", "/api/v1/me/forward-rules", {"name": "x", "kind": "advanced", "forward": "immediate", "target": "203",
                                                                  "conditions": {"presence": ["absent"]}}, status=403)
    assert "AuthorizedForwardPresenceAsbsent" in refused["detail"]
    await parameter(lab, "AuthorizedForwardOriginInternal", "No", "bob")
    refused = await bob.call("POST", "/api/v1/me/forward-rules", {"name": "x", "kind": "advanced", "forward": "immediate", "target": "203",
                                                                  "conditions": {"origin": "internal"}}, status=403)
    assert "AuthorizedForwardOriginInternal" in refused["detail"]

    await parameter(lab, "CreateOnlyRUL", "Yes")
    refused = await bob.call("POST", "/api/v1/me/forward-rules", {"name": "x", "forward": "immediate", "target": "203"}, status=403)
    assert "CreateOnlyRUL" in refused["detail"]
    refused = await bob.call("PUT", "/api/v1/devices/forwarding", {"type": "immediate", "number": "203"}, status=403)
    assert "CreateOnlyRUL" in refused["detail"]
    await bob.post("/api/v1/me/forward-rules", {"name": "ok", "kind": "advanced", "forward": "immediate", "target": "203"}, status=201)


async def test_bad_rules_are_refused_naming_the_field_and_the_fix(lab: Any) -> None:
    alice = lab.users["alice"]
    await grant_rules(lab, "alice")
    cases = [
        ({"name": "x", "forward": "immediate", "target": "12ab"}, "target", "such as 5020"),
        ({"name": "x", "forward": "dnd", "kind": "advanced"}, "forward", "only a simple rule"),
        ({"name": "x", "forward": "immediate", "target": "202", "conditions": {"days": ["mon"]}}, "conditions", "use kind advanced"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202", "conditions": {"days": ["monday"]}}, "conditions", "mon"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202", "conditions": {"date_from": "2013-06-03T07:45"}},
         "conditions", "no time zone"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202",
          "conditions": {"date_from": "2013-06-28T00:00:00Z", "date_to": "2013-06-03T00:00:00Z"}}, "conditions", "must be after"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202", "conditions": {"hours": {"from": "25:00", "to": "18:00"}}},
         "conditions", "HH:MM"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202", "conditions": {"timezone": "Mars/Olympus"}},
         "conditions", "IANA"),
        ({"name": "x", "kind": "advanced", "forward": "immediate", "target": "202", "conditions": {"include": {"lists": [999]}}},
         "conditions", "not one of your lists"),
    ]
    for body, field, hint in cases:
        answer = await alice.call("POST", "/api/v1/me/forward-rules", body)
        assert alice.last_status in (400, 404), (body, answer)
        assert answer["field"].startswith(field) and hint in answer["detail"], (body, answer)
    assert (await alice.get("/api/v1/me/forward-rules"))["items"] == []


async def test_circularlevel_refuses_a_loop_when_a_rule_is_saved(lab: Any) -> None:
    alice, bob = lab.users["alice"], lab.users["bob"]
    refused = await alice.call("POST", "/api/v1/me/forward-rules", {"name": "self", "forward": "immediate", "target": "201", "active": True},
                               status=409)
    assert "CIRCULARLEVEL is 2" in refused["detail"]
    await bob.post("/api/v1/me/forward-rules", {"name": "to alice", "forward": "no_answer", "target": "201", "active": True}, status=201)
    refused = await alice.call("POST", "/api/v1/me/forward-rules", {"name": "to bob", "forward": "immediate", "target": "202", "active": True},
                               status=409)
    assert "you → 202 → 201" in refused["detail"]
    # Level 1 only forbids forwarding to oneself (guide 9.6.2).
    await parameter(lab, "CIRCULARLEVEL", "1")
    await alice.post("/api/v1/me/forward-rules", {"name": "to bob", "forward": "busy", "target": "202", "active": True}, status=201)


async def test_circularlevel_at_call_time_stops_a_call_going_round(lab: Any) -> None:
    for login in ("alice", "bob"):
        await grant_rules(lab, login)
    await parameter(lab, "CIRCULARLEVEL", "0")  # saved without the check ...
    await lab.users["alice"].post("/api/v1/me/forward-rules", {"name": "to bob", "kind": "advanced", "forward": "immediate", "target": "202",
                                                               "active": True}, status=201)
    await lab.users["bob"].post("/api/v1/me/forward-rules", {"name": "to alice", "kind": "advanced", "forward": "immediate", "target": "201",
                                                             "active": True}, status=201)
    await parameter(lab, "CIRCULARLEVEL", "2")  # ... then the check is switched on: the call is stopped when it comes round
    lab.kernel.rules.forget()
    bob = await lab.ws("bob")
    call_id = await lab.sim.incoming_call(EXTERNAL, "201")
    await bob.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
    [decision] = await eventually(lambda: _decisions(lab.users["bob"], call_id), "bob's decision")
    assert decision["action"] == "refused" and "would loop" in decision["reason"] and "CIRCULARLEVEL 2" in decision["reason"]
    await asyncio.sleep(0.3)
    assert lab.sim.calls[call_id].connections.get("202") == "alerting"


async def _decisions(client: Any, call_id: str) -> list[dict[str, Any]]:
    return (await client.get("/api/v1/me/forward-decisions", params={"call_id": call_id}))["items"]


async def test_transferverification_sends_an_unanswered_forward_to_the_emergency_number(lab: Any) -> None:
    await grant_rules(lab, "alice")
    for name, value in (("TRANSFERVERIFICATION", "Yes"), ("EMERGENCYNUMBER", "202"), ("WAITTIMENOREPLY", "1")):
        await parameter(lab, name, value)
    await lab.users["alice"].post("/api/v1/me/forward-rules", {"name": "to carol", "kind": "advanced", "forward": "immediate", "target": "203",
                                                               "active": True}, status=201)
    carol, bob = await lab.ws("carol"), await lab.ws("bob")
    call_id = await lab.sim.incoming_call(EXTERNAL, "201")
    await carol.expect("call.delivered", call={"call_id": call_id})
    await bob.expect("call.delivered", call={"call_id": call_id}, timeout=5)  # carol let it ring 1 s
    reasons = [d["reason"] for d in await _decisions(lab.users["alice"], call_id)]
    assert any("TRANSFERVERIFICATION: 203 did not answer within 1 s" in r and "EMERGENCYNUMBER 202" in r for r in reasons)


async def test_rules_imposed_by_an_administrator(lab: Any) -> None:
    alice = lab.users["alice"]
    imposed = await lab.admin.post(f"/api/v1/users/{lab.user_ids['alice']}/forward-rules",
                                   {"name": "Night service", "forward": "no_answer", "target": "203", "active": True}, status=201)
    assert imposed["imposed"] is True and lab.sim.devices["201"].forwarding == {"forwardNoAns": "203"}
    mine = (await alice.get("/api/v1/me/forward-rules"))["items"]
    assert [(r["name"], r["imposed"]) for r in mine] == [("Night service", True)]
    refused = await alice.call("DELETE", f"/api/v1/me/forward-rules/{imposed['id']}", status=403)
    assert "imposed by an administrator" in refused["detail"]
    await alice.post("/api/v1/me/forward-rules", {"name": "mine", "forward": "busy", "target": "202"}, status=201)
    await parameter(lab, "IsUserAuthorizedToCreateWithAdminRules", "No", "alice")
    refused = await alice.call("POST", "/api/v1/me/forward-rules", {"name": "more", "forward": "busy", "target": "202"}, status=403)
    assert "IsUserAuthorizedToCreateWithAdminRules" in refused["detail"]
    await lab.admin.delete(f"/api/v1/users/{lab.user_ids['alice']}/forward-rules/{imposed['id']}")
    assert lab.sim.devices["201"].forwarding == {}
    await alice.post("/api/v1/me/forward-rules", {"name": "more", "forward": "busy", "target": "202"}, status=201)
