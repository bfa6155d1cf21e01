"""Call logs, statistics and recordings endpoints (guide 7.4, 7.4.6, 9.4).

Who sees what:

- a user sees their own call log and recordings; their own statistics need the *Stats*
  (or *Stats Admin*) application (guide 9.4.1);
- another user's call log needs a ``call_log`` grant on that user or one of its groups
  (guide 7.4.6, same domain);
- another user's statistics need the *Stats Admin* application and a ``statistics``
  grant written the other way round (guide 7.4 and 9.4.2): the object is the viewer,
  the subjects are the users or groups whose statistics the viewer may see; recordings
  follow the same reverse rule with ``records`` grants;
- administrators read everything of the companies they manage.

Another company's user or group answers 404; the same company without the right, 403.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import attrs
from aiohttp import web

from twpcore.auth import Principal
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, not_found, path_int, principal, query_int, store_of
from twpcore.telephony import call_log_access as access
from twpcore.telephony import call_logs as cl

UTC = access.UTC
DEFAULT_DAYS = 30
"""Statistics cover the last 30 days when ``from`` is not given."""


def _zone(request: web.Request) -> dt.tzinfo:
    """The ``tz`` query parameter: an IANA time zone for dates and periods (default UTC)."""
    name = (request.query.get("tz") or "UTC").strip()
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" names a directory: IsADirectoryError
        raise bad_request(f'query parameter tz: unknown time zone "{name[:64]}"; use an IANA name such as Europe/Paris, or UTC', "tz") from None


_DATE_OR_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?")
"""What the document's ``format: date`` and ``format: date-time`` (RFC 3339, with its offset) accept."""


def _time(request: web.Request, name: str, end: bool = False, zone: dt.tzinfo = UTC) -> dt.datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if "T" in raw and " " in raw:
        raw = raw.replace(" ", "+")  # an unencoded "+01:00" offset arrives as " 01:00"
    try:
        if not _DATE_OR_TIME.fullmatch(raw):
            raise ValueError(raw)
        raw = raw.upper()
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            value = dt.datetime(day.year, day.month, day.day, tzinfo=zone)  # midnight where the reader is
            return (value + dt.timedelta(days=1) if end else value).astimezone(UTC)  # "to" a date includes that day
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f'query parameter {name}: expected a date (2026-11-22) or a date and time with its offset (2026-11-22T08:30:00Z), got "{raw[:40]}"', name
        ) from None
    return value.replace(tzinfo=zone).astimezone(UTC) if value.tzinfo is None else value.astimezone(UTC)


def _range(request: web.Request, zone: dt.tzinfo = UTC) -> tuple[dt.datetime | None, dt.datetime | None]:
    start, end = _time(request, "from", zone=zone), _time(request, "to", end=True, zone=zone)
    if start and end and end <= start:
        raise bad_request(f"query parameters from/to: to ({end.isoformat()}) must come after from ({start.isoformat()})", "to")
    return start, end


def not_granted(detail: str) -> ApiError:
    return ApiError(403, "not_granted", detail)


async def _checked_user(request: web.Request, object_type: str) -> tuple[Principal, Any]:
    """The user of the path, once the caller is allowed to see its ``object_type``."""
    who = principal(request)
    user_id = path_int(request)

    user, refusal = await store_of(request).run(access.check_user, who, user_id, object_type)
    if user is None:
        raise not_found("user", user_id)
    if refusal:
        raise not_granted(refusal)
    return who, user


def _paging(request: web.Request) -> tuple[int, int]:
    return query_int(request, "limit", 50, lo=1, hi=500) or 50, query_int(request, "offset", 0) or 0


async def _log_of(request: web.Request, user_id: int) -> web.Response:
    direction = _direction(request)
    missed_raw = (request.query.get("missed") or "").lower()
    if missed_raw not in ("", "true", "false", "1", "0", "yes", "no"):
        raise bad_request(f'query parameter missed: expected true or false, got "{missed_raw}"', "missed")
    q = (request.query.get("q") or "").strip()
    if len(q) > 100:
        raise bad_request("query parameter q: at most 100 characters", "q")
    start, end = _range(request)
    limit, offset = _paging(request)
    body = await store_of(request).run(lambda c: cl.list_entries(
        c, user_id, direction=direction, missed=missed_raw in ("true", "1", "yes"), start=start, end=end, q=q or None, limit=limit, offset=offset))
    return web.json_response(body)


async def my_call_log(request: web.Request) -> web.Response:
    return await _log_of(request, principal(request).id)


async def user_call_log(request: web.Request) -> web.Response:
    _, user = await _checked_user(request, "call_log")
    return await _log_of(request, user.id)


async def delete_my_entry(request: web.Request) -> web.Response:
    who, entry_id = principal(request), path_int(request)
    if not await store_of(request).run(cl.hide_entry, who.id, entry_id):
        raise not_found("call log entry", entry_id)
    return web.Response(status=204)


def _direction(request: web.Request) -> str | None:
    direction = request.query.get("direction") or None
    if direction is not None and direction not in cl.FILTERS:
        raise bad_request(f'query parameter direction: expected one of {", ".join(cl.FILTERS)}, got "{direction}"', "direction")
    return direction


def _stats_query(request: web.Request) -> access.StatsQuery:
    zone = _zone(request)
    start, end = _range(request, zone)
    end = end or dt.datetime.now(UTC)
    start = start or end - dt.timedelta(days=DEFAULT_DAYS)
    group_by = request.query.get("group_by") or None
    if group_by is not None and group_by not in cl.GROUPINGS:
        raise bad_request(f'query parameter group_by: expected one of {", ".join(cl.GROUPINGS)}, got "{group_by}"', "group_by")
    number = (request.query.get("number") or "").strip() or None
    if number is not None and (len(number) > 64 or not any(ch.isdigit() for ch in number)):
        raise bad_request(f'query parameter number: expected a phone number, got "{number[:64]}"', "number")
    return access.StatsQuery(start, end, group_by, _direction(request), number, zone)


async def my_statistics(request: web.Request) -> web.Response:
    who, query, kernel = principal(request), _stats_query(request), request.app[KERNEL]

    refusal, stats = await store_of(request).run(access.own_statistics, who, query, kernel.dialing_plans)
    if refusal:
        raise not_granted(refusal)
    return web.json_response(query.answer(**stats["users"][who.id]))


async def user_statistics(request: web.Request) -> web.Response:
    query, kernel = _stats_query(request), request.app[KERNEL]
    _, user = await _checked_user(request, "statistics")
    stats = await store_of(request).run(query.run, kernel.dialing_plans, [user.id])
    return web.json_response(query.answer(**stats["users"][user.id]))


async def group_statistics(request: web.Request) -> web.Response:
    who, group_id, query, kernel = principal(request), path_int(request), _stats_query(request), request.app[KERNEL]

    found = await store_of(request).run(access.group_statistics, who, group_id, query, kernel.dialing_plans)
    if found is None:
        raise not_found("group", group_id)
    group, body = found
    if body is None:
        raise not_granted(f"you may see the statistics of no member of group {group.name}; an administrator grants statistics with object "
                          f"user:{who.id} to the group or its members, and the StatsAdmin application (guide 7.4, 9.4.2)")
    return web.json_response(query.answer(group_id=group.id, group=group.name, **body))


async def _records_of(request: web.Request, user_id: int) -> web.Response:
    start, end = _range(request)
    limit, offset = _paging(request)
    return web.json_response(await store_of(request).run(cl.list_recordings, user_id, start, end, limit, offset))


async def my_records(request: web.Request) -> web.Response:
    return await _records_of(request, principal(request).id)


async def user_records(request: web.Request) -> web.Response:
    _, user = await _checked_user(request, "records")
    return await _records_of(request, user.id)


PAGING = (("limit", "integer", "page size, 1-500 (default 50)", {"minimum": 1, "maximum": 500}), ("offset", "integer", "items to skip"))
DATE = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}
RANGE = (("from", "string", "start: a date (2026-11-22, midnight in the tz time zone) or an RFC 3339 date and time (2026-11-22T08:30:00Z)", DATE),
         ("to", "string", "end (excluded); a date includes that whole day", DATE))
LOG_QUERY = (
    ("direction", "string", "incoming, outgoing, internal or external", {"enum": list(cl.FILTERS)}),
    ("missed", "boolean", "only missed incoming calls"),
    ("q", "string", "the other party's number or name contains this text"),
    *RANGE,
    *PAGING,
)
STATS_QUERY = (
    *RANGE,
    ("group_by", "string", "hour, day, month, year or weekday (of the tz time zone); totals only when absent", {"enum": list(cl.GROUPINGS)}),
    ("tz", "string", "IANA time zone of dates and periods, e.g. Europe/Paris (default UTC)"),
    ("direction", "string", "incoming, outgoing, internal or external calls only", {"enum": list(cl.FILTERS)}),
    ("number", "string", "calls with this correspondent only (as presented or in canonical form)"),
)


def call_log_routes() -> list[Route]:
    routes = [
        Route(
            "GET", "/api/v1/me/call-logs", my_call_log, "user", "The caller's call log, newest first (filters, paging)", "call logs", query=LOG_QUERY
        ),
        Route(
            "DELETE",
            "/api/v1/me/call-logs/{id}",
            delete_my_entry,
            "user",
            "Remove an entry from the caller's call log (statistics keep it)",
            "call logs",
            status=204,
        ),
        Route(
            "GET",
            "/api/v1/users/{id}/call-logs",
            user_call_log,
            "any",
            "A user's call log: for holders of a call_log grant (guide 7.4.6) and admins",
            "call logs",
            query=LOG_QUERY,
        ),
        Route(
            "GET",
            "/api/v1/me/statistics",
            my_statistics,
            "user",
            "The caller's call statistics (needs the Stats application)",
            "statistics",
            query=STATS_QUERY,
        ),
        Route(
            "GET",
            "/api/v1/users/{id}/statistics",
            user_statistics,
            "any",
            "A user's call statistics: StatsAdmin plus a reverse statistics grant (guide 7.4, 9.4.2), or an admin",
            "statistics",
            query=STATS_QUERY,
        ),
        Route(
            "GET",
            "/api/v1/groups/{id}/statistics",
            group_statistics,
            "any",
            "Call statistics of the group members the caller may see, and their totals",
            "statistics",
            query=STATS_QUERY,
        ),
        Route("GET", "/api/v1/me/records", my_records, "user", "The caller's call recordings (metadata)", "records", query=(*RANGE, *PAGING)),
        Route(
            "GET",
            "/api/v1/users/{id}/records",
            user_records,
            "any",
            "A user's call recordings (metadata): reverse records grant (guide 7.4) or admin",
            "records",
            query=(*RANGE, *PAGING),
        ),
    ]
    return [attrs.evolve(r, rules=RULES if r.query is STATS_QUERY else RULES[:1]) if r.method == "GET" else r for r in routes]


RULES = ("to must be after from", "tz is an IANA time zone name such as Europe/Paris, or UTC")

