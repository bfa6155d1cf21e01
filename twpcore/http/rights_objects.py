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

from aiohttp import web

from twpcore import calendars
from twpcore.auth import now
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, read_json, store_of
from twpcore.telephony import granted_objects as granted

MAX_WINDOW = dt.timedelta(days=400)
DEFAULT_WINDOW = dt.timedelta(days=7)


def _calendar_error(exc: calendars.CalendarError) -> ApiError:
    return bad_request(str(exc), exc.field)


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
    rows = await store_of(request).run(calendars.events_between, who.id, start, end)
    return web.json_response({"from": start.isoformat(), "to": end.isoformat(), "items": [calendars.as_json(r, owner=True) for r in rows]})


async def create_event(request: web.Request) -> web.Response:
    who = principal(request)
    try:
        values = calendars.event_values(await read_json(request), None)
    except calendars.CalendarError as exc:
        raise _calendar_error(exc) from None
    return web.json_response(calendars.as_json(await store_of(request).run(calendars.create_own_event, who.id, values), owner=True), status=201)


async def update_event(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    data = await read_json(request)
    try:
        row = await store_of(request).run(calendars.update_own_event, who.id, ident, data)
    except calendars.CalendarError as exc:
        raise _calendar_error(exc) from None
    return web.json_response(calendars.as_json(row, owner=True))


async def delete_event(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    await store_of(request).run(calendars.delete_own_event, who.id, ident)
    return web.Response(status=204)


async def user_events(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    start, end = _window(request)
    return web.json_response(await store_of(request).run(calendars.user_calendar, who, ident, start, end))


# -- intercom groups (7.4.4) ----------------------------------------------------------------

async def my_intercom_groups(request: web.Request) -> web.Response:
    return web.json_response({"items": await store_of(request).run(granted.my_intercom_groups, principal(request))})


async def intercom_presence(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    group, devices = await store_of(request).run(granted.intercom_group_devices, who, ident)
    return web.json_response(granted.intercom_presence(group, devices, request.app[KERNEL].telephony))


# -- phone queues (7.4.5) -------------------------------------------------------------------

async def my_phone_queues(request: web.Request) -> web.Response:
    rows = await store_of(request).run(granted.my_phone_queues, principal(request))
    return web.json_response({"items": granted.queue_summaries(rows, request.app[KERNEL].telephony)})


async def queue_calls(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    queue = await store_of(request).run(granted.phone_queue, who, ident)
    calls = granted.queue_calls(request.app[KERNEL].telephony, queue.domain_id, queue.number)
    return web.json_response({"id": queue.id, "name": queue.name, "number": queue.number, "domain_id": queue.domain_id, **calls})


# -- routes ----------------------------------------------------------------------------------

WINDOW = (("from", "string", "start of the window, ISO 8601 with a time zone (default: today 00:00 UTC)", {"format": "date-time"}),
          ("to", "string", "end of the window (default: from + 7 days; at most 400 days)", {"format": "date-time"}))
WINDOW_RULES = ("to must be after from", f"the window from-to spans at most {MAX_WINDOW.days} days")
EVENT_RULE = "an event's end must be after its start"


def rights_objects_routes() -> list[Route]:
    event_props = {
        "start": {"type": "string", "format": "date-time", "description": "ISO 8601 with a time zone"},
        "end": {"type": "string", "format": "date-time", "description": "ISO 8601 with a time zone, after start"},
        "subject": {"type": "string", "maxLength": 500}, "location": {"type": "string", "maxLength": 500},
        "show_as": {"type": "string", "enum": list(calendars.SHOW_AS), "description": "free, tentative, busy (default) or away"},
        "private": {"type": "boolean", "description": "others see only busy, without subject or location"},
    }
    create_body = {"type": "object", "required": ["start", "end"], "additionalProperties": False, "properties": event_props}
    patch_body = {"type": "object", "additionalProperties": False, "properties": event_props}
    return [
        Route("GET", "/api/v1/me/calendar/events", my_events, "user", "Your calendar events in a window", "calendars", query=WINDOW,
              rules=WINDOW_RULES),
        Route("POST", "/api/v1/me/calendar/events", create_event, "user", "Add an event to your calendar", "calendars", body=create_body, status=201,
              rules=(EVENT_RULE,)),
        Route("PATCH", "/api/v1/me/calendar/events/{id}", update_event, "user", "Change one of your calendar events", "calendars", body=patch_body,
              rules=(EVENT_RULE,)),
        Route("DELETE", "/api/v1/me/calendar/events/{id}", delete_event, "user", "Delete one of your calendar events", "calendars", status=204),
        Route("GET", "/api/v1/users/{id}/calendar/events", user_events, "user",
              "A user's calendar events, if their calendar is granted to you (guide 7.4.3)", "calendars", query=WINDOW, rules=WINDOW_RULES),
        Route("GET", "/api/v1/me/intercom-groups", my_intercom_groups, "user", "The intercom groups granted to you (guide 7.4.4)", "intercom_groups"),
        Route("GET", "/api/v1/intercom-groups/{id}/presence", intercom_presence, "any",
              "Telephony presence of an intercom group's devices (guide 7.4.4)", "intercom_groups"),
        Route("GET", "/api/v1/me/phone-queues", my_phone_queues, "user", "The phone queues granted to you, with their waiting calls (guide 7.4.5)",
              "phone_queues"),
        Route("GET", "/api/v1/phone-queues/{id}/calls", queue_calls, "any", "Calls waiting at a phone queue, longest waiting first (guide 7.4.5)",
              "phone_queues"),
    ]
