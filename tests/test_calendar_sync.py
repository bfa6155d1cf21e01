"""The kernel's calendar sync (``twpcore.calendars.CalendarSync``) with a connector that keeps calendars in memory.

What a plugin author relies on (docs/plugin-author-guide.md, DirectoryConnector): the
kernel asks a connector with the ``calendar`` capability for each enabled user of the
directory's domain with an Email, remembers the state it returns, replaces everything
on ``full``, follows deletions, drops what a user no longer gets (Email changed, user
disabled) and keeps the previous events when the connector fails.  The real connectors
are tested end to end in plugins/twp-exchange and plugins/twp-google.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import attrs
import pytest

from twpcore import calendars
from twpcore.plugin_api import (
    CalendarChanges,
    CalendarEvent,
    DirectoryConnector,
    Duration,
    NotReady,
    hookimpl,
    setting,
)
from twpcore.testing.directories import admin_and_domain

START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)


@attrs.frozen(kw_only=True)
class MemoryConfig:
    calendar: bool = setting(False, help="read calendars")
    calendar_every: Duration = setting(Duration(300), min=30, help="seconds between reads")


class MemoryCalendars(DirectoryConnector):
    """mailbox -> {event id: CalendarEvent}; a state is the number of calls answered so far."""

    type_name = "memory_calendar"
    Config = MemoryConfig
    capabilities = frozenset({"private", "calendar"})  # a directory type needs contacts too: it has none
    mailboxes: ClassVar[dict[str, dict[str, CalendarEvent]]] = {}
    deleted: ClassVar[dict[str, list[str]]] = {}
    calls: ClassVar[list[tuple[str, str | None]]] = []
    down: ClassVar[bool] = False

    async def records(self, user: Any = None) -> Any:
        for _ in ():
            yield

    async def calendar_changes(self, mailbox: str, state: str | None) -> CalendarChanges:
        MemoryCalendars.calls.append((mailbox, state))
        if MemoryCalendars.down:
            raise NotReady("memory calendars are down")
        events = MemoryCalendars.mailboxes.get(mailbox, {})
        gone = tuple(MemoryCalendars.deleted.pop(mailbox, []))
        return CalendarChanges(tuple(events.values()), () if state is None else gone, str(len(MemoryCalendars.calls)), full=state is None)


class Memory:
    @hookimpl
    def twp_register_directory_connectors(self, register: Any) -> None:
        register(MemoryCalendars)


def event(ident: str, subject: str, hours: int = 0, **kw: Any) -> CalendarEvent:
    return CalendarEvent(START + dt.timedelta(hours=hours), START + dt.timedelta(hours=hours + 1), subject, source_id=ident, **kw)


@pytest.fixture
async def office(twp_app: Any) -> Any:
    MemoryCalendars.mailboxes, MemoryCalendars.deleted, MemoryCalendars.calls, MemoryCalendars.down = {}, {}, [], False
    server = await twp_app(plugins=[("memory", Memory())])
    admin, domain_id = await admin_and_domain(server)
    alice = await admin.create("users", domain_id=domain_id, login="alice", email="alice@acme.example", password="a-long-password-1")
    directory = await admin.post("/api/v1/directories", {"domain_id": domain_id, "name": "Calendars", "connector": "memory_calendar",
                                                          "type": "private", "options": {"calendar": True}}, status=201)
    return server, admin, alice, directory


async def subjects(server: Any) -> list[str]:
    def run(conn: Any) -> list[str]:
        return [r["subject"] for r in calendars.events_between(conn, 1, START - dt.timedelta(days=60), START + dt.timedelta(days=60))]

    return await server.kernel.store.run(run)


async def own(server: Any, login: str = "alice") -> list[str]:
    client = await server.login(login, "a-long-password-1")
    window = {"from": (START - dt.timedelta(days=1)).isoformat(), "to": (START + dt.timedelta(days=2)).isoformat()}
    return [e["subject"] for e in (await client.get("/api/v1/me/calendar/events", params=window))["items"]]


async def test_states_are_kept_deletions_followed_and_an_email_change_reads_all_again(office: Any) -> None:
    server, admin, alice, directory = office
    MemoryCalendars.mailboxes["alice@acme.example"] = {"a": event("a", "Review"), "b": event("b", "Lunch", 2)}
    status = await server.kernel.calendars.sync(directory["id"])
    assert (status.state, status.users) == ("ready", 1)
    assert MemoryCalendars.calls == [("alice@acme.example", None)]
    assert await own(server) == ["Review", "Lunch"]

    del MemoryCalendars.mailboxes["alice@acme.example"]["a"]
    MemoryCalendars.deleted["alice@acme.example"] = ["a"]
    await server.kernel.calendars.sync(directory["id"])
    assert MemoryCalendars.calls[-1] == ("alice@acme.example", "1")  # the state the last call returned
    assert await own(server) == ["Lunch"]

    # A new Email is another mailbox: read from nothing, and what the old one gave goes.
    MemoryCalendars.mailboxes["alice.martin@acme.example"] = {"c": event("c", "Offsite", 4)}
    await admin.patch(f"/api/v1/users/{alice['id']}", {"email": "alice.martin@acme.example"})
    await server.kernel.calendars.sync(directory["id"])
    assert MemoryCalendars.calls[-1] == ("alice.martin@acme.example", None)
    assert await own(server) == ["Offsite"]

    # A disabled user is no longer read, and their synchronized events go.
    await admin.patch(f"/api/v1/users/{alice['id']}", {"enabled": False})
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.users == 0
    assert await subjects(server) == []


async def test_a_server_down_keeps_the_events_and_says_when_it_tries_again(office: Any) -> None:
    server, _admin, _alice, directory = office
    MemoryCalendars.mailboxes["alice@acme.example"] = {"a": event("a", "Review")}
    await server.kernel.calendars.sync(directory["id"])
    MemoryCalendars.down = True
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "retrying"
    assert status.reason == "memory calendars are down; previous events kept, tried again in 60 s"
    assert await own(server) == ["Review"]
    assert server.kernel.calendars.as_json(directory["id"])["state"] == "retrying"


async def test_an_invalid_event_fails_that_user_only_and_names_the_field(office: Any, twp_app: Any) -> None:
    server, admin, alice, directory = office
    bob = await admin.create("users", domain_id=alice["domain_id"], login="bob", email="bob@acme.example", password="a-long-password-1")
    MemoryCalendars.mailboxes["alice@acme.example"] = {"a": event("a", "Review")}
    MemoryCalendars.mailboxes["bob@acme.example"] = {"x": event("x", "Odd", show_as="maybe")}
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "ready" and list(status.failed) == ["bob"]
    assert status.failed["bob"] == "show_as: 'maybe' is unknown; use one of free, tentative, busy, away"
    assert await own(server) == ["Review"] and await own(server, "bob") == []
    assert bob["id"] != alice["id"]


async def test_events_long_past_are_not_kept_and_the_users_own_events_are_never_touched(office: Any) -> None:
    server, _admin, _alice, directory = office
    client = await server.login("alice", "a-long-password-1")
    await client.post("/api/v1/me/calendar/events", {"start": START.isoformat(), "end": (START + dt.timedelta(hours=1)).isoformat(),
                                                      "subject": "Typed in TWP"}, status=201)
    old = CalendarEvent(START - dt.timedelta(days=90), START - dt.timedelta(days=90) + dt.timedelta(hours=1), "Ancient", source_id="old")
    MemoryCalendars.mailboxes["alice@acme.example"] = {"old": old, "a": event("a", "Review", 3)}
    await server.kernel.calendars.sync(directory["id"])
    assert await subjects(server) == ["Typed in TWP", "Review"]


async def test_a_directory_without_calendar_true_is_not_read(office: Any) -> None:
    server, admin, _alice, directory = office
    MemoryCalendars.mailboxes["alice@acme.example"] = {"a": event("a", "Review")}
    await server.kernel.calendars.run_due()
    assert await own(server) == ["Review"]
    await admin.patch(f"/api/v1/directories/{directory['id']}", {"options": {"calendar": False}})
    await server.kernel.calendars.run_due()
    assert await own(server) == []
    status = await server.kernel.calendars.sync(directory["id"])
    assert status.state == "disabled" and "set calendar = true" in (status.reason or "")
