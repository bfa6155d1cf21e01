"""Users' calendar events (guide 7.4.3; user guide 3.3, "Présence calendrier").

An event has a start, an end, a subject, a location, a "show as" state (``free``,
``tentative``, ``busy``, ``away``) and a private flag.  Users write their own events
through ``/api/v1/me/calendar/events``; users granted the calendar of a user (or of one
of its groups) read them through ``/api/v1/users/{id}/calendar/events``, where a private
event shows only as ``busy`` between its start and its end.

Calendar providers (an Exchange, Google or Zimbra connector in a plugin) feed events
with ``replace_events``, run in the store's thread pool::

    events = [CalendarEvent(start, end, "Weekly review", show_as="busy", source_id=item.id), ...]
    await kernel.store.run(calendars.replace_events, user_id, "exchange", events, window_start, window_end)

Each provider writes under its own ``source`` name; what a user typed in TWP (source
``twp``) is never touched by a provider, and a provider's events are read-only through
the API.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import rights
from twpcore.auth import Principal, now
from twpcore.routing import ApiError
from twpcore.store import schema as t

log = logging.getLogger(__name__)

SHOW_AS = ("free", "tentative", "busy", "away")
"""Libre, Provisoire, Occupé, Absent in the user guide."""
OWN_SOURCE = "twp"
"""Source of the events users write through the API."""
MAX_EVENTS = 1000
"""Most events answered for one window."""


class CalendarError(ValueError):
    """An event is not valid; ``field`` names the faulty field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def utc(value: dt.datetime) -> dt.datetime:
    """An aware time in UTC (what the store keeps); a naive one is refused."""
    if value.tzinfo is None:
        raise CalendarError(f"time {value.isoformat()} has no time zone; add Z or an offset such as +01:00")
    return value.astimezone(dt.UTC)


def parse_time(text: Any, field: str) -> dt.datetime:
    """An ISO 8601 time with a time zone (``2026-11-23T09:00:00+01:00`` or ``…Z``), in UTC."""
    if not isinstance(text, str):
        raise CalendarError(f"{field}: expected an ISO 8601 time such as 2026-11-23T09:00:00+01:00", field)
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CalendarError(f"{field}: {text[:60]!r} is not an ISO 8601 time; write 2026-11-23T09:00:00+01:00", field) from None
    if value.tzinfo is None:
        raise CalendarError(f"{field}: {text[:60]!r} has no time zone; add Z or an offset such as +01:00", field)
    return value.astimezone(dt.UTC)


def stored(value: dt.datetime) -> dt.datetime:
    """A time read from the store, aware in UTC (SQLite hands back naive UTC values)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    """A stored time as ISO 8601 UTC."""
    return stored(value).isoformat()


@attrs.frozen
class CalendarEvent:
    """One event as a provider hands it to ``replace_events``."""

    start: dt.datetime
    """Aware start time."""
    end: dt.datetime
    """Aware end time, after ``start``."""
    subject: str = ""
    location: str = ""
    show_as: str = "busy"
    """One of ``SHOW_AS``."""
    private: bool = False
    source_id: str | None = None
    """The provider's id of the event, if it has one."""


def check(values: dict[str, Any]) -> dict[str, Any]:
    """Check the columns of an event (after any change): end after start, known show-as, lengths."""
    if values["ends_at"] <= values["starts_at"]:
        raise CalendarError(f"end {iso(values['ends_at'])} is not after start {iso(values['starts_at'])}; an event ends after it starts", "end")
    if values.get("show_as") not in SHOW_AS:
        raise CalendarError(f"show_as: {values.get('show_as')!r} is unknown; use one of {', '.join(SHOW_AS)}", "show_as")
    for name in ("subject", "location"):
        if len(values.get(name) or "") > 500:
            raise CalendarError(f"{name}: at most 500 characters, got {len(values[name])}", name)
    return values


def events_between(conn: sa.Connection, user_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """The user's events overlapping [start, end), earliest first, at most ``MAX_EVENTS``."""
    c = t.calendar_events.c
    rows = conn.execute(sa.select(t.calendar_events).where(c.user_id == user_id, c.ends_at > utc(start), c.starts_at < utc(end))
                        .order_by(c.starts_at, c.id).limit(MAX_EVENTS)).all()
    return [dict(r._mapping) for r in rows]


def as_json(row: dict[str, Any], *, owner: bool) -> dict[str, Any]:
    """An event as the API shows it: everything to its owner; a private event as plain ``busy`` to others."""
    out = {"id": row["id"], "start": iso(row["starts_at"]), "end": iso(row["ends_at"]), "show_as": row["show_as"],
           "private": row["private"], "subject": row["subject"], "location": row["location"]}
    if owner:
        out["source"] = row["source"]
    elif row["private"]:
        out.update(show_as="busy", subject=None, location=None)
    return out


def replace_events(conn: sa.Connection, user_id: int, source: str, events: list[CalendarEvent],
                   start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """For providers: the user's events from ``source`` overlapping [start, end) become ``events``.

    Returns ``{"deleted": n, "inserted": m}``.  Raises ``CalendarError`` (nothing
    written) when an event is not valid or ``source`` is the users' own ``twp``.
    """
    if not source or source == OWN_SOURCE or len(source) > 64:
        raise CalendarError(f"source: a provider name of 1-64 characters other than {OWN_SOURCE!r} is required", "source")
    rows = []
    for ev in events:
        rows.append(check({"user_id": user_id, "starts_at": utc(ev.start), "ends_at": utc(ev.end), "subject": ev.subject or "",
                           "location": ev.location or "", "show_as": ev.show_as, "private": bool(ev.private), "source": source,
                           "source_id": ev.source_id}))
    c = t.calendar_events.c
    ids = sorted({r["source_id"] for r in rows if r["source_id"] is not None})
    # An event that moved into the window from outside it is replaced too (its source id is unique per user).
    moved = c.source_id.in_(ids) if ids else sa.false()
    deleted = conn.execute(sa.delete(t.calendar_events).where(c.user_id == user_id, c.source == source,
                                                              sa.or_(sa.and_(c.ends_at > utc(start), c.starts_at < utc(end)), moved))).rowcount
    if rows:
        conn.execute(sa.insert(t.calendar_events), rows)
    log.debug("calendar of user %s: %s replaced %s events by %s", user_id, source, deleted, len(rows))
    return {"deleted": deleted, "inserted": len(rows)}


# -- what the calendar endpoints do (twpcore.http.rights_objects reads the requests) ---------

COLUMNS = ("starts_at", "ends_at", "subject", "location", "show_as", "private")
"""What a user writes of an event."""


def event_values(data: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """An event's values once ``data`` (an API body) is applied to ``existing``; ``CalendarError`` when not valid."""
    values: dict[str, Any] = dict(existing or {"subject": "", "location": "", "show_as": "busy", "private": False})
    if existing is not None:
        values["starts_at"], values["ends_at"] = stored(values["starts_at"]), stored(values["ends_at"])
    for field, column in (("start", "starts_at"), ("end", "ends_at")):
        if field in data:
            values[column] = parse_time(data[field], field)
    for field in ("subject", "location", "show_as", "private"):
        if field in data:
            values[field] = data[field]
    check(values)
    return values


def create_own_event(conn: sa.Connection, user_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Add an event written in TWP (source ``twp``) to the calendar of ``user_id``."""
    return dict(conn.execute(sa.insert(t.calendar_events).values(user_id=user_id, source=OWN_SOURCE, **{k: values[k] for k in COLUMNS})
                             .returning(*t.calendar_events.c)).one()._mapping)


def own_event(conn: sa.Connection, user_id: int, ident: int, change: bool) -> dict[str, Any]:
    """One of the user's events: 404 when it is not theirs, 409 when ``change`` and a provider wrote it."""
    c = t.calendar_events.c
    row = conn.execute(sa.select(t.calendar_events).where(c.id == ident, c.user_id == user_id)).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"calendar event {ident} not found among your events")
    if change and row.source != OWN_SOURCE:
        raise ApiError(409, "read_only", f"calendar event {ident} comes from {row.source}; change it there, TWP shows what {row.source} says")
    return dict(row._mapping)


def update_own_event(conn: sa.Connection, user_id: int, ident: int, data: dict[str, Any]) -> dict[str, Any]:
    """Apply ``data`` to one of the user's own events; ``CalendarError`` when the result is not valid."""
    values = event_values(data, own_event(conn, user_id, ident, True))
    return dict(conn.execute(sa.update(t.calendar_events).where(t.calendar_events.c.id == ident)
                             .values(updated_at=now(), **{k: values[k] for k in COLUMNS}).returning(*t.calendar_events.c)).one()._mapping)


def delete_own_event(conn: sa.Connection, user_id: int, ident: int) -> None:
    own_event(conn, user_id, ident, True)
    conn.execute(sa.delete(t.calendar_events).where(t.calendar_events.c.id == ident))


def user_calendar(conn: sa.Connection, who: Principal, ident: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The events of user ``ident`` in a window, for a caller granted their calendar (guide 7.4.3); 404 for another company's user."""
    owner = rights.visible_row(conn, who, t.users, ident, t.users.c.login, t.users.c.first_name, t.users.c.last_name)
    if owner is None:
        raise ApiError(404, "not_found", f"user {ident} not found")
    if not rights.can_view_calendar(conn, who.id, ident):
        raise ApiError(403, "not_granted", rights.not_granted_text(f"the calendar of user {owner.login}", "7.4.3",
                                                                    "a calendar authorization on the user or one of its groups"))
    rows = events_between(conn, ident, start, end)
    return {"user": {"id": ident, "login": owner.login, "first_name": owner.first_name, "last_name": owner.last_name, "domain_id": owner.domain_id},
            "from": start.isoformat(), "to": end.isoformat(), "items": [as_json(r, owner=who.id == ident) for r in rows]}
