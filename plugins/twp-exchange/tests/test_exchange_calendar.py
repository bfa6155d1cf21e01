"""An admin turns an Exchange directory into a calendar connector (guide 8.6.2, 8.7.4).

End to end: the installed ``twp-exchange`` plugin, the kernel's calendar sync
(``twpcore.calendars.CalendarSync``) and exchangelib calling SyncFolderItems on the EWS
simulator.  What users see is read through the calendar API of guide 7.4.3: the owner
through ``/me/calendar/events``, a colleague granted the calendar through
``/users/{id}/calendar/events``.  "One sync" is one pass of the connector, what its
schedule (``calendar_every``) runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from twp_exchange.testing import EwsServer
from twpcore.testing.directories import calendar_window as window
from twpcore.testing.directories import calendar_world

SERVICE = "svc-twp@corp.example.com"
PASSWORD = "S3cret-Calendar!"


@pytest.fixture
def ews() -> Iterator[EwsServer]:
    server = EwsServer(users={SERVICE: PASSWORD}, impersonators={SERVICE})
    server.mailbox(SERVICE)
    with server:
        yield server


async def calendar_office(twp_app: Any, ews: EwsServer, **options: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice (whose Exchange calendar is read) and Bob (granted her calendar) in one domain, and the calendar connector."""
    world = await calendar_world(twp_app, "exchange", "Exchange calendars",
                                 {"url": ews.url, "auth": "basic", "user": SERVICE, "password": PASSWORD, **options})
    assert PASSWORD not in json.dumps(world[-1])
    return world


async def test_a_meeting_shows_within_one_sync_a_private_one_as_busy_and_a_deleted_one_goes(twp_app: Any, ews: EwsServer) -> None:
    server, _admin, alice, _bob, directory = await calendar_office(twp_app, ews)
    mailbox = ews.mailbox("alice@acme.example")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    review = mailbox.add_event("Budget review", start, start + dt.timedelta(hours=1), location="Room 4")
    mailbox.add_event("Doctor", start + dt.timedelta(hours=3), start + dt.timedelta(hours=4), sensitivity="Private")
    mailbox.add_event("Holiday", start + dt.timedelta(days=2), start + dt.timedelta(days=3), free_busy="OOF")

    status = await server.kernel.calendars.sync(directory["id"])
    assert (status.state, status.reason, status.users) == ("ready", None, 1)

    as_bob = await server.login("bob", "a-long-password-1")
    seen = (await as_bob.get(f"/api/v1/users/{alice['id']}/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["show_as"], e["private"], e["location"]) for e in seen] == [
        ("Budget review", "busy", False, "Room 4"), (None, "busy", True, None), ("Holiday", "away", False, "")]
    assert seen[0]["start"] == start.isoformat() and seen[0]["end"] == (start + dt.timedelta(hours=1)).isoformat()

    as_alice = await server.login("alice", "a-long-password-1")
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["source"]) for e in own][:2] == [("Budget review", f"exchange:{directory['id']}"),
                                                               ("Doctor", f"exchange:{directory['id']}")]
    # What Exchange wrote is read-only in TWP: Outlook is where it changes.
    await as_alice.patch(f"/api/v1/me/calendar/events/{own[0]['id']}", {"subject": "x"}, status=409)

    mailbox.delete_event(review)
    mailbox.change_event(mailbox.calendar.items[0], subject="Dentist", start=start + dt.timedelta(hours=5),
                         end=start + dt.timedelta(hours=6))
    before = ews.operations().count("SyncFolderItems")
    await server.kernel.calendars.sync(directory["id"])
    assert ews.operations().count("SyncFolderItems") == before + 1  # one incremental call answers both changes
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["start"]) for e in own] == [("Dentist", (start + dt.timedelta(hours=5)).isoformat()),
                                                         ("Holiday", (start + dt.timedelta(days=2)).isoformat())]


async def test_an_expired_sync_state_forces_a_full_sync(twp_app: Any, ews: EwsServer) -> None:
    server, _admin, _alice, _bob, directory = await calendar_office(twp_app, ews)
    mailbox = ews.mailbox("alice@acme.example")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    first = mailbox.add_event("Kick-off", start, start + dt.timedelta(hours=1))
    await server.kernel.calendars.sync(directory["id"])

    # The server forgot the state (Exchange does after a while); meanwhile an item went and another came.
    mailbox.expire_sync_states()
    mailbox.calendar.items.remove(first)  # gone without a journal entry: only a full read can notice
    mailbox.add_event("Retro", start + dt.timedelta(hours=2), start + dt.timedelta(hours=3))
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "ready"
    as_alice = await server.login("alice", "a-long-password-1")
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [e["subject"] for e in own] == ["Retro"]
    assert ews.operations()[-2:] == ["SyncFolderItems", "SyncFolderItems"]  # refused, then read from nothing


async def test_failures_keep_the_events_and_name_the_problem_without_the_password(
        twp_app: Any, ews: EwsServer, caplog: pytest.LogCaptureFixture) -> None:
    server, admin, alice, _bob, directory = await calendar_office(twp_app, ews)
    mailbox = ews.mailbox("alice@acme.example")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    mailbox.add_event("Board meeting", start, start + dt.timedelta(hours=1))
    carol = await admin.create("users", domain_id=alice["domain_id"], login="carol", email="carol@acme.example",
                               password="a-long-password-1")
    caplog.set_level(logging.DEBUG)

    status = await server.kernel.calendars.sync(directory["id"])
    # Carol has no mailbox: her calendar fails, Alice's is read.
    assert status.state == "ready" and status.users == 2
    assert list(status.failed) == ["carol"] and "no such mailbox" in status.failed["carol"]
    assert status.reason is not None and status.reason.startswith("1 of 2 calendars failed, first carol:")
    await admin.delete(f"/api/v1/users/{carol['id']}")

    ews.stop()
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "retrying" and "cannot reach the EWS endpoint" in (status.reason or "")
    assert (status.reason or "").endswith("s") and "previous events kept" in (status.reason or "")
    as_alice = await server.login("alice", "a-long-password-1")
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [e["subject"] for e in own] == ["Board meeting"]

    ews.users[SERVICE] = "changed-elsewhere"
    ews.start()
    await admin.patch(f"/api/v1/directories/{directory['id']}", {"options": {
        "url": ews.url, "auth": "basic", "user": SERVICE, "password": PASSWORD, "calendar": True}})
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "auth_failed" and "refused the credentials" in (status.reason or "")
    # Not in TWP's messages, nor in exchangelib's DEBUG log of request headers (Basic credentials are hidden there).
    basic = base64.b64encode(f"{SERVICE}:{PASSWORD}".encode()).decode()
    assert "Authorization" in caplog.text and "'Basic ***'" in caplog.text
    assert PASSWORD not in caplog.text and basic not in caplog.text and "changed-elsewhere" not in caplog.text


async def test_a_company_never_sees_another_companys_calendars(twp_app: Any, ews: EwsServer) -> None:
    server, admin, alice, _bob, directory = await calendar_office(twp_app, ews)
    # Another company has a user with the same address: the connector of Alice's domain never reads them.
    other = await admin.create("companies", name="Globex")
    other_domain = await admin.create("domains", company_id=other["id"], name="globex")
    stranger = await admin.create("users", domain_id=other_domain["id"], login="stranger", email="alice@acme.example",
                                  password="a-long-password-1")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    ews.mailbox("alice@acme.example").add_event("Acquisition talks", start, start + dt.timedelta(hours=1))

    status = await server.kernel.calendars.sync(directory["id"])
    assert status.users == 1
    as_stranger = await server.login("stranger", "a-long-password-1")
    assert (await as_stranger.get("/api/v1/me/calendar/events", params=window()))["items"] == []
    await as_stranger.get(f"/api/v1/users/{alice['id']}/calendar/events", params=window(), status=404)
    assert stranger["id"] != alice["id"]


async def test_turning_the_calendar_off_removes_what_it_wrote(twp_app: Any, ews: EwsServer) -> None:
    server, admin, _alice, _bob, directory = await calendar_office(twp_app, ews)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    ews.mailbox("alice@acme.example").add_event("Offsite", start, start + dt.timedelta(hours=1))
    await server.kernel.calendars.run_due()
    as_alice = await server.login("alice", "a-long-password-1")
    assert [e["subject"] for e in (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]] == ["Offsite"]

    await admin.patch(f"/api/v1/directories/{directory['id']}", {"options": {
        "url": ews.url, "auth": "basic", "user": SERVICE, "password": PASSWORD, "calendar": False}})
    await server.kernel.calendars.run_due()
    assert (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"] == []


async def test_without_rights_on_the_calendar_free_busy_shows_the_busy_times(twp_app: Any, ews: EwsServer) -> None:
    # Delegate access, and Alice never gave the account Reviewer rights: Exchange's Default
    # permission still shows everyone her free/busy times (GetUserAvailability).
    server, _admin, alice, _bob, directory = await calendar_office(twp_app, ews, access="delegate")
    mailbox = ews.mailbox("alice@acme.example")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    mailbox.add_event("Budget review", start, start + dt.timedelta(hours=1))
    mailbox.add_event("Gym", start + dt.timedelta(hours=2), start + dt.timedelta(hours=3), free_busy="Free")
    mailbox.add_event("Holiday", start + dt.timedelta(days=1), start + dt.timedelta(days=2), free_busy="OOF")

    status = await server.kernel.calendars.sync(directory["id"])
    assert (status.state, status.reason) == ("ready", None)
    assert "GetUserAvailabilityRequest" in ews.operations() and "SyncFolderItems" not in ews.operations()
    as_alice = await server.login("alice", "a-long-password-1")
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["show_as"], e["start"]) for e in own] == [
        ("", "busy", start.isoformat()), ("", "away", (start + dt.timedelta(days=1)).isoformat())]

    # Once she shares "Free/Busy time, subject, location", subjects come too (read in full each time).
    mailbox.free_busy_details.add(SERVICE)
    await server.kernel.calendars.sync(directory["id"])
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [e["subject"] for e in own] == ["Budget review", "Holiday"]
    assert alice["email"] == "alice@acme.example"
