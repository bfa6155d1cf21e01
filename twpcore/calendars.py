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

import asyncio
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from twpcore import rights
from twpcore.auth import Principal, now
from twpcore.directory import db as directory_db
from twpcore.kinds import AuthFailed, Kind, NotReady
from twpcore.routing import ApiError
from twpcore.store import schema as t

if TYPE_CHECKING:
    from twpcore.directory.service import DirectoryService

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


# -- calendar connectors (issue 18; guide 8.6.2, 8.7.4, 8.9.6) --------------------------------

KEEP_PAST = dt.timedelta(days=30)
"""Events a calendar connector reports that ended longer ago than this are not stored."""


@attrs.frozen
class CalendarChanges:
    """What a calendar connector read from one mailbox since ``state`` (``DirectoryConnector.calendar_changes``)."""

    events: tuple[CalendarEvent, ...] = ()
    """Events created or changed since the state (each with its ``source_id``); with ``full``, every event."""
    deleted: tuple[str, ...] = ()
    """Source ids of the events deleted since the state."""
    state: str = ""
    """The provider's opaque state for the next call (EWS SyncState, Google syncToken)."""
    full: bool = False
    """``events`` is the whole calendar (first sync, or the old state expired): anything else from this source goes."""
    skipped: tuple[str, ...] = ()
    """Items read but not shown, each with its reason ("recurring series "Weekly" ...")."""


@attrs.define
class CalendarChangesBuilder:
    """What a connector gathers while it reads a mailbox's changes, item by item; ``changes`` makes the ``CalendarChanges``.

    The last word on an item wins: an item deleted and then seen again is an event, an event
    later found deleted (or not to be shown) is a deleted id.
    """

    events: dict[str, CalendarEvent] = attrs.field(factory=dict)
    deleted: set[str] = attrs.field(factory=set)
    skipped: list[str] = attrs.field(factory=list)

    def put(self, source_id: str, event: CalendarEvent | None, why: str = "") -> None:
        """The item ``source_id`` is ``event`` now; ``None`` (cancelled, a series, not shown): it goes, ``why`` noted if given."""
        if event is None:
            self.delete(source_id)
            if why:
                self.skipped.append(why)
            return
        self.deleted.discard(source_id)
        self.events[source_id] = event

    def delete(self, source_id: str) -> None:
        """The item ``source_id`` was deleted: what TWP holds for it goes."""
        self.deleted.add(source_id)
        self.events.pop(source_id, None)

    def skip(self, why: str) -> None:
        """An item read but not shown, and not known by an id (or not to be deleted): ``why`` names it."""
        self.skipped.append(why)

    def changes(self, state: str, *, full: bool) -> CalendarChanges:
        return CalendarChanges(tuple(self.events.values()), tuple(sorted(self.deleted)), state, full=full, skipped=tuple(self.skipped))


def apply_changes(conn: sa.Connection, user_id: int, source: str, changes: CalendarChanges,
                  today: dt.datetime | None = None) -> dict[str, int]:
    """Write what a calendar connector read for one user: upsert changed events, delete the deleted ones.

    With ``changes.full`` every event of ``source`` for the user not in ``changes.events``
    is deleted.  Events that ended more than ``KEEP_PAST`` ago are not stored.  Raises
    ``CalendarError`` (nothing written) for an event that is not valid.
    """
    if not source or source == OWN_SOURCE or len(source) > 64:
        raise CalendarError(f"source: a provider name of 1-64 characters other than {OWN_SOURCE!r} is required", "source")
    oldest = (today or now()) - KEEP_PAST
    rows: dict[str, dict[str, Any]] = {}
    for ev in changes.events:
        if not ev.source_id:
            raise CalendarError(f"event {ev.subject[:40]!r} from {source} has no source id", "source_id")
        row = check({"user_id": user_id, "starts_at": utc(ev.start), "ends_at": utc(ev.end), "subject": (ev.subject or "")[:500],
                     "location": (ev.location or "")[:500], "show_as": ev.show_as, "private": bool(ev.private), "source": source,
                     "source_id": ev.source_id[:512]})
        rows[row["source_id"]] = row
    c = t.calendar_events.c
    mine = sa.and_(c.user_id == user_id, c.source == source)
    if changes.full:
        deleted = conn.execute(sa.delete(t.calendar_events).where(mine)).rowcount
    else:
        gone = sorted(set(changes.deleted) | set(rows))
        deleted = 0
        for start in range(0, len(gone), 500):
            deleted += conn.execute(sa.delete(t.calendar_events).where(mine, c.source_id.in_(gone[start:start + 500]))).rowcount
    kept = [dict(r, updated_at=now()) for r in rows.values() if r["ends_at"] > oldest]
    if kept:
        conn.execute(sa.insert(t.calendar_events), kept)
    return {"deleted": deleted, "written": len(kept)}


def sync_states(conn: sa.Connection, directory_id: int) -> dict[int, dict[str, Any]]:
    """The stored sync state of each user of a calendar connector, by user id."""
    s = t.calendar_sync_states
    return {r.user_id: dict(r._mapping) for r in conn.execute(sa.select(s).where(s.c.directory_id == directory_id))}


def save_state(conn: sa.Connection, directory_id: int, user_id: int, mailbox: str, state: str | None, error: str | None) -> None:
    """Remember where the user's sync stands (a success sets ``state``; a failure keeps it and sets ``error``)."""
    s = t.calendar_sync_states
    found = conn.execute(sa.select(s.c.user_id).where(s.c.directory_id == directory_id, s.c.user_id == user_id)).one_or_none()
    values: dict[str, Any] = {"mailbox": mailbox, "error": error[:1000] if error else None}
    if error is None:
        values.update(state=state, synced_at=now())
    if found is None:
        conn.execute(sa.insert(s).values(directory_id=directory_id, user_id=user_id, **values))
    else:
        conn.execute(sa.update(s).where(s.c.directory_id == directory_id, s.c.user_id == user_id).values(**values))


def calendar_users(conn: sa.Connection, domain_id: int) -> list[dict[str, Any]]:
    """Enabled users of a domain with an Email: whose calendars a connector of that domain reads (guide 8.7.4)."""
    u = t.users.c
    rows = conn.execute(sa.select(u.id, u.login, u.email).where(u.domain_id == domain_id, u.enabled.is_(True), u.email != "")
                        .order_by(u.id)).all()
    return [dict(r._mapping) for r in rows]


def forget_users(conn: sa.Connection, directory_id: int, source: str, keep: set[int]) -> int:
    """Drop the events and states of users no longer read by the connector (left the domain, disabled, no Email)."""
    s = t.calendar_sync_states
    users = [r.user_id for r in conn.execute(sa.select(s.c.user_id).where(s.c.directory_id == directory_id)) if r.user_id not in keep]
    c = t.calendar_events.c
    gone = conn.execute(sa.select(c.user_id).where(c.source == source).distinct()).scalars().all()
    users = sorted(set(users) | {uid for uid in gone if uid not in keep})
    if not users:
        return 0
    conn.execute(sa.delete(s).where(s.c.directory_id == directory_id, s.c.user_id.in_(users)))
    return conn.execute(sa.delete(t.calendar_events).where(c.source == source, c.user_id.in_(users))).rowcount


def forget_sources(conn: sa.Connection, prefixes: set[str], active: set[str]) -> int:
    """Drop events of calendar connectors that were removed or stopped reading calendars.

    A connector's source is ``<connector>:<directory id>``; ``prefixes`` are the connector
    types with the calendar capability, ``active`` the sources still read.
    """
    c = t.calendar_events.c
    sources = conn.execute(sa.select(c.source).where(c.source != OWN_SOURCE).distinct()).scalars().all()
    stale = [s for s in sources if s not in active and s.partition(":")[0] in prefixes and s.partition(":")[2].isdigit()]
    if not stale:
        return 0
    ids = [int(s.partition(":")[2]) for s in stale]
    conn.execute(sa.delete(t.calendar_sync_states).where(t.calendar_sync_states.c.directory_id.in_(ids)))
    return conn.execute(sa.delete(t.calendar_events).where(c.source.in_(stale))).rowcount


CALENDAR_CAPABILITY = "calendar"
"""The directory connector capability of a connector that reads users' calendars (``calendar_changes``)."""


@attrs.define(eq=False)
class CalendarStatus:
    """How a calendar connector is doing, like any instance's state: ``ready`` or failing with the reason."""

    state: str = "configured"
    """``configured`` (not read yet), ``ready``, ``retrying`` (server down), ``auth_failed``, ``error``, ``disabled``."""
    reason: str | None = None
    last_sync: float | None = None
    """When the last pass ended (Unix time)."""
    users: int = 0
    """Mailboxes read in the last pass."""
    failed: dict[str, str] = attrs.field(factory=dict)
    """login -> why that user's calendar could not be read in the last pass."""
    skipped: list[str] = attrs.field(factory=list)
    """Items read but not shown in the last pass, with the reason."""

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "last_sync": self.last_sync, "users": self.users,
                "failed": dict(self.failed), "skipped": list(self.skipped[:50])}


def source_of(row: dict[str, Any]) -> str:
    """The ``calendar_events.source`` of a calendar connector's events: ``<connector>:<directory id>`` (``exchange:3``)."""
    return f"{row['connector']}:{row['id']}"


class CalendarSync:
    """Reads users' calendars through the directories whose connector has the ``calendar`` capability.

    A directory of such a connector with the option ``calendar = true`` is a calendar
    connector (guide 8.6.2, 8.7.4, 8.9.6): every ``calendar_every`` seconds it reads, for
    each enabled user of the directory's domain with an Email, the changes of that
    mailbox's calendar since the state kept in ``calendar_sync_states`` and writes them to
    ``calendar_events`` (source ``<connector>:<directory id>``).  A user's events and state
    change in one transaction; a failure keeps the previous events.  Users of another
    domain are never read by it, so a company never sees another's events.
    """

    TICK = 5.0
    """Seconds between two looks at which connectors are due."""

    def __init__(self, directories: DirectoryService):
        self.directories = directories
        self.status: dict[int, CalendarStatus] = {}
        self._due: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="calendar-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("calendar sync pass failed")
            await asyncio.sleep(self.TICK)

    def _capable(self, connector: str) -> bool:
        cls = self.directories.connector_type(connector)
        return cls is not None and CALENDAR_CAPABILITY in getattr(cls, "capabilities", ())

    async def connectors(self) -> list[dict[str, Any]]:
        """The directories that read calendars: a connector with the capability and ``calendar = true``, not a draft."""
        assert self.directories.store is not None
        rows = await self.directories.store.read(directory_db.all_directories)
        return [r for r in rows if self._capable(r["connector"]) and r["type"] != "draft" and (r.get("options") or {}).get("calendar") is True]

    async def run_due(self, at: float | None = None) -> None:
        """Sync every calendar connector whose time has come; drop the events of removed ones."""
        assert self.directories.store is not None
        rows = await self.connectors()
        prefixes = {name for name in self.directories.plugins.types.get(Kind.DIRECTORY_CONNECTOR, {}) if self._capable(name)}
        await self.directories.store.run(forget_sources, prefixes, {source_of(r) for r in rows})
        now_ = time.time() if at is None else at
        for row in rows:
            if self._due.get(row["id"], 0.0) <= now_:
                await self.sync(row["id"])

    async def sync(self, directory_id: int) -> CalendarStatus:
        """Read the calendars of one calendar connector now (what the schedule does); its status after the pass."""
        lock = self._locks.setdefault(directory_id, asyncio.Lock())
        async with lock:
            return await self._sync(directory_id)

    async def _sync(self, directory_id: int) -> CalendarStatus:
        store = self.directories.store
        assert store is not None
        row = await store.read(directory_db.load_directory, directory_id)
        status = self.status.setdefault(directory_id, CalendarStatus())
        if row is None or not self._capable(row["connector"]) or (row.get("options") or {}).get("calendar") is not True:
            status.state, status.reason = "disabled", "not a calendar connector: set calendar = true on an Exchange or Google directory"
            return status
        state, reason = self.directories.state(row)
        if state in ("not_installed", "config_error", "disabled"):
            status.state, status.reason = ("error" if state != "disabled" else "disabled"), reason
            return status
        source = source_of(row)
        try:
            obj = self.directories.connector(row)
        except Exception as exc:  # noqa: BLE001 - shown as the connector's state
            self._set(status, row, "error", str(exc))
            return status
        every = float(getattr(obj.config, "calendar_every", 300))
        self._due[directory_id] = time.time() + every
        users = await store.read(calendar_users, row["domain_id"])
        known = await store.read(sync_states, directory_id)
        failed: dict[str, str] = {}
        kinds: set[str] = set()
        skipped: list[str] = []
        try:
            await obj.setup()
            for user in users:
                mailbox = user["email"].strip()
                previous = known.get(user["id"])
                token = previous["state"] if previous and previous["mailbox"] == mailbox.lower() else None
                try:
                    changes = await obj.calendar_changes(mailbox, token)
                    if previous and previous["mailbox"] != mailbox.lower() and not changes.full:
                        changes = attrs.evolve(changes, full=True)
                    await store.run(_write, directory_id, user["id"], mailbox.lower(), source, changes)
                    skipped += [f"{user['login']}: {why}" for why in changes.skipped]
                except NotReady:
                    raise
                except Exception as exc:  # noqa: BLE001 - one user's failure (refused mailbox, bad item) leaves the others
                    text = str(exc) or type(exc).__name__
                    failed[user["login"]] = text
                    kinds.add("auth_failed" if isinstance(exc, AuthFailed) else "error")
                    await store.run(save_state, directory_id, user["id"], mailbox.lower(), None, text)
            await store.run(forget_users, directory_id, source, {u["id"] for u in users})
        except NotReady as exc:
            status.failed, status.skipped = failed, skipped
            retry = min(every, 60.0)
            self._set(status, row, "retrying", f"{exc}; previous events kept, tried again in {retry:g} s")
            self._due[directory_id] = time.time() + retry
            return status
        except Exception as exc:  # noqa: BLE001 - setup failures are the connector's state
            state_ = "auth_failed" if isinstance(exc, AuthFailed) else "error"
            self._set(status, row, state_, f"{exc}; previous events kept")
            return status
        finally:
            try:
                await obj.close()
            except Exception:
                log.debug("closing calendar connector %s failed", row["name"], exc_info=True)
        status.users, status.failed, status.skipped = len(users), failed, skipped
        if users and len(failed) == len(users):
            first = next(iter(failed.items()))
            self._set(status, row, "auth_failed" if kinds == {"auth_failed"} else "error",
                      f"no calendar could be read; {first[0]}: {first[1]}")
        elif failed:
            first = next(iter(failed.items()))
            self._set(status, row, "ready", f"{len(failed)} of {len(users)} calendars failed, first {first[0]}: {first[1]}")
        else:
            self._set(status, row, "ready", None)
        status.last_sync = time.time()
        return status

    @staticmethod
    def _set(status: CalendarStatus, row: dict[str, Any], state: str, reason: str | None) -> None:
        if (state, reason) != (status.state, status.reason):
            level = logging.INFO if state == "ready" and not reason else logging.WARNING
            log.log(level, "calendar connector %s (directory %s): %s%s", row["name"], row["id"], state, f" ({reason})" if reason else "")
        status.state, status.reason = state, reason

    def as_json(self, directory_id: int) -> dict[str, Any]:
        return self.status.get(directory_id, CalendarStatus()).as_json()


def _write(conn: sa.Connection, directory_id: int, user_id: int, mailbox: str, source: str, changes: CalendarChanges) -> dict[str, int]:
    """One user's events and sync state, in one transaction."""
    counts = apply_changes(conn, user_id, source, changes)
    save_state(conn, directory_id, user_id, mailbox, changes.state, None)
    return counts
