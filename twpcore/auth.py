"""Passwords, login tokens and the auth chain.

- Passwords are hashed with argon2id (argon2-cffi); hashing runs off the event loop.
- Tokens are 32 random bytes shown once to the client; the store keeps only their
  SHA-256, an expiry and a revocation time.
- The auth chain (guide 6.1) reads the user's ``AuthMethods`` parameter, e.g.
  ``WindowsSecurity|TWS``, and asks each method in turn.  A method that recognizes the
  request and rejects it ends the chain: no weaker method is tried after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import string
from typing import Any

import argon2
import attrs
import sqlalchemy as sa

from twpcore.kinds import AuthMethod, AuthOutcome, LoginAttempt
from twpcore.store import schema as t

log = logging.getLogger(__name__)
_hasher = argon2.PasswordHasher()
TOKEN_PREFIX = "twp_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError, argon2.exceptions.VerificationError):
        return False


def generate_password(length: int = 20) -> str:
    """A random password for a new account (letters and digits, no look-alike symbols)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(c.islower() for c in pw):
            return pw


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@attrs.frozen
class Principal:
    """Who is calling: an admin (super user or limited to companies) or a user."""

    type: str
    """``admin`` or ``user``."""
    id: int
    login: str
    token_id: int | None = None
    super_user: bool = False
    companies: frozenset[int] = frozenset()
    """Companies a limited admin manages; a user's own company."""
    domain_id: int | None = None
    """A user's domain."""
    expires_at: dt.datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.type == "admin"

    def manages(self, company_id: int | None) -> bool:
        """May this admin manage the company?  ``None`` means server-wide objects (super users only)."""
        if not self.is_admin:
            return False
        if self.super_user:
            return True
        return company_id is not None and company_id in self.companies

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type, "id": self.id, "login": self.login, "super_user": self.super_user,
            "companies": sorted(self.companies), "domain_id": self.domain_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def issue_token(conn: sa.Connection, principal_type: str, principal_id: int, lifetime: float, source: str = "", method: str = "") -> tuple[str, dt.datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = now()
    expires = created + dt.timedelta(seconds=lifetime)
    conn.execute(sa.insert(t.tokens).values(
        token_hash=token_digest(token), principal_type=principal_type, principal_id=principal_id,
        created_at=created, expires_at=expires, source=source[:64], method=method[:32]))
    return token, expires


class TokenError(Exception):
    """The token is missing, unknown, expired or revoked; the message says which."""


def principal_for_token(conn: sa.Connection, token: str) -> Principal:
    row = conn.execute(sa.select(t.tokens).where(t.tokens.c.token_hash == token_digest(token))).one_or_none()
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


def revoke_token(conn: sa.Connection, token_id: int) -> None:
    conn.execute(sa.update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None)).values(revoked_at=now()))


def revoke_all(conn: sa.Connection, principal_type: str, principal_id: int) -> int:
    """Revoke every live token of a principal; return how many stopped working (expired ones are not counted)."""
    at = now()
    return conn.execute(sa.update(t.tokens).where(
        t.tokens.c.principal_type == principal_type, t.tokens.c.principal_id == principal_id, t.tokens.c.revoked_at.is_(None),
        t.tokens.c.expires_at > at,
    ).values(revoked_at=at)).rowcount


def create_admin(conn: sa.Connection, login: str, password: str | None = None, *, super_user: bool = True, companies: tuple[int, ...] = ()) -> tuple[int, str]:
    """Create an admin account; return (id, password).  A password is generated when none is given."""
    password = password or generate_password()
    admin_id = conn.execute(sa.insert(t.admins).values(login=login, password_hash=hash_password(password), super_user=super_user).returning(t.admins.c.id)).scalar_one()
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
            return ChainResult(False, None, name, f"auth method {name} failed; see the server log")
        if result.outcome == AuthOutcome.ACCEPT:
            return ChainResult(True, result.user, name, result.reason)
        if result.outcome == AuthOutcome.REJECT:
            return ChainResult(False, None, name, result.reason, result.audit or result.reason)
    return ChainResult(False, None, None, "no auth method recognized the request")
