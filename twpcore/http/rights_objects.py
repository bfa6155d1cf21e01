"""What users reach through their authorizations (guide 7.4): calendars, intercom groups, phone queues.

- Calendars (7.4.3): each user keeps calendar events (``/me/calendar/events``); a user
  granted the calendar of another user, or of one of its groups, reads that user's events,
  private ones showing only as busy.  Shareable between the domains of a company.
- Intercom groups (7.4.4): a granted user sees the telephony presence of the group's
  devices (``/intercom-groups/{id}/presence``, and live ``presence.changed`` events on the
  events WebSocket).  Shareable between domains.
- Phone queues (7.4.5): a granted user sees the calls waiting at the queue's number
  (``/phone-queues/{id}/calls``).  Grants never cross domains (refused when granted).

Another company's object answers 404, as if it did not exist; an object of the user's
company that is not granted answers 403 naming the authorization to ask for.
Administrators read intercom presence and queue calls of the companies they manage.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from twpcore import calendars, rights
from twpcore.auth import Principal, now
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, read_json
from twpcore.store import schema as t

MAX_WINDOW = dt.timedelta(days=400)
DEFAULT_WINDOW = dt.timedelta(days=7)


def _store(request: web.Request) -> Any:
    return request.app[KERNEL].store


def _calendar_error(exc: calendars.CalendarError) -> ApiError:
    return bad_request(str(exc), exc.field)


def _denied(what: str, guide: str, ask: str) -> ApiError:
    return ApiError(403, "not_granted", f"{what} is not granted to you (guide {guide}); ask an administrator for {ask}")


def _object(conn: sa.Connection, who: Principal, table: sa.Table, what: str, ident: int, *cols: sa.Column) -> Any:
    """The row with its company and domain name; 404 for another company's row (or one an admin does not manage)."""
    row = conn.execute(sa.select(table.c.id, table.c.domain_id, t.domains.c.company_id, t.domains.c.name.label("domain_name"), *cols)
                       .join(t.domains, t.domains.c.id == table.c.domain_id).where(table.c.id == ident)).one_or_none()
    visible = row is not None and (who.manages(row.company_id) if who.is_admin else row.company_id in who.companies)
    if not visible:
        raise ApiError(404, "not_found", f"{what} {ident} not found")
    return row


# -- calendars (7.4.3) ---------------------------------------------------------------------

def _window(request: web.Request) -> tuple[dt.datetime, dt.datetime]:
    try:
        start = calendars.parse_time(request.query["from"], "from") if "from" in request.query else None
        end = calendars.parse_time(request.query["to"], "to") if "to" in request.query else None
    except calendars.CalendarError as exc:
        raise _calendar_error(exc) from None
    if start is None:
        start = (end - DEFAULT_WINDOW) if end else now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = end or start + DEFAULT_WINDOW
    if end <= start:
        raise bad_request(f"to ({end.isoformat()}) must be after from ({start.isoformat()})", "to")
    if end - start > MAX_WINDOW:
        raise bad_request(f"from/to: a window of at most {MAX_WINDOW.days} days is answered; ask for a shorter one", "to")
    return start, end


async def my_events(request: web.Request) -> web.Response:
    who = principal(request)
    start, end = _window(request)
    rows = await _store(request).run(calendars.events_between, who.id, start, end)
    return web.json_response({"from": start.isoformat(), "to": end.isoformat(), "items": [calendars.as_json(r, owner=True) for r in rows]})


def _event_values(data: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = dict(existing or {"subject": "", "location": "", "show_as": "busy", "private": False})
    if existing is not None:
        values["starts_at"], values["ends_at"] = calendars.stored(values["starts_at"]), calendars.stored(values["ends_at"])
    try:
        for field, column in (("start", "starts_at"), ("end", "ends_at")):
            if field in data:
                values[column] = calendars.parse_time(data[field], field)
        for field in ("subject", "location", "show_as", "private"):
            if field in data:
                values[field] = data[field]
        calendars.check(values)
    except calendars.CalendarError as exc:
        raise _calendar_error(exc) from None
    return values


COLUMNS = ("starts_at", "ends_at", "subject", "location", "show_as", "private")


async def create_event(request: web.Request) -> web.Response:
    who = principal(request)
    values = _event_values(await read_json(request), None)

    def run(conn: sa.Connection) -> dict[str, Any]:
        return dict(conn.execute(sa.insert(t.calendar_events).values(user_id=who.id, source=calendars.OWN_SOURCE, **{k: values[k] for k in COLUMNS})
                                 .returning(*t.calendar_events.c)).one()._mapping)

    return web.json_response(calendars.as_json(await _store(request).run(run), owner=True), status=201)


def _own_event(conn: sa.Connection, who: Principal, ident: int, change: bool) -> dict[str, Any]:
    c = t.calendar_events.c
    row = conn.execute(sa.select(t.calendar_events).where(c.id == ident, c.user_id == who.id)).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"calendar event {ident} not found among your events")
    if change and row.source != calendars.OWN_SOURCE:
        raise ApiError(409, "read_only", f"calendar event {ident} comes from {row.source}; change it there, TWP shows what {row.source} says")
    return dict(row._mapping)


async def update_event(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    data = await read_json(request)

    def run(conn: sa.Connection) -> dict[str, Any]:
        row = _own_event(conn, who, ident, True)
        values = _event_values(data, row)
        return dict(conn.execute(sa.update(t.calendar_events).where(t.calendar_events.c.id == ident)
                                 .values(updated_at=now(), **{k: values[k] for k in COLUMNS}).returning(*t.calendar_events.c)).one()._mapping)

    return web.json_response(calendars.as_json(await _store(request).run(run), owner=True))


async def delete_event(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)

    def run(conn: sa.Connection) -> None:
        _own_event(conn, who, ident, True)
        conn.execute(sa.delete(t.calendar_events).where(t.calendar_events.c.id == ident))

    await _store(request).run(run)
    return web.Response(status=204)


async def user_events(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    start, end = _window(request)

    def run(conn: sa.Connection) -> dict[str, Any]:
        owner = _object(conn, who, t.users, "user", ident, t.users.c.login, t.users.c.first_name, t.users.c.last_name)
        if not rights.can_view_calendar(conn, who.id, ident):
            raise _denied(f"the calendar of user {owner.login}", "7.4.3", "a calendar authorization on the user or one of its groups")
        rows = calendars.events_between(conn, ident, start, end)
        return {"user": {"id": ident, "login": owner.login, "first_name": owner.first_name, "last_name": owner.last_name, "domain_id": owner.domain_id},
                "from": start.isoformat(), "to": end.isoformat(), "items": [calendars.as_json(r, owner=who.id == ident) for r in rows]}

    return web.json_response(await _store(request).run(run))


# -- intercom groups (7.4.4) ----------------------------------------------------------------

def _device_presence(tel: Any, domain_id: int, number: str) -> dict[str, Any]:
    """What the telephony service knows of a device: presence, do-not-disturb, whether it is supervised."""
    dev = tel.devices.get((domain_id, number))
    link = tel.links.get(dev.link) if dev is not None and dev.link else None
    supervised = bool(link and link.connected and number in link.monitored)
    model = tel.models.get(domain_id)
    return {"presence": model.presence.get(number, "idle") if model and supervised else "unknown",
            "do_not_disturb": bool(model and model.dnd.get(number, False)), "supervised": supervised,
            "reason": None if supervised else ((dev.reason if dev else None) or (link.last_error if link else None)
                                               or "no PBX link supervises this device's domain")}


async def my_intercom_groups(request: web.Request) -> web.Response:
    who = principal(request)

    def run(conn: sa.Connection) -> list[dict[str, Any]]:
        ids = rights.granted_ids(conn, who.id, "intercom_group")
        ig, igd = t.intercom_groups, t.intercom_group_devices
        count = sa.select(sa.func.count()).where(igd.c.intercom_group_id == ig.c.id).scalar_subquery()
        rows = conn.execute(sa.select(ig.c.id, ig.c.name, ig.c.domain_id, t.domains.c.name.label("domain"), count.label("devices"))
                            .join(t.domains, t.domains.c.id == ig.c.domain_id)
                            .where(ig.c.id.in_(ids or [-1]), t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
                            .order_by(ig.c.name, ig.c.id)).all()
        return [dict(r._mapping) for r in rows]

    return web.json_response({"items": await _store(request).run(run)})


async def intercom_presence(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)

    def run(conn: sa.Connection) -> tuple[Any, list[Any]]:
        group = _object(conn, who, t.intercom_groups, "intercom group", ident, t.intercom_groups.c.name)
        if not who.is_admin and not rights.user_can(conn, who.id, "intercom_group", f"intercom_group:{ident}"):
            raise _denied(f"intercom group {group.name}", "7.4.4", "an intercom group authorization for you or one of your groups")
        d, u = t.devices, t.users
        devices = conn.execute(sa.select(d.c.id, d.c.number, d.c.domain_id, d.c.user_id, u.c.first_name, u.c.last_name)
                               .join(t.intercom_group_devices, t.intercom_group_devices.c.device_id == d.c.id)
                               .outerjoin(u, u.c.id == d.c.user_id)
                               .where(t.intercom_group_devices.c.intercom_group_id == ident).order_by(d.c.number, d.c.id)).all()
        return group, devices

    group, devices = await _store(request).run(run)
    tel = request.app[KERNEL].telephony
    items = [{"device": r.number, "domain_id": r.domain_id, "user_id": r.user_id, "first_name": r.first_name, "last_name": r.last_name,
              **_device_presence(tel, r.domain_id, r.number)} for r in devices]
    return web.json_response({"id": group.id, "name": group.name, "domain_id": group.domain_id, "items": items})


# -- phone queues (7.4.5) -------------------------------------------------------------------

def _queue_calls(tel: Any, domain_id: int, number: str | None) -> dict[str, Any]:
    """Calls at the queue's number, longest waiting first (user guide 4.2), from the call model."""
    if not number:
        return {"supervised": False, "reason": "the phone queue has no number; give it the number of its device (guide 9.2.2)", "items": []}
    state = _device_presence(tel, domain_id, number)
    if (domain_id, number) not in tel.devices:
        state["reason"] = f"no supervised device {number} in the queue's domain; create a device with the queue's number (guide 9.2.2)"
    model = tel.models.get(domain_id)
    calls = model.calls_of(number) if model is not None and state["supervised"] else []
    moment = time.time()
    items = [{"call_id": c.call_id, "state": c.state, "caller": c.remote, "started_at": c.started_at, "waiting": round(max(0.0, moment - c.started_at), 1)}
             for c in calls]
    return {"supervised": state["supervised"], "reason": state["reason"], "items": items}


async def my_phone_queues(request: web.Request) -> web.Response:
    who = principal(request)

    def run(conn: sa.Connection) -> list[Any]:
        ids = rights.granted_ids(conn, who.id, "phone_queue")
        q = t.phone_queues
        return conn.execute(sa.select(q.c.id, q.c.name, q.c.number, q.c.domain_id).join(t.domains, t.domains.c.id == q.c.domain_id)
                            .where(q.c.id.in_(ids or [-1]), t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
                            .order_by(q.c.name, q.c.id)).all()

    tel = request.app[KERNEL].telephony
    rows = await _store(request).run(run)
    items = []
    for r in rows:
        calls = _queue_calls(tel, r.domain_id, r.number)
        items.append({"id": r.id, "name": r.name, "number": r.number, "domain_id": r.domain_id, "supervised": calls["supervised"],
                      "waiting": len(calls["items"])})
    return web.json_response({"items": items})


async def queue_calls(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)

    def run(conn: sa.Connection) -> Any:
        queue = _object(conn, who, t.phone_queues, "phone queue", ident, t.phone_queues.c.name, t.phone_queues.c.number)
        if not who.is_admin and not rights.user_can(conn, who.id, "phone_queue", f"phone_queue:{ident}"):
            raise _denied(f"phone queue {queue.name}", "7.4.5", "a phone queue authorization for you or one of your groups")
        return queue

    queue = await _store(request).run(run)
    calls = _queue_calls(request.app[KERNEL].telephony, queue.domain_id, queue.number)
    return web.json_response({"id": queue.id, "name": queue.name, "number": queue.number, "domain_id": queue.domain_id, **calls})


# -- routes ----------------------------------------------------------------------------------

WINDOW = (("from", "string", "start of the window, ISO 8601 with a time zone (default: today 00:00 UTC)"),
          ("to", "string", "end of the window (default: from + 7 days; at most 400 days)"))


def rights_objects_routes() -> list[Route]:
    event_props = {
        "start": {"type": "string", "description": "ISO 8601 with a time zone"},
        "end": {"type": "string", "description": "ISO 8601 with a time zone, after start"},
        "subject": {"type": "string", "maxLength": 500}, "location": {"type": "string", "maxLength": 500},
        "show_as": {"type": "string", "enum": list(calendars.SHOW_AS), "description": "free, tentative, busy (default) or away"},
        "private": {"type": "boolean", "description": "others see only busy, without subject or location"},
    }
    create_body = {"type": "object", "required": ["start", "end"], "additionalProperties": False, "properties": event_props}
    patch_body = {"type": "object", "additionalProperties": False, "properties": event_props}
    return [
        Route("GET", "/api/v1/me/calendar/events", my_events, "user", "Your calendar events in a window", "calendars", query=WINDOW),
        Route("POST", "/api/v1/me/calendar/events", create_event, "user", "Add an event to your calendar", "calendars", body=create_body, status=201),
        Route("PATCH", "/api/v1/me/calendar/events/{id}", update_event, "user", "Change one of your calendar events", "calendars", body=patch_body),
        Route("DELETE", "/api/v1/me/calendar/events/{id}", delete_event, "user", "Delete one of your calendar events", "calendars", status=204),
        Route("GET", "/api/v1/users/{id}/calendar/events", user_events, "user",
              "A user's calendar events, if their calendar is granted to you (guide 7.4.3)", "calendars", query=WINDOW),
        Route("GET", "/api/v1/me/intercom-groups", my_intercom_groups, "user", "The intercom groups granted to you (guide 7.4.4)", "intercom_groups"),
        Route("GET", "/api/v1/intercom-groups/{id}/presence", intercom_presence, "any",
              "Telephony presence of an intercom group's devices (guide 7.4.4)", "intercom_groups"),
        Route("GET", "/api/v1/me/phone-queues", my_phone_queues, "user", "The phone queues granted to you, with their waiting calls (guide 7.4.5)", "phone_queues"),
        Route("GET", "/api/v1/phone-queues/{id}/calls", queue_calls, "any", "Calls waiting at a phone queue, longest waiting first (guide 7.4.5)", "phone_queues"),
    ]
