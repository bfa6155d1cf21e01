"""Phone queue statistics and voicemail boxes: the store queries behind ``twpcore.http.reception`` (guide 9.1.4, 9.2.2)."""

from __future__ import annotations

import datetime as dt
import statistics as stats
from typing import Any

import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t

OUTCOMES = ("taken", "distributed", "answered", "abandoned", "lost")
"""How a call leaves a queue: taken by a user through TWP, handed on by the PBX, answered at the queue's device,
hung up by the caller while waiting, or no longer known (the link went down)."""


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def queue_statistics(conn: sa.Connection, queue_id: int, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """Calls that arrived at the queue in [since, until): counts per outcome, waiting times, who took them."""
    pq = t.phone_queue_calls
    rows = conn.execute(sa.select(pq.c.arrived_at, pq.c.left_at, pq.c.outcome, pq.c.taken_by)
                        .where(pq.c.queue_id == queue_id, pq.c.arrived_at >= since, pq.c.arrived_at < until)).all()
    now = dt.datetime.now(dt.UTC)
    counts = dict.fromkeys(OUTCOMES, 0)
    waits: list[float] = []
    by_user: dict[int, int] = {}
    waiting = 0
    for r in rows:
        if r.outcome is None:
            waiting += 1
            continue
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
        if r.left_at is not None:
            waits.append(max(0.0, (_aware(r.left_at) - _aware(r.arrived_at)).total_seconds()))
        if r.outcome == "taken" and r.taken_by is not None:
            by_user[r.taken_by] = by_user.get(r.taken_by, 0) + 1
    users = {r.id: r for r in conn.execute(sa.select(t.users.c.id, t.users.c.login).where(t.users.c.id.in_(sorted(by_user) or [-1])))}
    longest_now = max(((now - _aware(r.arrived_at)).total_seconds() for r in rows if r.outcome is None), default=0.0)
    return {
        "from": since.isoformat(), "to": until.isoformat(), "offered": len(rows), "waiting": waiting, **counts,
        "wait_average": round(stats.fmean(waits), 1) if waits else None, "wait_median": round(stats.median(waits), 1) if waits else None,
        "wait_longest": round(max(waits), 1) if waits else None, "waiting_longest_now": round(longest_now, 1),
        "taken_by": [{"user_id": u, "login": users[u].login if u in users else None, "calls": n} for u, n in sorted(by_user.items())],
    }


def voicemail_of(conn: sa.Connection, parameters: ParameterRegistry, user_id: int) -> dict[str, Any]:
    """The user's voicemail number (``vmNumber``, guide 9.1.4) and the new-message counters of its devices."""
    number = parameters.resolve_one(conn, user_id, "vmNumber")
    box, d = t.voicemail_boxes, t.devices
    rows = conn.execute(sa.select(d.c.number, box.c.new_messages, box.c.last_caller, box.c.updated_at)
                        .join(box, box.c.device_id == d.c.id).where(d.c.user_id == user_id).order_by(d.c.id)).all()
    devices = [{"device": r.number, "new_messages": r.new_messages, "last_caller": r.last_caller,
                "updated_at": _aware(r.updated_at).isoformat()} for r in rows]
    return {"number": number.value or None, "from": number.source if number.value else None,
            "new_messages": sum(r.new_messages for r in rows), "devices": devices}


def reset_voicemail(conn: sa.Connection, user_id: int) -> None:
    """The user heard its messages (the client says so): its counters go back to zero until the PBX reports again."""
    box = t.voicemail_boxes
    ids = sa.select(t.devices.c.id).where(t.devices.c.user_id == user_id).scalar_subquery()
    conn.execute(box.update().where(box.c.device_id.in_(ids)).values(new_messages=0, updated_at=dt.datetime.now(dt.UTC)))
