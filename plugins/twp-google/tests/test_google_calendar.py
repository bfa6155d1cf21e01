"""An admin turns a Google Workspace directory into a calendar connector (guide 8.9.6).

End to end: the installed ``twp-google`` plugin, the kernel's calendar sync
(``twpcore.calendars.CalendarSync``) and the connector's Calendar API calls (aiohttp,
service account with domain-wide delegation) on the simulated Google API.  Users read
what was synchronized through the calendar API of guide 7.4.3.  "One sync" is one pass
of the connector, what its schedule (``calendar_every``) runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from twp_google.testing import CONTACTS_SCOPE, DIRECTORY_SCOPE, GoogleApiServer, GoogleUser
from twpcore.testing.directories import calendar_window as window
from twpcore.testing.directories import calendar_world


@pytest.fixture
async def google() -> AsyncIterator[GoogleApiServer]:
    users = [GoogleUser("admin@acme.example", "Ada", "Admin", is_admin=True), GoogleUser("alice@acme.example", "Alice", "Martin")]
    async with GoogleApiServer(domain="acme.example", users=users) as api:
        yield api


async def calendar_office(twp_app: Any, google: GoogleApiServer, key: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Alice (whose Google calendar is read) and Bob (granted her calendar), and the calendar connector."""
    server, _admin, alice, bob, directory = await calendar_world(twp_app, "google", "Google calendars", {
        "service_account_key": json.dumps(key), "workspace_domain": "acme.example", "people_url": google.base_url,
        "calendar_url": google.base_url})
    assert key["private_key"] not in json.dumps(directory)
    return server, alice, bob, directory


async def test_a_meeting_shows_within_one_sync_a_private_one_as_busy_and_a_deleted_one_goes(
        twp_app: Any, google: GoogleApiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = google.service_account()
    server, alice, _bob, directory = await calendar_office(twp_app, google, key)
    owner = google.user("alice@acme.example")
    assert owner is not None
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    review = google.add_event(owner, "Budget review", start, start + dt.timedelta(hours=1), location="Room 4")
    google.add_event(owner, "Doctor", start + dt.timedelta(hours=3), start + dt.timedelta(hours=4), visibility="private")
    google.add_event(owner, "Focus", start + dt.timedelta(hours=5), start + dt.timedelta(hours=6), transparency="transparent")
    google.add_event(owner, "Holiday", start + dt.timedelta(days=2), start + dt.timedelta(days=3), eventType="outOfOffice")

    status = await server.kernel.calendars.sync(directory["id"])
    assert (status.state, status.reason, status.users) == ("ready", None, 1)

    as_bob = await server.login("bob", "a-long-password-1")
    seen = (await as_bob.get(f"/api/v1/users/{alice['id']}/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["show_as"], e["private"]) for e in seen] == [
        ("Budget review", "busy", False), (None, "busy", True), ("Focus", "free", False), ("Holiday", "away", False)]
    assert seen[0]["start"] == start.isoformat() and seen[0]["location"] == "Room 4"

    google.delete_event(owner, review)
    google.change_event(owner, owner.events[1], summary="Dentist")
    before = [op for op, _ in google.requests].count("events.list")
    await server.kernel.calendars.sync(directory["id"])
    assert [op for op, _ in google.requests].count("events.list") == before + 1  # one incremental call (syncToken)
    as_alice = await server.login("alice", "a-long-password-1")
    own = (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]
    assert [(e["subject"], e["private"], e["source"]) for e in own] == [
        ("Dentist", True, f"google:{directory['id']}"), ("Focus", False, f"google:{directory['id']}"),
        ("Holiday", False, f"google:{directory['id']}")]
    assert key["private_key"].splitlines()[1] not in caplog.text


async def test_an_expired_sync_token_forces_a_full_sync(twp_app: Any, google: GoogleApiServer) -> None:
    server, _alice, _bob, directory = await calendar_office(twp_app, google, google.service_account())
    owner = google.user("alice@acme.example")
    assert owner is not None
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    first = google.add_event(owner, "Kick-off", start, start + dt.timedelta(hours=1))
    await server.kernel.calendars.sync(directory["id"])

    google.expire_sync_tokens(owner)
    owner.events.remove(first)  # gone for good: only a full read can notice
    google.add_event(owner, "Retro", start + dt.timedelta(hours=2), start + dt.timedelta(hours=3))
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "ready"
    as_alice = await server.login("alice", "a-long-password-1")
    assert [e["subject"] for e in (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]] == ["Retro"]
    assert [op for op, _ in google.requests][-2:] == ["events.list", "events.list"]  # 410 Gone, then read from nothing


async def test_a_missing_delegation_and_google_down_keep_the_events(twp_app: Any, google: GoogleApiServer) -> None:
    key = google.service_account()
    server, _alice, _bob, directory = await calendar_office(twp_app, google, key)
    owner = google.user("alice@acme.example")
    assert owner is not None
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    google.add_event(owner, "Board meeting", start, start + dt.timedelta(hours=1))
    await server.kernel.calendars.sync(directory["id"])

    google.fail_after = google.pages_served  # every further page answers 503
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "retrying" and "HTTP 503" in (status.reason or "") and "previous events kept" in (status.reason or "")

    google.fail_after = None
    google.delegations[key["client_id"]] = {DIRECTORY_SCOPE, CONTACTS_SCOPE}  # the admin removed calendar.readonly
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "auth_failed"
    assert "refused to let" in (status.reason or "") and "calendar.readonly" in (status.reason or "")
    as_alice = await server.login("alice", "a-long-password-1")
    assert [e["subject"] for e in (await as_alice.get("/api/v1/me/calendar/events", params=window()))["items"]] == ["Board meeting"]
