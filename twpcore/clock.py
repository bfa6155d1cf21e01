"""Small time helpers shared by the schedulers (directory syncs, users imports, call-log purges)."""

from __future__ import annotations

import datetime as dt


def next_daily(hhmm: str, after: float) -> float:
    """The next local time ``HH:MM`` at or after ``after`` (a Unix time), as a Unix time."""
    base = dt.datetime.fromtimestamp(after)
    candidate = base.replace(hour=int(hhmm[:2]), minute=int(hhmm[3:5]), second=0, microsecond=0)
    if candidate.timestamp() < after:
        candidate += dt.timedelta(days=1)
    return candidate.timestamp()
