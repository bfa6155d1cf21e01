"""TWP presence (user guide 3): each user's state and message, and what a colleague sees of them.

A user's TWP state is one of ``online``, ``busy``, ``absent``, ``offline`` (the guide's
connecté, occupé, absent, déconnecté) with an optional custom message
(``AuthorizedCustomMessagePresences``).  It is set by the user, by inactivity a client
reports (``absent`` until activity comes back, user guide 3.2.2) or by a profile switched on
by its schedule (user guide 5.1, ``profiles.presence``).

What a colleague sees (``view``) combines three parts, each under its own right:

- the TWP state: every user of the same company (companies share nothing);
- telephony presence (idle, ringing, busy, forwarded, do-not-disturb of the user's devices):
  the user themselves, or a colleague whose ``AuthorizedPhoneSupervisionPresences`` is Yes and
  who is granted an intercom group holding one of the devices (guide 7.4.4);
- calendar presence (the event under way): a colleague whose ``AuthorizedCalendarPresences``
  is Yes and who is granted the user's calendar (guide 7.4.3); the subject and place only with
  ``DisplayCalendarSummary``; a private event shows as busy without details unless
  ``DisplayCalendarPrivate`` is Yes (guide 9.1.3).

Changes of the TWP state reach the company's users as ``user_presence.changed`` events on
the WebSocket; telephony presence keeps its own ``presence.changed`` events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import calendars, rights
from twpcore.events import Event, EventBus
from twpcore.parameters import ParameterRegistry
from twpcore.rules.model import DAYS, PRESENCE_STATES, RuleError
from twpcore.store import Store
from twpcore.store import schema as t

log = logging.getLogger(__name__)
SOURCES = ("default", "user", "inactivity", "profile")
MESSAGE_LENGTH = 200
SCHEDULE_TICK = 60.0
"""Seconds between two looks at the profiles' schedules."""
EVENT_TYPE = "user_presence.changed"


@attrs.frozen
class Presence:
    """A user's TWP presence."""

    state: str = "online"
    message: str = ""
    source: str = "default"
    since: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "source": self.source,
                "since": dt.datetime.fromtimestamp(self.since, dt.UTC).isoformat() if self.since else None}


def _stamp(value: dt.datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def schedule_matches(schedule: dict[str, Any], at: dt.datetime) -> bool:
    """Whether a profile's schedule (days, from, to, timezone) holds at ``at``."""
    import zoneinfo

    local = at.astimezone(zoneinfo.ZoneInfo(schedule.get("timezone") or "UTC"))
    if schedule.get("days") and DAYS[local.weekday()] not in schedule["days"]:
        return False
    lo = int(schedule["from"][:2]) * 60 + int(schedule["from"][3:])
    hi = int(schedule["to"][:2]) * 60 + int(schedule["to"][3:])
    minute = local.hour * 60 + local.minute
    return lo <= minute < hi if lo < hi else (minute >= lo or minute < hi)


class PresenceService:
    """Keeps every user's TWP presence in memory (read on the call path by the rules) and in the store."""

    def __init__(self, events: EventBus, parameters: ParameterRegistry, telephony: Any, store: Callable[[], Store | None]):
        self.events = events
        self.parameters = parameters
        self.telephony = telephony
        """The telephony service: its call models give telephony presence."""
        self._store = store
        self.states: dict[int, Presence] = {}
        """user id → TWP presence, for users whose state was ever set."""
        self.users: dict[int, tuple[int, int]] = {}
        """user id → (company id, domain id) of every enabled user."""
        self.company_users: dict[int, frozenset[int]] = {}
        """company id → its enabled users: who sees a user's TWP state change."""
        self.on_profile_switch: Callable[[int], Awaitable[None]] | None = None
        """Called after a schedule switched a user's profile (the rules service re-applies simple rules)."""
        self._matching: dict[int, bool] = {}
        self._tasks: list[asyncio.Task] = []

    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the presence service has no store: the kernel has not started it")
        return store

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_users()))
        self._tasks.append(loop.create_task(self._tick()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def refresh(self) -> None:
        def load(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
            users = conn.execute(sa.select(t.users.c.id, t.users.c.domain_id, t.domains.c.company_id)
                                 .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(t.users.c.enabled.is_(True))).all()
            return list(users), list(conn.execute(sa.select(t.presence_states)).all())

        users, states = await self.store().read(load)
        self.users = {u.id: (u.company_id, u.domain_id) for u in users}
        by_company: dict[int, set[int]] = {}
        for u in users:
            by_company.setdefault(u.company_id, set()).add(u.id)
        self.company_users = {c: frozenset(ids) for c, ids in by_company.items()}
        self.states = {s.user_id: Presence(s.state, s.message, s.source, _stamp(s.updated_at)) for s in states}

    async def _watch_users(self) -> None:
        sub = self.events.subscribe(lambda e: e.type.startswith(("admin.user.", "admin.domain.", "admin.company.")), name="presence")
        try:
            while True:
                await sub.get()
                await asyncio.sleep(0.2)  # a users import sends many events: one refresh for the burst
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.lagging = False  # a resync among them changes nothing: the refresh reads everything
                try:
                    await self.refresh()
                except Exception:  # keep watching whatever one refresh did
                    log.exception("presence: refresh of the users failed; watchers stay as they were")
        finally:
            self.events.unsubscribe(sub)

    async def _tick(self) -> None:
        while True:
            try:
                await self.apply_schedules(dt.datetime.now(dt.UTC))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next tick tries again
                log.exception("presence: profile schedules could not be applied")
            await asyncio.sleep(SCHEDULE_TICK)

    # -- the TWP state ------------------------------------------------------------------------------
    def state_of(self, user_id: int) -> Presence:
        return self.states.get(user_id, Presence())

    async def set_state(self, user_id: int, state: str, message: str = "", source: str = "user", *, checked: bool = False) -> Presence:
        """Set a user's TWP state (``checked``: the caller already applied ``AuthorizedCustomMessagePresences``)."""
        if state not in PRESENCE_STATES:
            raise RuleError(f"state: expected one of {', '.join(PRESENCE_STATES)}, got {str(state)[:20]!r}", "state")
        if not isinstance(message, str) or len(message) > MESSAGE_LENGTH:
            raise RuleError(f"message: text of at most {MESSAGE_LENGTH} characters", "message")
        message = message.strip()
        if message and not checked:
            allowed = await self.store().read(lambda c: self.parameters.resolve_one(c, user_id, "AuthorizedCustomMessagePresences").as_bool())
            if not allowed:
                raise RuleError("message: parameter AuthorizedCustomMessagePresences is No for you (admin guide 9.1.8); ask an administrator "
                                "to set it to Yes, or leave the message out", "message", status=403)
        before = self.state_of(user_id)
        keep_previous = source == "inactivity" and before.source != "inactivity"

        def write(conn: sa.Connection) -> list[Any]:
            values = {"state": state, "message": message, "source": source, "updated_at": dt.datetime.now(dt.UTC)}
            if keep_previous:
                values.update(previous_state=before.state, previous_message=before.message)
            elif source != "inactivity":
                values.update(previous_state=None, previous_message=None)
            done = conn.execute(sa.update(t.presence_states).where(t.presence_states.c.user_id == user_id).values(**values)).rowcount
            if not done:
                conn.execute(sa.insert(t.presence_states).values(user_id=user_id, **values))
            # Who watches: the company's enabled users as they are now (the cache may not have seen a user created a moment ago).
            company = sa.select(t.domains.c.company_id).join(t.users, t.users.c.domain_id == t.domains.c.id).where(t.users.c.id == user_id)
            return list(conn.execute(sa.select(t.users.c.id, t.users.c.domain_id, t.domains.c.company_id)
                                     .join(t.domains, t.domains.c.id == t.users.c.domain_id)
                                     .where(t.domains.c.company_id == company.scalar_subquery(), t.users.c.enabled.is_(True))).all())

        colleagues = await self.store().run(write)
        if colleagues:
            self.company_users[colleagues[0].company_id] = frozenset(u.id for u in colleagues)
            self.users.update({u.id: (u.company_id, u.domain_id) for u in colleagues})
        now = Presence(state, message, source, dt.datetime.now(dt.UTC).timestamp())
        self.states[user_id] = now
        if (before.state, before.message) != (state, message):
            self.publish(user_id, now)
        return now

    def publish(self, user_id: int, presence: Presence) -> None:
        """One event for the user's company: every colleague's WebSocket receives it."""
        company_id, domain_id = self.users.get(user_id, (None, None))
        watchers = self.company_users.get(company_id, frozenset()) if company_id is not None else frozenset({user_id})
        self.events.publish(Event(EVENT_TYPE, {"user_id": user_id, **presence.as_json()}, company_id, domain_id, watchers))

    async def report_activity(self, user_id: int, idle: bool) -> Presence:
        """A client says its user is idle (``absent`` from now on) or active again (the state before comes back)."""
        current = self.state_of(user_id)
        if idle:
            if current.state != "online":
                return current  # busy, absent or offline on purpose: inactivity changes nothing
            return await self.set_state(user_id, "absent", current.message, "inactivity", checked=True)
        if current.source != "inactivity":
            return current
        row = await self.store().read(lambda c: c.execute(sa.select(t.presence_states.c.previous_state, t.presence_states.c.previous_message)
                                                           .where(t.presence_states.c.user_id == user_id)).first())
        state = (row.previous_state if row and row.previous_state else "online")
        return await self.set_state(user_id, state, (row.previous_message or "") if row else "", "user", checked=True)

    # -- profiles switched by their schedule (user guide 5.1) ---------------------------------------------
    async def apply_schedules(self, at: dt.datetime) -> list[tuple[int, int]]:
        """Switch to each profile whose schedule starts to hold at ``at``; returns the (user id, profile id) switched."""
        rows = await self.store().read(lambda c: c.execute(sa.select(t.profiles.c.id, t.profiles.c.user_id, t.profiles.c.active,
                                                                     t.profiles.c.schedule, t.profiles.c.presence)
                                                           .where(t.profiles.c.schedule.is_not(None))).all())
        switched = []
        for r in rows:
            if not r.schedule:
                continue
            matching = schedule_matches(r.schedule, at)
            entering = matching and not self._matching.get(r.id, False)
            self._matching[r.id] = matching
            if not entering:
                continue
            if not r.active:
                await self.store().run(_activate, r.user_id, r.id)
                switched.append((r.user_id, r.id))
                if self.on_profile_switch is not None:
                    await self.on_profile_switch(r.user_id)
            if r.presence:
                await self.set_state(r.user_id, r.presence, "", "profile", checked=True)
        return switched

    # -- what a colleague sees -----------------------------------------------------------------------
    def view(self, conn: sa.Connection, who: Any, user_id: int, at: dt.datetime) -> dict[str, Any]:
        """What ``who`` sees of user ``user_id``'s presence (blocking: run through the store); 404 when not visible."""
        row = rights.visible_row(conn, who, t.users, user_id, t.users.c.login, t.users.c.first_name, t.users.c.last_name)
        if row is None:
            raise RuleError(f"user {user_id} not found", "id", status=404)
        own = not who.is_admin and who.id == user_id
        sw = {"AuthorizedPhoneSupervisionPresences": True, "AuthorizedCalendarPresences": True, "DisplayCalendarSummary": True,
              "DisplayCalendarPrivate": True}
        if not who.is_admin and not own:
            sw = {n: r.as_bool() for n, r in self.parameters.resolve(conn, who.id, list(sw)).items()}
        out: dict[str, Any] = {"user": {"id": user_id, "login": row.login, "first_name": row.first_name, "last_name": row.last_name},
                               "twp": self.state_of(user_id).as_json()}
        out["telephony"], out["telephony_hidden"] = self._telephony(conn, who, own, user_id, sw["AuthorizedPhoneSupervisionPresences"])
        out["calendar"], out["calendar_hidden"] = self._calendar(conn, who, own, user_id, at, sw)
        out["shown"] = shown(out)
        return out

    def _telephony(self, conn: sa.Connection, who: Any, own: bool, user_id: int, allowed: bool) -> tuple[list[dict[str, Any]] | None, str | None]:
        d = t.devices.c
        devices = conn.execute(sa.select(d.id, d.number, d.domain_id).where(d.user_id == user_id).order_by(d.id)).all()
        if not (own or who.is_admin):
            if not allowed:
                return None, "parameter AuthorizedPhoneSupervisionPresences is No for you (admin guide 9.1.8)"
            granted = set(rights.granted_ids(conn, who.id, "intercom_group"))
            igd = t.intercom_group_devices.c
            seen = set(conn.execute(sa.select(igd.device_id).where(igd.intercom_group_id.in_(sorted(granted) or [-1]),
                                                                   igd.device_id.in_([x.id for x in devices] or [-1]))).scalars())
            devices = [x for x in devices if x.id in seen]
            if not devices:
                return None, "no intercom group holding this user's devices is granted to you (guide 7.4.4)"
        out = []
        for dev in devices:
            model = self.telephony.models.get(dev.domain_id)
            known = (dev.domain_id, dev.number) in self.telephony.devices
            out.append({"device": dev.number,
                        "presence": (model.presence.get(dev.number, "idle") if model else "idle") if known else "unknown",
                        "forwarding": dict(model.forwarding.get(dev.number, {})) if model else {},
                        "do_not_disturb": bool(model.dnd.get(dev.number, False)) if model else False})
        return out, None

    def _calendar(self, conn: sa.Connection, who: Any, own: bool, user_id: int, at: dt.datetime,
                  sw: dict[str, bool]) -> tuple[dict[str, Any] | None, str | None]:
        if not (own or who.is_admin):
            if not sw["AuthorizedCalendarPresences"]:
                return None, "parameter AuthorizedCalendarPresences is No for you (admin guide 9.1.8)"
            if not rights.can_view_calendar(conn, who.id, user_id):
                return None, "this user's calendar is not granted to you (guide 7.4.3)"
        events = [e for e in calendars.events_between(conn, user_id, at, at + dt.timedelta(seconds=1)) if e["show_as"] != "free"]
        if not events:
            return {"state": "free", "until": None}, None
        order = {"away": 0, "busy": 1, "tentative": 2}
        event = sorted(events, key=lambda e: (order.get(e["show_as"], 3), e["starts_at"]))[0]
        private = bool(event["private"])
        details = sw["DisplayCalendarSummary"] and (not private or sw["DisplayCalendarPrivate"])
        state = "busy" if private and not sw["DisplayCalendarPrivate"] else event["show_as"]
        shown_event: dict[str, Any] = {"state": state, "until": calendars.iso(event["ends_at"]),
                                       "since": calendars.iso(event["starts_at"])}
        if details:
            shown_event.update(subject=event["subject"], location=event["location"], private=private)
        return shown_event, None


def shown(view: dict[str, Any]) -> str:
    """The one word a contact list shows: on the phone or ringing first, then a busy or away calendar event, then the TWP state."""
    phones = view.get("telephony") or []
    if any(p["presence"] == "busy" for p in phones):
        return "on_the_phone"
    if any(p["presence"] == "ringing" for p in phones):
        return "ringing"
    cal = view.get("calendar") or {}
    if cal.get("state") in ("busy", "away") and view["twp"]["state"] not in ("offline",):
        return "in_a_meeting" if cal["state"] == "busy" else "away_in_calendar"
    return str(view["twp"]["state"])


def _activate(conn: sa.Connection, user_id: int, profile_id: int) -> None:
    conn.execute(sa.update(t.profiles).where(t.profiles.c.user_id == user_id).values(active=t.profiles.c.id == profile_id))
