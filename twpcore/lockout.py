"""Login lock-out with exponential backoff, kept in the store.

Login attempts are counted per login name (``login`` scope for users, ``admin`` for
administrators; unknown names too, so a lock-out never tells whether an account
exists) and per source address (``address`` scope, shared by every login endpoint).
When a counter reaches its threshold (``[auth] lockout_threshold``,
``lockout_address_threshold``) the name or address is locked for
``lockout_base_delay``, doubled by every further failure up to ``lockout_max_delay``.
An attempt is counted *before* its password is checked, in the transaction that reads
the counters (``begin``), so concurrent attempts cannot slip past the threshold: while
locked, a login is answered 429 ``locked_out`` with ``Retry-After`` before any auth
method is asked, so a locked name cannot be used to try passwords.  A right password
resets the name's counter and takes the attempt back from the address's (``succeeded``);
an attempt whose password was not checked at all is taken back (``forgive``).
Counters are forgotten ``lockout_reset_after`` after their last failure.  They are rows
of ``login_failures``, so they survive a restart and two kernels on one store share them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from twpcore.auth import _aware, now
from twpcore.store import schema as t

if TYPE_CHECKING:
    from twpcore.config import AuthConfig

log = logging.getLogger(__name__)
SCOPES = ("login", "admin", "address")


@attrs.frozen
class Lock:
    """A name or address locked until ``until``."""

    scope: str
    subject: str
    until: dt.datetime
    failures: int

    def retry_after(self, at: dt.datetime | None = None) -> int:
        """Whole seconds to wait (at least 1), for the ``Retry-After`` header."""
        return max(1, math.ceil((self.until - (at or now())).total_seconds()))


def login_key(login: str) -> str:
    return login.strip().casefold()[:255]


def keys(scope: str, login: str | None, address: str) -> list[tuple[str, str]]:
    """The counters a login attempt touches: its name in ``scope``, and its source address."""
    out = [(scope, login_key(login))] if login else []
    if address:
        out.append(("address", address[:255]))
    return out


def _threshold(auth: AuthConfig, scope: str) -> int:
    return auth.lockout_address_threshold if scope == "address" else auth.lockout_threshold


@attrs.frozen
class Attempt:
    """A login attempt, counted as a failure before its password is checked (``begin``)."""

    counters: tuple[tuple[str, str], ...]
    """Every counter of the attempt: its name (first, when there is one), then its source address."""
    counted: tuple[tuple[str, str, dt.datetime | None], ...] = ()
    """The counters it raised, each with its ``locked_until`` from before (for ``forgive``)."""
    locks: tuple[Lock, ...] = ()
    """The locks it started: audited when the password proves wrong (``audit_locks``)."""


def _row_for_update(conn: sa.Connection, scope: str, subject: str, at: dt.datetime) -> Any:
    """The counter's row, created when missing, locked until the transaction ends.

    PostgreSQL locks the row (``FOR UPDATE``); SQLite transactions of the store begin
    IMMEDIATE, so one writer at a time reads and updates it.
    """
    f = t.login_failures
    where = (f.c.scope == scope, f.c.subject == subject)
    row = conn.execute(sa.select(f).where(*where).with_for_update()).one_or_none()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(f).values(scope=scope, subject=subject, failures=0, first_failure_at=at, last_failure_at=at))
        except sa.exc.IntegrityError:
            pass  # another kernel inserted it first: count on its row
        row = conn.execute(sa.select(f).where(*where).with_for_update()).one()
    return row


def begin(conn: sa.Connection, auth: AuthConfig, counters: list[tuple[str, str]], at: dt.datetime | None = None) -> Attempt | Lock:
    """Count a login attempt before any password is checked: the longest running ``Lock`` to answer, else the ``Attempt``.

    Locked counters are not counted.  The rows stay locked until the transaction ends, so
    of many concurrent attempts at one name only ``lockout_threshold`` get through to a
    password check; the one reaching the threshold starts the lock.  A right password
    then calls ``succeeded``, a check that did not happen ``forgive``.
    """
    at = at or now()
    rows = {(scope, subject): _row_for_update(conn, scope, subject, at) for scope, subject in counters if _threshold(auth, scope)}
    running = [Lock(scope, subject, _aware(r.locked_until), r.failures) for (scope, subject), r in rows.items()
               if r.locked_until is not None and _aware(r.locked_until) > at]
    if running:
        return max(running, key=lambda lock: lock.until)
    f = t.login_failures
    counted: list[tuple[str, str, dt.datetime | None]] = []
    started: list[Lock] = []
    for (scope, subject), row in rows.items():
        threshold = _threshold(auth, scope)
        fresh = row.failures == 0 or _aware(row.last_failure_at) + dt.timedelta(seconds=auth.lockout_reset_after) <= at
        failures = 1 if fresh else row.failures + 1
        until = None
        if failures >= threshold:
            delay = min(auth.lockout_max_delay, auth.lockout_base_delay * 2 ** min(failures - threshold, 40))
            until = at + dt.timedelta(seconds=delay)
            started.append(Lock(scope, subject, until, failures))
        conn.execute(sa.update(f).where(f.c.scope == scope, f.c.subject == subject).values(
            failures=failures, first_failure_at=at if fresh else row.first_failure_at, last_failure_at=at, locked_until=until))
        counted.append((scope, subject, row.locked_until))
    return Attempt(tuple(counters), tuple(counted), tuple(started))


def forgive(conn: sa.Connection, attempt: Attempt) -> None:
    """Take back an attempt whose password was not checked, or was right: its counts, and the locks it started."""
    f = t.login_failures
    for scope, subject, before in attempt.counted:
        where = (f.c.scope == scope, f.c.subject == subject)
        row = conn.execute(sa.select(f).where(*where).with_for_update()).one_or_none()
        if row is None:
            continue  # unlocked by an administrator meanwhile
        if row.failures <= 1:
            conn.execute(sa.delete(f).where(*where))
        elif any(lock.scope == scope and lock.subject == subject for lock in attempt.locks):
            conn.execute(sa.update(f).where(*where).values(failures=row.failures - 1, locked_until=before))
        else:
            conn.execute(sa.update(f).where(*where).values(failures=row.failures - 1))


def succeeded(conn: sa.Connection, attempt: Attempt) -> None:
    """The password was right: forget the name's failures, and take this attempt back from the address's."""
    name = [c for c in attempt.counters if c[0] != "address"][:1]
    for scope, subject in name:
        reset(conn, scope, subject)
    forgive(conn, attrs.evolve(attempt, counted=tuple(c for c in attempt.counted if (c[0], c[1]) not in name)))


def failed(conn: sa.Connection, attempt: Attempt, source: str, user: dict[str, Any] | None = None, actor: str = "user") -> None:
    """The password was wrong: the attempt stays counted; audit the locks it started and log them."""
    for lock in attempt.locks:
        log.warning("login lock-out: %s %r locked for %d s after %d failed logins", lock.scope, lock.subject, lock.retry_after(), lock.failures)
    audit_locks(conn, list(attempt.locks), source, user, actor)


def reset(conn: sa.Connection, scope: str, subject: str) -> bool:
    """Forget a counter (a success, or an administrator's unlock); True when there was one."""
    f = t.login_failures
    return bool(conn.execute(sa.delete(f).where(f.c.scope == scope, f.c.subject == subject)).rowcount)


def state(conn: sa.Connection, auth: AuthConfig, scope: str, subject: str, at: dt.datetime | None = None) -> dict[str, Any]:
    """What an administrator sees of a counter."""
    f = t.login_failures
    row = conn.execute(sa.select(f).where(f.c.scope == scope, f.c.subject == subject)).one_or_none()
    return _state(auth, scope, subject, row, at or now())


def _state(auth: AuthConfig, scope: str, subject: str, row: Any, at: dt.datetime) -> dict[str, Any]:
    """``state`` of a counter from its ``login_failures`` row (None when there is none)."""
    if row is None or _aware(row.last_failure_at) + dt.timedelta(seconds=auth.lockout_reset_after) <= at:
        return {
            "scope": scope,
            "subject": subject,
            "locked": False,
            "failures": 0,
            "locked_until": None,
            "retry_after": None,
            "last_failure_at": None,
        }
    until = _aware(row.locked_until) if row.locked_until is not None else None
    is_locked = until is not None and until > at
    return {"scope": scope, "subject": subject, "locked": is_locked, "failures": row.failures,
            "locked_until": until.isoformat() if is_locked and until else None,
            "retry_after": Lock(scope, subject, until, row.failures).retry_after(at) if is_locked and until else None,
            "last_failure_at": _aware(row.last_failure_at).isoformat()}


def current(conn: sa.Connection, auth: AuthConfig, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every name and address locked now."""
    at = at or now()
    f = t.login_failures
    rows = conn.execute(sa.select(f).where(f.c.locked_until > at).order_by(f.c.locked_until.desc())).all()
    return [_state(auth, r.scope, r.subject, r, at) for r in rows]


def audit_locks(conn: sa.Connection, locks: list[Lock], source: str, user: dict[str, Any] | None = None, actor: str = "user") -> None:
    """One audit entry per lock started (a limited admin sees those of its users)."""
    for lock in locks:
        who = f"{actor}:{lock.subject}" if lock.scope != "address" else f"address:{lock.subject}"
        conn.execute(sa.insert(t.audit_log).values(
            at=now(), actor=who[:220], action="lockout", object_type="user" if user and lock.scope != "address" else lock.scope,
            object_id=str(user["id"]) if user and lock.scope != "address" else "",
            company_id=user["company_id"] if user and lock.scope != "address" else None, source=source[:64],
            detail={"scope": lock.scope, "subject": lock.subject, "failures": lock.failures, "locked_until": lock.until.isoformat(),
                    "seconds": lock.retry_after()}))
