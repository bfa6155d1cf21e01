"""Retention of instant messages, notes and notifications, applied every day at ``Teamwork-StartCleaningHour``.

Like the call logs' purge (guide 10.2.1), the number of days is read per domain (the
author's domain): ``Chat-NumberDaysOfStorage`` for messages, ``Notification-NumberDaysOfStorage``
for notes and notifications; 0 keeps them for ever.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t

DEFAULT_DAYS = {"Chat-NumberDaysOfStorage": 90, "Notification-NumberDaysOfStorage": 365}


def cleaning_hour(conn: sa.Connection, parameters: ParameterRegistry) -> str:
    name = "Teamwork-StartCleaningHour"
    pv = t.parameter_values
    value = conn.execute(sa.select(pv.c.value).where(pv.c.name == name, pv.c.scope == "default")).scalar()
    if not value:
        definition = parameters.definitions.get(name)
        value = definition.default if definition else "03:45"
    return str(value)


def _days(conn: sa.Connection, parameters: ParameterRegistry, domain_id: int, name: str) -> int:
    try:
        return int(parameters.domain_value(conn, domain_id, name).value)
    except (KeyError, ValueError, LookupError):
        return DEFAULT_DAYS[name]


def purge(conn: sa.Connection, parameters: ParameterRegistry, now: float) -> dict[str, int]:
    """Delete what is older than each domain's retention; returns the counts."""
    counts = {"chat_messages": 0, "journal_notes": 0}
    for table, author, name, key in ((t.chat_messages, t.chat_messages.c.sender_id, "Chat-NumberDaysOfStorage", "chat_messages"),
                                     (t.journal_notes, t.journal_notes.c.author_id, "Notification-NumberDaysOfStorage", "journal_notes")):
        for domain_id in list(conn.execute(sa.select(t.domains.c.id)).scalars()):
            days = _days(conn, parameters, domain_id, name)
            if days < 1:
                continue
            cut = dt.datetime.fromtimestamp(now - days * 86400, dt.UTC)
            authors = sa.select(t.users.c.id).where(t.users.c.domain_id == domain_id)
            counts[key] += conn.execute(sa.delete(table).where(author.in_(authors), table.c.created_at < cut)).rowcount or 0
    return counts
