"""Call logs, statistics and recordings (guide 7.4, 7.4.6, 9.4, 10.2.1) with real calls through the PBX simulator.

Calls are placed on a simulated switch behind the kernel's CSTA XML driver; what the
users then read through ``/api/v1/me/call-logs``, ``/statistics`` and ``/records`` is
checked, with the rights of guide 7.4: call-log grants (on a user or its groups), the
reverse rule of statistics and records, other companies answering 404.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa

from twp_csta.testing import EXTERNAL, DriverConformance, renamed_driver, start_lab, user_client
from twpcore.store import schema as t
from twpcore.testing.call_logs import wait_call_log as logged

UTC = dt.UTC
BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)


PLUGINS = renamed_driver("csta_call_log")


async def lab_of(twp_app: Any) -> Any:
    return await start_lab(twp_app, "csta_call_log", plugins=PLUGINS)


async def settled(lab: Any) -> None:
    """Every entry noted so far is written."""
    await lab.kernel.telephony.call_logs.flush()


async def hang_up_and_wait(lab: Any, party: str, call_id: str, login: str) -> None:
    ws = await lab.ws(login)
    mark = ws.mark()
    lab.sim.hang_up(party, call_id)
    await ws.expect("call.cleared", after=mark, call={"call_id": call_id})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def log_row(
    lab: Any,
    login: str,
    started: str,
    *,
    direction: str = "incoming",
    internal: bool = False,
    answered: float | None = None,
    length: float = 0.0,
    outcome: str | None = None,
    number: str = EXTERNAL,
    ended_after: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A call-log row as the recorder writes it, with known times (``answered`` and ``length`` in seconds)."""
    start = at(started)
    answered_at = start + dt.timedelta(seconds=answered) if answered is not None else None
    ended = (answered_at + dt.timedelta(seconds=length)) if answered_at else start + dt.timedelta(seconds=ended_after or 30)
    return {"company_id": lab.company_id, "domain_id": lab.domain_id, "user_id": lab.user_ids[login], "device": lab.numbers[login],
            "call_id": f"k{started}", "direction": direction, "internal": internal, "remote_number": number,
            "remote_canonical": "+33612345678" if number == EXTERNAL else f"internal:{number}",
            "started_at": start, "answered_at": answered_at, "ended_at": ended, "duration": length if answered_at else 0.0,
            "outcome": outcome or ("answered" if answered_at else ("missed" if direction == "incoming" else "unanswered")), **extra}


def insert_rows(lab: Any, rows: list[dict[str, Any]]) -> list[int]:
    return lab.server.run(lambda c: [c.execute(sa.insert(t.call_logs).values(**r).returning(t.call_logs.c.id)).scalar_one() for r in rows])


async def grant(lab: Any, object_type: str, object_ref: str, subject_type: str, subject_id: int) -> dict[str, Any]:
    return await lab.admin.create("authorizations", object_type=object_type, object_ref=object_ref, subject_type=subject_type, subject_id=subject_id)


async def group_of(lab: Any, name: str, *logins: str) -> int:
    group = await lab.admin.create("groups", domain_id=lab.domain_id, name=name)
    for login in logins:
        await lab.admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": lab.user_ids[login]}, status=204)
    return group["id"]


# -- what is recorded --------------------------------------------------------------------------
async def test_an_answered_incoming_call_is_logged_for_the_user_who_took_it(twp_app):
    lab = await lab_of(twp_app)
    try:
        await lab.ws("bob")
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await asyncio.sleep(0.2)
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        body = await logged(lab.users["alice"], 1)
        [entry] = body["items"]
        assert {k: entry[k] for k in ("device", "call_id", "direction", "internal", "number", "canonical_number", "outcome", "outcome_to")} == {
            "device": "201", "call_id": call_id, "direction": "incoming", "internal": False, "number": EXTERNAL,
            "canonical_number": "+33612345678", "outcome": "answered", "outcome_to": None}
        started, answered, ended = (dt.datetime.fromisoformat(entry[k]) for k in ("started_at", "answered_at", "ended_at"))
        assert started <= answered < ended
        assert entry["duration"] >= 0.2 and abs(entry["duration"] - (ended - answered).total_seconds()) < 0.01
        await settled(lab)
        assert (await lab.users["bob"].get("/api/v1/me/call-logs"))["items"] == []  # bob took no part in the call
    finally:
        await lab.close()


async def test_a_missed_call_and_a_busy_outgoing_call(twp_app):
    lab = await lab_of(twp_app)
    try:
        alice = await lab.ws("alice")
        missed = await lab.sim.incoming_call("0388123456", "201")
        await alice.expect("call.delivered", call={"call_id": missed})
        await hang_up_and_wait(lab, "0388123456", missed, "alice")  # the caller gives up
        lab.sim.busy("00155171889")
        busy = (await lab.users["alice"].post("/api/v1/calls", {"number": "01 55 17 18 89"}, status=201))["call_id"]
        await alice.expect("call.failed", call={"call_id": busy})
        body = await logged(lab.users["alice"], 2)
        by_call = {e["call_id"]: e for e in body["items"]}
        assert (by_call[missed]["direction"], by_call[missed]["outcome"], by_call[missed]["answered_at"], by_call[missed]["duration"]) == (
            "incoming", "missed", None, 0.0)
        assert (by_call[busy]["direction"], by_call[busy]["outcome"], by_call[busy]["number"], by_call[busy]["canonical_number"]) == (
            "outgoing", "busy", "00155171889", "+33155171889")
        only_missed = await lab.users["alice"].get("/api/v1/me/call-logs", params={"missed": "true"})
        assert [e["call_id"] for e in only_missed["items"]] == [missed]
    finally:
        await lab.close()


async def test_an_outgoing_call_answered_outside(twp_app):
    lab = await lab_of(twp_app)
    try:
        alice = await lab.ws("alice")
        lab.sim.auto_answer("00155171889")
        made = await lab.users["alice"].post("/api/v1/calls", {"number": "01 55 17 18 89"}, status=201)
        await alice.expect("call.established", call={"call_id": made["call_id"]})
        await lab.users["alice"].post(f"/api/v1/calls/{made['call_id']}/hangup", status=204)
        [entry] = (await logged(lab.users["alice"], 1))["items"]
        assert (entry["direction"], entry["internal"], entry["number"], entry["canonical_number"], entry["outcome"]) == (
            "outgoing", False, "00155171889", "+33155171889", "answered")
        assert entry["answered_at"] is not None
    finally:
        await lab.close()


async def test_an_internal_call_gives_one_entry_to_each_supervised_user(twp_app):
    lab = await lab_of(twp_app)
    try:
        bob = await lab.ws("bob")
        made = await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
        await bob.expect("call.delivered", call={"call_id": made["call_id"]})
        await lab.users["bob"].post(f"/api/v1/calls/{made['call_id']}/answer", status=204)
        await bob.expect("call.established", call={"call_id": made["call_id"]})
        await hang_up_and_wait(lab, "201", made["call_id"], "bob")
        [mine] = (await logged(lab.users["alice"], 1))["items"]
        [theirs] = (await logged(lab.users["bob"], 1))["items"]
        assert (mine["direction"], mine["internal"], mine["number"], mine["name"], mine["outcome"]) == ("outgoing", True, "202", "bob", "answered")
        assert (theirs["direction"], theirs["internal"], theirs["number"], theirs["name"], theirs["outcome"]) == (
            "incoming",
            True,
            "201",
            "alice",
            "answered",
        )
        assert mine["call_id"] == theirs["call_id"] == made["call_id"] and mine["id"] != theirs["id"]
        await settled(lab)
        assert (await lab.users["carol"].get("/api/v1/me/call-logs"))["total"] == 0
    finally:
        await lab.close()


async def test_a_forwarded_call_says_where_it_went(twp_app):
    lab = await lab_of(twp_app)
    try:
        carol = await lab.ws("carol")
        lab.sim.set_forwarding("202", "forwardImmediate", "203")
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        await carol.expect("call.delivered", call={"call_id": call_id})
        await hang_up_and_wait(lab, EXTERNAL, call_id, "carol")
        [bob] = (await logged(lab.users["bob"], 1))["items"]
        [rang] = (await logged(lab.users["carol"], 1))["items"]
        assert (bob["direction"], bob["outcome"], bob["outcome_to"], bob["number"]) == ("incoming", "forwarded", "203", EXTERNAL)
        assert (rang["direction"], rang["outcome"], rang["number"]) == ("incoming", "missed", EXTERNAL)
    finally:
        await lab.close()


async def test_a_transferred_call_says_to_whom(twp_app):
    lab = await lab_of(twp_app)
    try:
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        consult = await DriverConformance.consulted(lab, call_id, "alice", "bob")
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/transfer", {"other_call_id": consult}, status=204)
        body = await logged(lab.users["alice"], 2)
        by_call = {e["call_id"]: e for e in body["items"]}
        assert (by_call[call_id]["direction"], by_call[call_id]["outcome"], by_call[call_id]["outcome_to"]) == ("incoming", "transferred", "202")
        assert (by_call[consult]["direction"], by_call[consult]["outcome"], by_call[consult]["outcome_to"]) == ("outgoing", "transferred", EXTERNAL)
        await settled(lab)
        assert (await lab.users["bob"].get("/api/v1/me/call-logs"))["total"] == 0  # bob is still talking to the caller
    finally:
        await lab.close()


async def test_the_other_party_is_named_from_the_directories_the_user_may_see(twp_app):
    lab = await lab_of(twp_app)
    try:
        private = await lab.admin.create("directories", domain_id=lab.domain_id, name="[TwsPrivate]", connector="private", type="private")
        await grant(lab, "directory", f"directory:{private['id']}", "user", lab.user_ids["alice"])
        await lab.users["alice"].post("/api/v1/me/contacts", {"last_name": "Dupont", "first_name": "Jean", "phone": "06 12 34 56 78"}, status=201)
        directories = lab.kernel.directories
        await directories.refresh_visibility()
        deadline = time.monotonic() + 5
        while directories.reverse_now(EXTERNAL, lab.domain_id, lab.user_ids["alice"]) is None:
            assert time.monotonic() < deadline, "alice's private contact never became visible to the reverse lookup"
            await asyncio.sleep(0.05)
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        [entry] = (await logged(lab.users["alice"], 1))["items"]
        assert entry["name"] == "Jean Dupont" and entry["number"] == EXTERNAL
        found = await lab.users["alice"].get("/api/v1/me/call-logs", params={"q": "dupont"})
        assert [e["id"] for e in found["items"]] == [entry["id"]]
    finally:
        await lab.close()


# -- reading the log ----------------------------------------------------------------------------
@BOTH
async def test_filters_and_paging_of_the_call_log(twp_app):
    lab = await lab_of(twp_app)
    try:
        bob = await lab.ws("bob")
        answered = await DriverConformance.incoming_answered(lab, "alice")
        await hang_up_and_wait(lab, EXTERNAL, answered, "alice")
        missed = await lab.sim.incoming_call("0388123456", "201")
        await (await lab.ws("alice")).expect("call.delivered", call={"call_id": missed})
        await hang_up_and_wait(lab, "0388123456", missed, "alice")
        internal = (await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201))["call_id"]
        await bob.expect("call.delivered", call={"call_id": internal})
        lab.sim.answer("202", internal)
        await bob.expect("call.established", call={"call_id": internal})
        await hang_up_and_wait(lab, "202", internal, "alice")
        alice = lab.users["alice"]
        everything = await logged(alice, 3)
        assert [e["call_id"] for e in everything["items"]] == [internal, missed, answered]  # newest first

        async def ids(**params: str) -> list[str]:
            return [e["call_id"] for e in (await alice.get("/api/v1/me/call-logs", params=params))["items"]]

        assert await ids(direction="incoming") == [missed, answered]
        assert await ids(direction="outgoing") == [internal]
        assert await ids(direction="internal") == [internal]
        assert await ids(direction="external") == [missed, answered]
        assert await ids(missed="true") == [missed]
        assert await ids(q="0388") == [missed]
        assert await ids(q="+3361234") == [answered]  # the canonical form matches too
        assert await ids(q="BOB") == [internal]  # the internal party's name
        assert await ids(q="nobody") == []
        today = dt.datetime.now(UTC).date()
        assert len(await ids(**{"from": today.isoformat(), "to": today.isoformat()})) == 3
        assert await ids(to=(today - dt.timedelta(days=1)).isoformat()) == []
        later = (dt.datetime.now(UTC) + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=1)))
        assert await ids(**{"from": later.isoformat()}) == []  # an offset is honoured
        first = await alice.get("/api/v1/me/call-logs", params={"limit": "2"})
        second = await alice.get("/api/v1/me/call-logs", params={"limit": "2", "offset": "2"})
        assert [e["call_id"] for e in first["items"] + second["items"]] == [internal, missed, answered] and first["total"] == 3
        for params, field in (({"direction": "sideways"}, "direction"), ({"from": "yesterday"}, "from"), ({"limit": "0"}, "limit"),
                              ({"missed": "maybe"}, "missed"), ({"from": "2026-11-22", "to": "2026-11-01"}, "to")):
            answer = await alice.get("/api/v1/me/call-logs", params=params, status=400)
            assert answer["field"] == field, answer
    finally:
        await lab.close()


async def test_deleting_an_entry_takes_it_out_of_the_log_but_statistics_keep_it(twp_app):
    lab = await lab_of(twp_app)
    try:
        await grant(lab, "application", "Stats", "user", lab.user_ids["alice"])
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        [entry] = (await logged(lab.users["alice"], 1))["items"]
        await lab.users["bob"].delete(f"/api/v1/me/call-logs/{entry['id']}", status=404)  # not bob's
        await lab.users["alice"].delete(f"/api/v1/me/call-logs/{entry['id']}", status=204)
        await lab.users["alice"].delete(f"/api/v1/me/call-logs/{entry['id']}", status=404)
        assert (await lab.users["alice"].get("/api/v1/me/call-logs"))["total"] == 0
        assert (await lab.users["alice"].get("/api/v1/me/statistics"))["totals"]["calls"] == 1
    finally:
        await lab.close()


@BOTH
async def test_retention_follows_the_domain_parameters(twp_app):
    lab = await lab_of(twp_app)
    try:
        recorder = lab.kernel.telephony.call_logs
        scheduled = {task.get_name() for task in recorder._tasks if not task.done()}
        assert {"call-log-purge", "statistics-purge"} <= scheduled  # both daily purges (10.2.1 and 10.2.2) are scheduled
        await grant(lab, "application", "Stats", "user", lab.user_ids["alice"])
        await lab.admin.create("parameter_values", name="CallLog-NumberDaysOfStorage", scope="domain", scope_id=lab.domain_id, value="2")
        await lab.admin.create("parameter_values", name="Stats-NumberDaysOfStorage", scope="domain", scope_id=lab.domain_id, value="10")
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        await logged(lab.users["alice"], 1)
        day = 86400
        assert await recorder.purge(time.time() + day) == {"left_log": 0, "left_stats": 0, "deleted": 0}
        assert (await lab.users["alice"].get("/api/v1/me/call-logs"))["total"] == 1
        assert await recorder.purge(time.time() + 3 * day) == {"left_log": 1, "left_stats": 0, "deleted": 0}
        assert (await lab.users["alice"].get("/api/v1/me/call-logs"))["total"] == 0
        assert (await lab.users["alice"].get("/api/v1/me/statistics"))["totals"]["calls"] == 1
        # Each daily run applies its own rules: the call-log run leaves the statistics alone...
        assert await recorder.purge(time.time() + 11 * day, parts=("log",)) == {"left_log": 0, "left_stats": 0, "deleted": 0}
        assert (await lab.users["alice"].get("/api/v1/me/statistics"))["totals"]["calls"] == 1
        # ...and the statistics run takes the entry out of them, and deletes it, now in neither.
        assert await recorder.purge(time.time() + 11 * day, parts=("stats",)) == {"left_log": 0, "left_stats": 1, "deleted": 1}
        assert lab.server.run(lambda c: c.execute(sa.select(sa.func.count()).select_from(t.call_logs)).scalar_one()) == 0
    finally:
        await lab.close()


@BOTH
async def test_after_a_day_the_log_keeps_the_newest_calls_of_each_type(twp_app):
    lab = await lab_of(twp_app)
    try:
        await lab.admin.create("parameter_values", name="CallLog-NumberMaxOfStorage", scope="domain", scope_id=lab.domain_id, value="1")
        now = dt.datetime.now(UTC).replace(microsecond=0)

        def ago(**delta: float) -> str:
            return (now - dt.timedelta(**delta)).replace(tzinfo=None).isoformat()

        ids = insert_rows(lab, [
            log_row(lab, "alice", ago(days=5)), log_row(lab, "alice", ago(days=4)), log_row(lab, "alice", ago(days=3)),  # missed
            log_row(lab, "alice", ago(hours=1)),  # missed today: a day has not passed
            log_row(lab, "alice", ago(days=5, hours=1), answered=2, length=10), log_row(lab, "alice", ago(days=4, hours=1), answered=2, length=10),
            log_row(lab, "alice", ago(days=3, hours=1), direction="outgoing", answered=2, length=10),
            log_row(lab, "bob", ago(days=5)), log_row(lab, "bob", ago(days=4)),
        ])
        counts = await lab.kernel.telephony.call_logs.purge()
        assert counts == {"left_log": 5, "left_stats": 0, "deleted": 0}  # 3 missed and 1 incoming of alice, 1 missed of bob
        kept = [e["id"] for e in (await lab.users["alice"].get("/api/v1/me/call-logs"))["items"]]
        assert sorted(kept) == sorted([ids[3], ids[5], ids[6]])  # newest missed, newest incoming, the outgoing
        assert [e["id"] for e in (await lab.users["bob"].get("/api/v1/me/call-logs"))["items"]] == [ids[8]]
        stats = await lab.admin.get(f"/api/v1/users/{lab.user_ids['alice']}/statistics", params={"from": ago(days=6)[:10]})
        assert stats["totals"]["calls"] == 7  # statistics keep every call
    finally:
        await lab.close()


# -- statistics ---------------------------------------------------------------------------------
@BOTH
async def test_statistics_math_on_known_calls(twp_app):
    lab = await lab_of(twp_app)
    try:
        await grant(lab, "application", "Stats", "user", lab.user_ids["alice"])
        insert_rows(lab, [
            log_row(lab, "alice", "2026-11-20T09:00:00", answered=10, length=120),
            log_row(lab, "alice", "2026-11-20T09:30:00"),  # missed
            log_row(lab, "alice", "2026-11-20T10:15:00", direction="outgoing", internal=True, number="202", answered=5, length=60),
            log_row(lab, "alice", "2026-11-21T08:00:00", internal=True, number="203", answered=20, length=300),
            log_row(lab, "alice", "2026-11-21T08:10:00", direction="outgoing", outcome="busy", ended_after=2),
            log_row(lab, "alice", "2026-11-21T09:00:00", answered=1, length=999, in_stats=False),  # past Stats-NumberDaysOfStorage
            log_row(lab, "alice", "2026-11-22T09:00:00", answered=1, length=999),  # after the window
            log_row(lab, "bob", "2026-11-20T09:00:00", answered=1, length=999),  # someone else's
            log_row(lab, "alice", "2026-11-19T23:30:00"),  # before the window in UTC, 00:30 on the 20th in Paris
        ])
        body = await lab.users["alice"].get("/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-21", "group_by": "day"})
        assert body["totals"] == {"calls": 5, "incoming": 3, "outgoing": 2, "internal": 2, "external": 3, "answered": 3, "missed": 1,
                                  "total_duration": 480.0, "mean_duration": 160.0, "mean_time_to_answer": 15.0}
        assert [
            (p["period"], p["calls"], p["incoming"], p["outgoing"], p["missed"], p["total_duration"], p["mean_duration"], p["mean_time_to_answer"])
            for p in body["periods"]
        ] == [("2026-11-20", 3, 2, 1, 1, 180.0, 90.0, 10.0), ("2026-11-21", 2, 1, 1, 0, 300.0, 300.0, 20.0)]
        hours = await lab.users["alice"].get("/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-20", "group_by": "hour"})
        assert [(p["period"], p["calls"]) for p in hours["periods"]] == [("2026-11-20T09:00Z", 2), ("2026-11-20T10:00Z", 1)]
        week = await lab.users["alice"].get("/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-21", "group_by": "weekday"})
        assert [(p["period"], p["calls"]) for p in week["periods"]] == [("Friday", 3), ("Saturday", 2)]
        # In the reader's time zone: dates are its midnights, periods its days and hours (UTC+1 in November).
        paris = await lab.users["alice"].get(
            "/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-21", "group_by": "day", "tz": "Europe/Paris"}
        )
        assert paris["timezone"] == "Europe/Paris" and paris["from"] == "2026-11-19T23:00:00+00:00"
        assert [(p["period"], p["calls"]) for p in paris["periods"]] == [("2026-11-20", 4), ("2026-11-21", 2)]
        paris_hours = await lab.users["alice"].get(
            "/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-20", "group_by": "hour", "tz": "Europe/Paris"}
        )
        assert [(p["period"], p["calls"]) for p in paris_hours["periods"]] == [
            ("2026-11-20T00:00+01:00", 1), ("2026-11-20T10:00+01:00", 2), ("2026-11-20T11:00+01:00", 1)]
        unknown = await lab.users["alice"].get("/api/v1/me/statistics", params={"tz": "Mars/Olympus"}, status=400)
        assert unknown["field"] == "tz" and "Europe/Paris" in unknown["detail"]
        # "Europe" names a folder of the time-zone database, not a zone: a 400 too, not a 500.
        folder = await lab.users["alice"].get("/api/v1/me/statistics", params={"tz": "Europe"}, status=400)
        assert folder["field"] == "tz"

        async def calls(**params: str) -> int:
            body = await lab.users["alice"].get("/api/v1/me/statistics", params={"from": "2026-11-20", "to": "2026-11-21", **params})
            return body["totals"]["calls"]

        assert (await calls(direction="internal"), await calls(direction="external"), await calls(direction="outgoing")) == (2, 3, 2)
        assert await calls(number="06 12 34 56 78") == 3  # one correspondent, however the number is written
        assert await calls(number="+33 6 12 34 56 78", direction="incoming") == 2
        assert await calls(number="203") == 1
        await lab.users["alice"].get("/api/v1/me/statistics", params={"number": "nobody"}, status=400)
        empty = await lab.users["alice"].get("/api/v1/me/statistics", params={"from": "2026-01-01", "to": "2026-01-31"})
        assert empty["totals"]["calls"] == 0 and empty["totals"]["mean_duration"] is None and "periods" not in empty
        bad = await lab.users["alice"].get("/api/v1/me/statistics", params={"group_by": "fortnight"}, status=400)
        assert bad["field"] == "group_by" and "hour, day" in bad["detail"]
    finally:
        await lab.close()


async def test_statistics_of_real_calls_count_what_happened(twp_app):
    lab = await lab_of(twp_app)
    try:
        await grant(lab, "application", "Stats", "user", lab.user_ids["alice"])
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await asyncio.sleep(0.3)
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        missed = await lab.sim.incoming_call("0388123456", "201")
        await (await lab.ws("alice")).expect("call.delivered", call={"call_id": missed})
        await hang_up_and_wait(lab, "0388123456", missed, "alice")
        await logged(lab.users["alice"], 2)
        totals = (await lab.users["alice"].get("/api/v1/me/statistics"))["totals"]
        assert {k: totals[k] for k in ("calls", "incoming", "outgoing", "answered", "missed", "external")} == {
            "calls": 2, "incoming": 2, "outgoing": 0, "answered": 1, "missed": 1, "external": 2}
        assert totals["total_duration"] >= 0.3 and totals["mean_duration"] == totals["total_duration"]
    finally:
        await lab.close()


# -- rights -------------------------------------------------------------------------------------
async def other_company(lab: Any) -> tuple[Any, Any]:
    """A user and a limited admin of another company."""
    company = await lab.admin.create("companies", name="Elsewhere")
    domain = await lab.admin.create("domains", company_id=company["id"], name="Main")
    user = await lab.admin.create("users", domain_id=domain["id"], login="mallory")
    await grant_app(lab, user["id"], "StatsAdmin")
    return user_client(lab.server, user["id"]), await lab.server.admin(super_user=False, companies=(company["id"],))


async def grant_app(lab: Any, user_id: int, application: str) -> None:
    await lab.admin.create("authorizations", object_type="application", object_ref=application, subject_type="user", subject_id=user_id)


async def test_call_logs_of_others_need_a_call_log_grant_on_the_user_or_its_groups(twp_app):
    lab = await lab_of(twp_app)
    try:
        ids = lab.user_ids
        [entry] = insert_rows(lab, [log_row(lab, "alice", "2026-11-20T09:00:00", answered=3, length=60)])
        path = f"/api/v1/users/{ids['alice']}/call-logs"
        refused = await lab.users["bob"].get(path, status=403)
        assert refused["error"] == "not_granted" and "call_log" in refused["detail"] and f"user:{ids['alice']}" in refused["detail"]
        assert "7.4.6" in refused["detail"]
        # Guide 7.4.6: the group "Commerce" may see the call logs of user alice.
        commerce = await group_of(lab, "Commerce", "bob")
        await grant(lab, "call_log", f"user:{ids['alice']}", "group", commerce)
        assert [e["id"] for e in (await lab.users["bob"].get(path))["items"]] == [entry]
        # A grant on one of alice's groups reaches her too.
        sales = await group_of(lab, "Sales", "alice")
        await lab.users["carol"].get(path, status=403)
        await grant(lab, "call_log", f"group:{sales}", "user", ids["carol"])
        assert (await lab.users["carol"].get(path))["total"] == 1
        await lab.users["carol"].get(f"/api/v1/users/{ids['bob']}/call-logs", status=403)  # not bob's
        assert (await lab.users["alice"].get(path))["total"] == 1  # her own
        assert (await lab.admin.get(path))["total"] == 1  # the company's admin
        await lab.users["bob"].get("/api/v1/users/999999/call-logs", status=404)
        stranger, their_admin = await other_company(lab)
        for client in (stranger, their_admin):
            answer = await client.get(path, status=404)
            assert answer["detail"] == f"user {ids['alice']} not found"
        await their_admin.get("/api/v1/me/call-logs", status=403)  # administrators have no call log of their own
    finally:
        await lab.close()


async def test_statistics_rights_go_the_other_way(twp_app):
    lab = await lab_of(twp_app)
    try:
        ids = lab.user_ids
        insert_rows(lab, [log_row(lab, "alice", "2026-11-20T09:00:00", answered=3, length=60)])
        params = {"from": "2026-11-20", "to": "2026-11-20"}
        own = await lab.users["alice"].get("/api/v1/me/statistics", params=params, status=403)
        assert "Stats application" in own["detail"]
        await grant_app(lab, ids["alice"], "Stats")
        assert (await lab.users["alice"].get("/api/v1/me/statistics", params=params))["totals"]["calls"] == 1
        path = f"/api/v1/users/{ids['alice']}/statistics"
        assert "StatsAdmin" in (await lab.users["bob"].get(path, status=403))["detail"]
        await grant_app(lab, ids["bob"], "StatsAdmin")
        # Written the usual way (object alice, subject bob), the grant lets *alice* see *bob*: not what bob needs.
        await grant(lab, "statistics", f"user:{ids['alice']}", "user", ids["bob"])
        refused = await lab.users["bob"].get(path, status=403)
        assert f"object user:{ids['bob']}" in refused["detail"] and "other way" in refused["detail"]
        # Guide 9.4.2: the viewer bob is the object, the group of the viewed users the subject.
        patrons = await group_of(lab, "Patrons", "alice", "carol")
        await grant(lab, "statistics", f"user:{ids['bob']}", "group", patrons)
        seen = await lab.users["bob"].get(path, params={**params, "group_by": "day"})
        assert seen["user_id"] == ids["alice"] and seen["totals"]["calls"] == 1 and seen["periods"][0]["period"] == "2026-11-20"
        await lab.users["alice"].get(f"/api/v1/users/{ids['bob']}/statistics", status=403)  # alice lacks StatsAdmin
        await grant_app(lab, ids["alice"], "StatsAdmin")
        assert (await lab.users["alice"].get(f"/api/v1/users/{ids['bob']}/statistics"))["totals"]["calls"] == 0
        await lab.users["carol"].get(path, status=403)
        assert (await lab.admin.get(path, params=params))["totals"]["calls"] == 1
        stranger, their_admin = await other_company(lab)
        await stranger.get(path, status=404)
        await their_admin.get(path, status=404)
    finally:
        await lab.close()


async def test_group_statistics_list_only_the_members_the_viewer_may_see(twp_app):
    lab = await lab_of(twp_app)
    try:
        ids = lab.user_ids
        insert_rows(lab, [log_row(lab, "alice", "2026-11-20T09:00:00", answered=4, length=60),
                          log_row(lab, "carol", "2026-11-20T10:00:00", answered=6, length=30)])
        params = {"from": "2026-11-20", "to": "2026-11-20"}
        team = await group_of(lab, "Team", "alice", "carol")
        path = f"/api/v1/groups/{team}/statistics"
        await grant_app(lab, ids["bob"], "StatsAdmin")
        refused = await lab.users["bob"].get(path, params=params, status=403)
        assert "no member of group Team" in refused["detail"]
        await grant(lab, "statistics", f"user:{ids['bob']}", "user", ids["alice"])  # bob may see alice only
        body = await lab.users["bob"].get(path, params=params)
        assert [i["login"] for i in body["items"]] == ["alice"] and body["totals"]["calls"] == 1 and body["totals"]["total_duration"] == 60
        everyone = await lab.admin.get(path, params=params)
        assert [i["login"] for i in everyone["items"]] == ["alice", "carol"] and everyone["totals"]["calls"] == 2
        assert everyone["totals"]["mean_time_to_answer"] == 5.0
        stranger, their_admin = await other_company(lab)
        await stranger.get(path, status=404)
        await their_admin.get(path, status=404)
        await lab.users["bob"].get("/api/v1/groups/999999/statistics", status=404)
    finally:
        await lab.close()


async def test_recordings_follow_the_reverse_rule_of_records(twp_app):
    lab = await lab_of(twp_app)
    try:
        ids = lab.user_ids
        recorder = lab.kernel.telephony.call_logs
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
        [entry] = (await logged(lab.users["alice"], 1))["items"]
        rec_id = await recorder.add_recording(
            domain_id=lab.domain_id,
            device="201",
            call_id=call_id,
            started_at=time.time(),
            duration=12.5,
            source="test-recorder",
            location="https://recorder.example/r/1.wav",
            content_type="audio/wav",
            size=200_000,
        )
        mine = await lab.users["alice"].get("/api/v1/me/records")
        assert [(r["id"], r["call_log_id"], r["location"], r["duration"]) for r in mine["items"]] == [
            (rec_id, entry["id"], "https://recorder.example/r/1.wav", 12.5)]
        path = f"/api/v1/users/{ids['alice']}/records"
        assert "records" in (await lab.users["bob"].get(path, status=403))["detail"]
        await grant(lab, "records", f"user:{ids['bob']}", "user", ids["alice"])
        assert (await lab.users["bob"].get(path))["total"] == 1
        await lab.users["carol"].get(path, status=403)
        assert (await lab.admin.get(path))["total"] == 1
        stranger, _ = await other_company(lab)
        await stranger.get(path, status=404)
        try:
            await recorder.add_recording(domain_id=lab.domain_id, device="299", started_at=time.time(), duration=1, source="r", location="x")
        except ValueError as exc:
            assert "device 299" in str(exc) and "does not exist" in str(exc)
        else:
            raise AssertionError("a recording of an unknown device was accepted")
    finally:
        await lab.close()


# -- robustness ---------------------------------------------------------------------------------
async def test_a_store_failure_never_breaks_call_events_and_the_entry_is_written_later(twp_app, caplog):
    lab = await lab_of(twp_app)
    try:
        recorder = lab.kernel.telephony.call_logs
        recorder.retry_delay, recorder.max_attempts = 0.05, 1000
        original, refused = recorder._write, []

        def broken(conn: Any, entries: list[dict[str, Any]]) -> int:
            refused.append(len(entries))
            raise sa.exc.OperationalError("INSERT INTO call_logs", {}, Exception("database is locked"))

        recorder._write = broken
        with caplog.at_level(logging.ERROR, logger="twpcore.telephony.call_logs"):
            call_id = await DriverConformance.incoming_answered(lab, "alice")
            await hang_up_and_wait(lab, EXTERNAL, call_id, "alice")
            bob = await lab.ws("bob")  # calls go on while the store refuses entries
            made = await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
            await bob.expect("call.delivered", call={"call_id": made["call_id"]})
            deadline = time.monotonic() + 5
            while len(refused) < 2:
                assert time.monotonic() < deadline, "the writer never tried the store"
                await asyncio.sleep(0.02)
        assert "the store refused 1 entries" in caplog.text and "database is locked" in caplog.text
        assert (await lab.users["alice"].get("/api/v1/me/call-logs"))["total"] == 0
        seen = (await lab.admin.get("/api/v1/health"))["call_logs"]  # the admin sees the trouble without reading logs
        assert seen["pending"] >= 1 and seen["dropped"] == 0 and "database is locked" in seen["last_error"]
        recorder._write = original
        [entry] = (await logged(lab.users["alice"], 1))["items"]
        assert entry["call_id"] == call_id and recorder.dropped == 0
        deadline = time.monotonic() + 5
        while (seen := (await lab.admin.get("/api/v1/health"))["call_logs"])["last_error"] is not None:
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.02)
        assert seen["written"] >= 1 and seen["pending"] == 0
    finally:
        await lab.close()
