"""The 34 Authorize* switches of guide 9.1.8, walked on and off for one user.

Every switch is returned to clients by ``GET /api/v1/me/features`` with its value and
whether the server or only a desktop client enforces it.  For each switch the server
enforces on an endpoint of this tree, the walk also checks what the user observes there:
refused (403, naming the parameter) when off, served when on.  The switches of features
built elsewhere are walked by their own tests: forward rules and presence (issue 18),
chat and notes (issue 19 item 6), e-mail alerts (``tests/test_mail_alerts.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from test_reception_kit import bosses_group, intercom_with_book, lab_of, set_parameter

from twp_csta.testing import EXTERNAL
from twpcore.reception.switches import CLIENT, GROUP_SWITCHES, SERVER, SWITCHES
from twpcore.testing.waiting import eventually

names = itertools.count(1)
RINGING: dict[str, str] = {}
"""The call ringing at Bob's device during the walk."""


async def interception(lab: Any, on: bool) -> None:
    # The driver has no directed pickup: a permitted request gets as far as the driver (501), a refused one stops at 403.
    answer = await lab.users["alice"].call("POST", f"/api/v1/calls/{RINGING['call']}/pickup", {"device": "202"}, status=501 if on else 403)
    assert ("AuthorizeInterception" in answer["detail"]) is (not on)


async def supervision(lab: Any, on: bool) -> None:
    bosses = (await lab.users["alice"].get("/api/v1/me/bosses"))["items"]
    assert [(b["login"], b["calls"]) for b in bosses if b["calls"]] == ([("bob", True)] if on else [])
    if on:
        assert [c["call_id"] for c in bosses[0]["devices"][0]["calls"]] == [RINGING["call"]]


async def share_rules(lab: Any, on: bool) -> None:
    bosses = (await lab.users["alice"].get("/api/v1/me/bosses"))["items"]
    assert [b["login"] for b in bosses if b["forwarding"]] == (["bob"] if on else [])
    assert all(("forwarding" in d) is b["forwarding"] for b in bosses for d in b["devices"])


async def contact_favorite(lab: Any, on: bool) -> None:
    answer = await lab.users["alice"].call("POST", "/api/v1/me/contacts", {"last_name": f"Martin {next(names)}"}, status=201 if on else 403)
    if not on:
        assert "AuthorizeContactFavorite" in answer["detail"]


async def public_list(lab: Any, on: bool) -> None:
    answer = await lab.users["alice"].call("POST", "/api/v1/me/lists", {"name": f"List {next(names)}", "public": True},
                                          status=201 if on else 403)
    if not on:
        assert "AuthorizePublicList" in answer["detail"]


async def sms(lab: Any, on: bool) -> None:
    answer = await lab.users["alice"].call("POST", "/api/v1/sms", {"number": "+33612345678", "text": "hello"})
    refused = lab.users["alice"].last_status == 403 and "AuthorizeSms" in answer["detail"]
    assert refused is (not on), answer


ENFORCED_HERE: dict[str, Callable[[Any, bool], Awaitable[None]]] = {
    "AuthorizeInterception": interception,
    "AuthorizeSupervisionInformation": supervision,
    "AuthorizeShareRulesGroup": share_rules,
    "AuthorizeContactFavorite": contact_favorite,
    "AuthorizePublicList": public_list,
    "AuthorizeSms": sms,
}


def test_the_table_holds_the_guides_34_switches_once_each():
    assert len(SWITCHES) == 34 and len({s.name for s in SWITCHES}) == 34
    assert {s.enforced for s in SWITCHES} == {SERVER, CLIENT}
    assert set(ENFORCED_HERE) <= {s.name for s in SWITCHES if s.enforced == SERVER}


async def test_each_switch_on_and_off(twp_app):
    lab = await lab_of(twp_app, "csta_no_pickup")
    try:
        await bosses_group(lab, "Patrons", "bob")
        await intercom_with_book(lab, "Intercom Hotline", ("201", "202"), ("alice",), [])
        private = await lab.admin.create("directories", domain_id=lab.domain_id, name="[TwsPrivate]", connector="private", type="private")
        await lab.admin.create("authorizations", object_type="directory", object_ref=f"directory:{private['id']}", subject_type="user",
                               subject_id=lab.user_ids["alice"])
        RINGING["call"] = await lab.sim.incoming_call(EXTERNAL, "202")
        await lab.wait_calls("bob", lambda items: [c["state"] for c in items] == ["alerting"])
        for switch in SWITCHES:
            for on in (False, True, False):
                value = ("Patrons" if on else "") if switch.name in GROUP_SWITCHES else ("Yes" if on else "No")
                await set_parameter(lab, switch.name, value, user="alice")
                features = {f["name"]: f for f in (await lab.users["alice"].get("/api/v1/me/features"))["items"]}
                shown = features[switch.name]
                source = "user" if value else "built-in"  # a group switch is off without a value: the built-in empty one
                assert (shown["allowed"], shown["value"], shown["from"], shown["enforced"]) == (on, value, source, switch.enforced), switch
                check = ENFORCED_HERE.get(switch.name)
                if check is not None:
                    await check(lab, on)
            await set_parameter(lab, switch.name, "Yes" if switch.name not in GROUP_SWITCHES else "", user="alice")
        assert len(features) == 34
    finally:
        await lab.close()


async def test_the_live_supervision_events_follow_the_switch(twp_app):
    lab = await lab_of(twp_app)
    try:
        await bosses_group(lab, "Patrons", "bob")
        await set_parameter(lab, "AuthorizeSupervisionInformation", "Patrons", user="alice")
        reception = lab.kernel.reception
        await eventually(lambda: lab.user_ids["alice"] in reception.secretaries.get(lab.user_ids["bob"], ()), "alice sees bob's calls")
        alice = await lab.ws("alice")
        first = await lab.sim.incoming_call(EXTERNAL, "202")
        await alice.expect("supervision.call", call_id=first)
        lab.sim.hang_up(EXTERNAL, first)
        await set_parameter(lab, "AuthorizeSupervisionInformation", "", user="alice")
        await eventually(lambda: lab.user_ids["bob"] not in reception.secretaries, "nobody sees bob's calls")
        mark = alice.mark()
        second = await lab.sim.incoming_call(EXTERNAL, "202")
        await lab.wait_calls("bob", lambda items: [c["call_id"] for c in items] == [second])
        await alice.expect_no("supervision.call", within=0.2, after=mark, call_id=second)
    finally:
        await lab.close()
