"""Which devices a caller may drive, and the queries behind call control (guide 1.3.3, 10.5).

The rules of ``twpcore.http.telephony`` and ``twpcore.http.callback`` (which read the
request and answer): the caller's own devices, the agent devices of its domain and the
``Internet`` application a callback needs.  Each function is one query, run in the
store's thread pool.
"""

from __future__ import annotations

import sqlalchemy as sa

from twpcore import rights
from twpcore.routing import ApiError
from twpcore.store import schema as t


def own_devices(conn: sa.Connection, user_id: int) -> list[tuple[int, str]]:
    """The user's devices as (domain id, number), first created first: a call without ``device`` uses the first."""
    return [(r.domain_id, r.number) for r in conn.execute(
        sa.select(t.devices.c.domain_id, t.devices.c.number).where(t.devices.c.user_id == user_id).order_by(t.devices.c.id))]


def require_internet(conn: sa.Connection, user_id: int) -> None:
    """403 unless the user holds the ``Internet`` application (TWP Internet callbacks)."""
    if not rights.user_can(conn, user_id, "application", "Internet"):
        raise ApiError(
            403, "forbidden", "this user does not hold the Internet application (guide 1.3.3, 7.4.1); ask an administrator to grant it"
        )


def domain_has_device(conn: sa.Connection, domain_id: int, number: str) -> bool:
    """True when a device with this number exists in the domain."""
    return conn.execute(sa.select(t.devices.c.id).where(t.devices.c.domain_id == domain_id, t.devices.c.number == number)).first() is not None
