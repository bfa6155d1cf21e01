"""Passwords, login tokens and the auth chain.

- Passwords are hashed with argon2id (argon2-cffi); hashing runs off the event loop.
- Tokens are 32 random bytes shown once to the client; the store keeps only their
  SHA-256, an expiry and a revocation time.
- A password with no account (an unknown login, a user with no TWS password) is checked
  against a dummy hash of the same cost, so the answer takes as long as a wrong password
  of a real account and timing tells no one which logins exist.
- ``PasswordChecks`` bounds the password checks running at once (argon2 takes 64 MiB
  each): a few run, a few more wait, the others are refused at once (``ChecksBusy``).
- The auth chain (guide 6.1) reads the user's ``AuthMethods`` parameter, e.g.
  ``WindowsSecurity|TWS``, and asks each method in turn.  A method that recognizes the
  request and rejects it ends the chain: no weaker method is tried after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import string
from collections.abc import AsyncIterator
from typing import Any

import argon2
import attrs
import sqlalchemy as sa

from twpcore.events import Event
from twpcore.kinds import AuthMethod, AuthOutcome, LoginAttempt
from twpcore.logs import RepeatLimiter
from twpcore.principals import Principal as Principal  # defined below the event bus, which names it too
from twpcore.store import schema as t

log = logging.getLogger(__name__)
_hasher = argon2.PasswordHasher()
TOKEN_PREFIX = "twp_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_dummy: tuple[argon2.PasswordHasher, str] | None = None


def _dummy_hash() -> str:
    """A hash of a random password at the current hasher's cost (made again when the hasher changes)."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


def verify_password(password_hash: str | None, password: str) -> bool:
    """Does ``password`` match ``password_hash``?  With no hash, a dummy one is checked (same time) and the answer is False."""
    if not password_hash:
        password_hash, known = _dummy_hash(), False
    else:
        known = True
    try:
        return _hasher.verify(password_hash, password) and known
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError, argon2.exceptions.VerificationError):
        return False


class ChecksBusy(Exception):
    """Too many password checks are running and waiting; try again in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


@attrs.define(eq=False)
class PasswordChecks:
    """Bounds the password checks (argon2, LDAP binds...) of every login door.

    At most ``concurrency`` run at once, at most ``queue`` more wait for a turn; a check
    beyond that is refused at once with ``ChecksBusy`` instead of piling up memory.
    """

    concurrency: int
    """Checks running at once (``[auth] password_check_concurrency``)."""
    queue: int
    """Checks waiting for a turn (``[auth] password_check_queue``)."""
    running: int = 0
    waiting: int = 0
    peak: int = 0
    """The most checks seen running at once."""
    refused: int = 0
    """Checks refused because the queue was full."""
    _turns: asyncio.Semaphore | None = None
    _repeats: RepeatLimiter = attrs.field(factory=lambda: RepeatLimiter(log))
    """A flood of refused logins leaves a few log lines and a summary, not one line each."""

    @classmethod
    def from_config(cls, auth: Any) -> PasswordChecks:
        """The bounds of ``[auth]`` (``password_check_concurrency`` 0 means the number of CPUs)."""
        return cls(auth.password_check_concurrency or os.cpu_count() or 2, auth.password_check_queue)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` turns while checking a password; ``ChecksBusy`` when the queue is full."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.concurrency)
        if self._turns.locked() and self.waiting >= self.queue:
            self.refused += 1
            self._repeats.log(logging.WARNING, "password checks", "password checks: %d running and %d waiting; a login was refused "
                              "(auth.password_check_queue)", self.running, self.waiting)
            raise ChecksBusy(f"too many logins are being checked right now ({self.running} running, {self.waiting} waiting); "
                             "try again in a second (an administrator can raise auth.password_check_queue)")
        self.waiting += 1
        try:
            await self._turns.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            self.running -= 1
            self._turns.release()

    def as_json(self) -> dict[str, int]:
        return {"concurrency": self.concurrency, "queue": self.queue, "running": self.running, "waiting": self.waiting,
                "peak": self.peak, "refused": self.refused}


def generate_password(length: int = 20) -> str:
    """A random password for a new account (letters and digits, no look-alike symbols)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(c.islower() for c in pw):
            return pw


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: sa.Connection, principal_type: str, principal_id: int, lifetime: float, source: str = "", method: str = "",
                *, session_started_at: dt.datetime | None = None, session_max_lifetime: float | None = None) -> tuple[str, dt.datetime]:
    """A new token (shown once) and its expiry.

    ``session_started_at`` is the login a refreshed token descends from (now for a new
    login); with ``session_max_lifetime`` the token never outlives that session.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = now()
    started = _aware(session_started_at) if session_started_at is not None else created
    expires = created + dt.timedelta(seconds=lifetime)
    if session_max_lifetime is not None:
        expires = min(expires, started + dt.timedelta(seconds=session_max_lifetime))
    conn.execute(sa.insert(t.tokens).values(
        token_hash=token_digest(token), principal_type=principal_type, principal_id=principal_id,
        created_at=created, expires_at=expires, source=source[:64], method=method[:32], session_started_at=started))
    return token, expires


class TokenError(Exception):
    """The token is missing, unknown, expired or revoked; the message says which."""


def principal_for_token(conn: sa.Connection, token: str) -> Principal:
    return _principal(conn, conn.execute(sa.select(t.tokens).where(t.tokens.c.token_hash == token_digest(token))).one_or_none())


def check_token_id(conn: sa.Connection, token_id: int) -> Principal:
    """The principal of a token already shown once (an open WebSocket's), or ``TokenError`` if it stopped working."""
    return _principal(conn, conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).one_or_none())


def _principal(conn: sa.Connection, row: Any) -> Principal:
    if row is None:
        raise TokenError("unknown token; log in again")
    if row.revoked_at is not None:
        raise TokenError("token was revoked; log in again")
    expires = _aware(row.expires_at)
    if expires <= now():
        raise TokenError("token expired; log in again")
    if row.principal_type == "admin":
        admin = conn.execute(sa.select(t.admins).where(t.admins.c.id == row.principal_id)).one_or_none()
        if admin is None or not admin.enabled:
            raise TokenError("admin account no longer exists or is disabled")
        companies = frozenset(conn.execute(sa.select(t.admin_companies.c.company_id).where(t.admin_companies.c.admin_id == admin.id)).scalars())
        return Principal("admin", admin.id, admin.login, row.id, admin.super_user, companies, None, expires)
    user = conn.execute(
        sa.select(t.users.c.id, t.users.c.login, t.users.c.enabled, t.users.c.domain_id, t.domains.c.company_id)
        .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(t.users.c.id == row.principal_id)
    ).one_or_none()
    if user is None or not user.enabled:
        raise TokenError("user no longer exists or is disabled")
    return Principal("user", user.id, user.login, row.id, False, frozenset({user.company_id}), user.domain_id, expires)


def revoke_token(conn: sa.Connection, token_id: int) -> bool:
    """Revoke one token; False when it was already revoked (another request got there first)."""
    return bool(conn.execute(sa.update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None)).values(revoked_at=now())).rowcount)


def revoke_all(conn: sa.Connection, principal_type: str, principal_id: int, *, keep: int | None = None) -> int:
    """Revoke every live token of a principal but ``keep``; return how many stopped working (expired ones are not counted)."""
    at = now()
    where = [t.tokens.c.principal_type == principal_type, t.tokens.c.principal_id == principal_id, t.tokens.c.revoked_at.is_(None),
             t.tokens.c.expires_at > at]
    if keep is not None:
        where.append(t.tokens.c.id != keep)
    return conn.execute(sa.update(t.tokens).where(*where).values(revoked_at=at)).rowcount


class SessionEnded(TokenError):
    """The token cannot be refreshed: its session reached its maximum lifetime."""


def refresh_token(
    conn: sa.Connection, token_id: int, lifetime: float, session_max_lifetime: float, source: str = ""
) -> tuple[str, dt.datetime, dt.datetime, str]:
    """Rotate a live token: revoke it and issue its successor in the same session.

    Return (token, expires_at, session_ends_at, method).  Raise ``TokenError`` when the
    token was revoked meanwhile (two refreshes of one token: one wins), and
    ``SessionEnded`` when the session is at its end.
    """
    row = conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).one()
    started = _aware(row.session_started_at or row.created_at)
    ends = started + dt.timedelta(seconds=session_max_lifetime)
    if ends <= now() + dt.timedelta(seconds=1):
        raise SessionEnded(f"this session started at {started.isoformat()} and may last {_span(session_max_lifetime)}; log in again")
    if not revoke_token(conn, token_id):
        raise TokenError("token was revoked; log in again")
    token, expires = issue_token(conn, row.principal_type, row.principal_id, lifetime, source, row.method,
                                 session_started_at=started, session_max_lifetime=session_max_lifetime)
    return token, expires, ends, row.method


def session_end(conn: sa.Connection, token_id: int, session_max_lifetime: float) -> dt.datetime:
    row = conn.execute(sa.select(t.tokens.c.session_started_at, t.tokens.c.created_at).where(t.tokens.c.id == token_id)).one()
    return _aware(row.session_started_at or row.created_at) + dt.timedelta(seconds=session_max_lifetime)


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} seconds"


def create_admin(
    conn: sa.Connection, login: str, password: str | None = None, *, super_user: bool = True, companies: tuple[int, ...] = ()
) -> tuple[int, str]:
    """Create an admin account; return (id, password).  A password is generated when none is given."""
    password = password or generate_password()
    admin_id = conn.execute(
        sa.insert(t.admins).values(login=login, password_hash=hash_password(password), super_user=super_user).returning(t.admins.c.id)
    ).scalar_one()
    for c in companies:
        conn.execute(sa.insert(t.admin_companies).values(admin_id=admin_id, company_id=c))
    return admin_id, password


@attrs.frozen
class ChainResult:
    """What the chain concluded, for the API and the audit log."""

    accepted: bool
    user: Any = None
    method: str | None = None
    reason: str = ""
    audit: str = ""
    error: bool = False
    """A method failed (crashed): the server's fault, not a wrong password."""


async def run_chain(methods: dict[str, AuthMethod], chain: str, attempt: LoginAttempt) -> ChainResult:
    """Ask each method of ``chain`` (``A|B``) in order; see the module docstring."""
    for name in [m.strip() for m in chain.split("|") if m.strip()]:
        method = methods.get(name)
        if method is None:
            log.warning("auth method %s is listed in AuthMethods but not installed or not ready; skipped", name)
            continue
        try:
            result = await method.authenticate(attempt)
        except Exception as exc:  # noqa: BLE001 - a broken method must not crash login
            log.error("auth method %s failed: %s: %s", name, type(exc).__name__, exc)
            return ChainResult(False, None, name, f"auth method {name} failed; see the server log", error=True)
        if result.outcome == AuthOutcome.ACCEPT:
            return ChainResult(True, result.user, name, result.reason)
        if result.outcome == AuthOutcome.REJECT:
            return ChainResult(False, None, name, result.reason, result.audit or result.reason)
    return ChainResult(False, None, None, "no auth method recognized the request")


# -- open sessions (events WebSockets) ---------------------------------------------------
TOKENS_REVOKED = "auth.tokens_revoked"
_ENDING = {TOKENS_REVOKED: None, "admin.user.updated": "user", "admin.user.deleted": "user",
           "admin.admin.updated": "admin", "admin.admin.deleted": "admin"}


def tokens_revoked_event(principal_type: str, principal_id: int, company_id: int | None, token_id: int | None = None) -> Event:
    """The event that makes open WebSockets of these tokens (one, or all of the principal) check them and close."""
    return Event(TOKENS_REVOKED, {"principal_type": principal_type, "principal_id": principal_id, "token_id": token_id}, company_id)


def ends_session(who: Principal, event: Any) -> bool:
    """Might this event have ended the session of ``who`` (revoked tokens, account disabled or deleted)?"""
    kind = _ENDING.get(event.type, "")
    if kind == "":
        return False
    data = event.data or {}
    if kind is None:
        return data.get("principal_type") == who.type and data.get("principal_id") == who.id and data.get("token_id") in (None, who.token_id)
    return kind == who.type and data.get("id") == who.id
