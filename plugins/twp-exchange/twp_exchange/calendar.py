"""Users' Exchange calendars for calendar presence (guide 8.6.2, 8.7.4), read incrementally over EWS.

``ExchangeConnector.calendar_changes(mailbox, state)`` opens the mailbox as the connector
opens it for private contacts (impersonation, or delegate access when the user gave the
account Reviewer rights on the calendar: guide 8.7.5, 8.7.6) and calls EWS
``SyncFolderItems`` on its Calendar folder through exchangelib (``Folder.sync_items``):
with no state it lists every item (``full``); with the SyncState of the previous call it
answers only what was created, changed or deleted since.  A state the server no longer
accepts (``ErrorInvalidSyncStateData``) makes the connector read everything again and
say so (``full``).

What an item becomes: ``Sensitivity`` Private or Confidential marks the event private
(TWP keeps its subject for its owner and shows it to others as busy); ``LegacyFreeBusyStatus``
Free, Tentative, Busy, OOF and WorkingElsewhere become ``free``, ``tentative``, ``busy``,
``away`` and ``busy``; an all-day item runs from 00:00 UTC of its first day to 00:00 UTC
after its last.  A cancelled meeting is removed.  A recurring series comes from
SyncFolderItems as its master item only, whose occurrences EWS does not list there: it
is skipped and named (expanding it needs a CalendarView read, not done yet).

When the account may not read the Calendar folder (``ErrorAccessDenied``: delegate access
without Reviewer rights on the calendar), the connector falls back to free/busy
(``GetUserAvailability``), which Exchange's Default permission gives everyone of the
organisation: the busy times of the next ``FREE_BUSY_DAYS`` days (and the day before),
with subject and location only when the owner shared them, read in full each time
(free/busy has no sync state; the state returned is ``FREE_BUSY_STATE``).  Free/busy does
expand recurring series.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from twpcore.plugin_api import CalendarChanges, CalendarChangesBuilder, CalendarEvent

if TYPE_CHECKING:
    from types import ModuleType

ITEM_FIELDS = ("subject", "start", "end", "location", "sensitivity", "legacy_free_busy_status", "is_all_day", "type", "is_cancelled")
"""What SyncFolderItems is asked for (its ItemShape): enough for calendar presence, no body or attendees."""
SHOW_AS = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "away", "WorkingElsewhere": "busy", "NoData": "busy"}
"""EWS LegacyFreeBusyStatus -> TWP show-as (Libre, Provisoire, Occupé, Absent)."""
PRIVATE = frozenset({"Private", "Confidential"})
FREE_BUSY_DAYS = 14
"""Days ahead read through free/busy when the calendar itself may not be read."""
FREE_BUSY_STATE = "free-busy"
"""The state of a mailbox read through free/busy (it has none; the next read tries the calendar again)."""


def read_changes(x: ModuleType, account: Any, state: str | None, page_size: int) -> CalendarChanges:
    """SyncFolderItems on the account's Calendar from ``state``; again from nothing when the server refuses the state.

    Free/busy instead when the Calendar may not be read (``read_free_busy``).
    """
    try:
        folder = account.calendar
    except x.ErrorAccessDenied:
        return read_free_busy(x, account)
    try:
        return _sync(x, folder, state, page_size)
    except x.ErrorInvalidSyncStateData:
        if state is None:
            raise
        folder.item_sync_state = None
        return _sync(x, folder, None, page_size)


def _sync(x: ModuleType, folder: Any, state: str | None, page_size: int) -> CalendarChanges:
    read = CalendarChangesBuilder()
    changes = folder.sync_items(sync_state=state, only_fields=list(ITEM_FIELDS), max_changes_returned=min(page_size, 512))
    for change in changes:
        if isinstance(change, Exception):
            raise change
        kind, item = change
        if kind == "read_flag_change":
            continue
        item_id = getattr(item, "id", None)
        if not item_id:
            continue
        if kind == "delete":
            read.delete(item_id)
            continue
        if isinstance(item, Exception):
            read.skip(f"item {item_id}: {type(item).__name__}: {item}")
            continue
        # An item not shown (cancelled, a series, not an appointment): what TWP held for it goes.
        read.put(item_id, *calendar_event(x, item))
    return read.changes(folder.item_sync_state or "", full=state is None)


def _aware(x: ModuleType, value: Any, *, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        # A plain datetime in UTC rather than exchangelib's EWSDateTime subclass.
        return dt.datetime.fromtimestamp((value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)).timestamp(), dt.UTC)
    # An all-day item: exchangelib hands dates, its end being the last day (EWS says 00:00 the day after).
    day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return day + dt.timedelta(days=1) if end else day


def calendar_event(x: ModuleType, item: Any) -> tuple[CalendarEvent | None, str]:
    """An exchangelib ``CalendarItem`` as a ``CalendarEvent``, or ``None`` and why it is not shown."""
    subject = item.subject or ""
    if not isinstance(item, x.CalendarItem):
        return None, f'{type(item).__name__} "{subject[:60]}" in the Calendar folder is not an appointment'
    if item.is_cancelled:
        return None, ""
    if item.type == "RecurringMaster":
        return None, f'recurring series "{subject[:60]}": its occurrences are not shown (series expansion not implemented)'
    if item.start is None or item.end is None:
        return None, f'appointment "{subject[:60]}" has no start or end'
    start, end = _aware(x, item.start, end=False), _aware(x, item.end, end=True)
    if end <= start:
        end = start + dt.timedelta(minutes=1)
    return CalendarEvent(start, end, subject, item.location or "", SHOW_AS.get(item.legacy_free_busy_status or "Busy", "busy"),
                         private=item.sensitivity in PRIVATE, source_id=item.id), ""


def read_free_busy(x: ModuleType, account: Any, today: dt.datetime | None = None) -> CalendarChanges:
    """The mailbox's busy times from yesterday 00:00 UTC for ``FREE_BUSY_DAYS`` days (GetUserAvailability), as a full read."""
    now = today or dt.datetime.now(dt.UTC)
    utc = x.EWSTimeZone("UTC")
    first = (now - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    last = first + dt.timedelta(days=FREE_BUSY_DAYS + 1)
    start = x.EWSDateTime(first.year, first.month, first.day, tzinfo=utc)
    end = x.EWSDateTime(last.year, last.month, last.day, tzinfo=utc)
    address = account.primary_smtp_address
    views = list(account.protocol.get_free_busy_info(accounts=[(address, "Required", False)], start=start, end=end,
                                                     requested_view="Detailed"))
    if not views:
        return CalendarChanges((), (), FREE_BUSY_STATE, full=True)
    if isinstance(views[0], Exception):
        raise views[0]
    events = []
    for block in views[0].calendar_events or ():
        if block.busy_type in ("Free", "NoData") or block.start is None or block.end is None:
            continue
        details = block.details
        private = bool(details is not None and details.is_private)
        subject = (details.subject or "") if details is not None and not private else ""
        location = (details.location or "") if details is not None and not private else ""
        block_start, block_end = _aware(x, block.start, end=False), _aware(x, block.end, end=True)
        events.append(CalendarEvent(block_start, block_end, subject, location, SHOW_AS.get(block.busy_type, "busy"), private=private,
                                    source_id=f"free-busy:{block_start.isoformat()}:{block_end.isoformat()}"))
    return CalendarChanges(tuple(events), (), FREE_BUSY_STATE, full=True)
