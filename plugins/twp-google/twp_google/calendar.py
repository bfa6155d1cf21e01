"""Users' Google calendars for calendar presence (guide 8.9.6), read incrementally with the Calendar API.

``GoogleConnector.calendar_changes(mailbox, state)`` acts for the user (domain-wide
delegation, scope ``calendar.readonly``) and lists the events of their primary calendar
(Calendar API v3 ``events.list``, ``singleEvents=true`` so that Google expands recurring
series into their instances).  With no state it lists every event (``full``); with the
``nextSyncToken`` of the previous call it lists only what changed since, deleted events
included (``status: "cancelled"``).  Google answers HTTP 410 when a sync token expired:
the connector then lists everything again and says so (``full``).

What an event becomes: ``visibility`` private or confidential marks it private;
``transparency: transparent`` ("Show as available") is ``free``, ``eventType: outOfOffice``
``away``, ``status: tentative`` ``tentative``, anything else ``busy``; a working-location
entry is not an absence and is skipped; an all-day event (``date`` rather than
``dateTime``) runs from 00:00 UTC of its first day to 00:00 UTC of its end date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from twpcore.plugin_api import CalendarEvent

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, dict):
        return None
    try:
        if value.get("dateTime"):
            moment = dt.datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
            return moment if moment.tzinfo is not None else None
        if value.get("date"):
            day = dt.date.fromisoformat(str(value["date"]))
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    except ValueError:
        return None
    return None


def calendar_event(entry: dict[str, Any]) -> tuple[CalendarEvent | None, str]:
    """A Calendar API event resource as a ``CalendarEvent``, or ``None`` and why it is not shown."""
    summary = str(entry.get("summary") or "")
    if entry.get("eventType") == "workingLocation":
        return None, ""
    start, end = _when(entry.get("start")), _when(entry.get("end"))
    if start is None or end is None:
        return None, f'event "{summary[:60]}" ({entry.get("id")}) has no readable start or end'
    if end <= start:
        end = start + dt.timedelta(minutes=1)
    if entry.get("eventType") == "outOfOffice":
        show_as = "away"
    elif entry.get("transparency") == "transparent":
        show_as = "free"
    elif entry.get("status") == "tentative":
        show_as = "tentative"
    else:
        show_as = "busy"
    return CalendarEvent(start, end, summary, str(entry.get("location") or ""), show_as,
                         private=entry.get("visibility") in ("private", "confidential"), source_id=str(entry["id"])), ""
