"""TWS password rules (guide 6.4) and the one-time codes an administrator gives for a reset.

Rules come from ``[auth]``: ``password_min_length``, ``password_min_classes`` (lower
case, upper case, digits, others), ``password_refuse_login`` and
``password_refuse_common``.  They apply wherever a user's TWS password is set: user
create and update, ``POST /api/v1/me/password`` and the completion of a reset.

A reset code is random, shown once to the administrator who asks for it, and stored as
an argon2 hash with an expiry; asking for a new code cancels the previous one, and a
code works once.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

import sqlalchemy as sa

from twpcore.auth import _aware, hash_password, now, verify_password
from twpcore.store import schema as t

log = logging.getLogger(__name__)

# Well-known passwords and their bases (a password is also refused when it is one of
# these followed by digits or symbols, such as "Password123!").
COMMON = frozenset(
    [
        "password",
        "passw0rd",
        "p@ssword",
        "p@ssw0rd",
        "motdepasse",
        "passwort",
        "contrasena",
        "password1",
        "qwerty",
        "qwertyuiop",
        "azerty",
        "azertyuiop",
        "qwertz",
        "123456",
        "1234567",
        "12345678",
        "123456789",
        "1234567890",
        "0123456789",
        "987654321",
        "111111",
        "000000",
        "abc123",
        "abcdef",
        "abcdefgh",
        "iloveyou",
        "letmein",
        "welcome",
        "bienvenue",
        "willkommen",
        "admin",
        "administrator",
        "administrateur",
        "root",
        "changeme",
        "default",
        "secret",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "trustno1",
        "master",
        "shadow",
        "superman",
        "batman",
        "starwars",
        "whatever",
        "hello",
        "bonjour",
        "soleil",
        "chocolat",
        "loulou",
        "doudou",
        "nicolas",
        "jordan",
        "michael",
        "charlie",
        "freedom",
        "computer",
        "internet",
        "correcthorsebatterystaple",
    ]
)
_TAIL = "0123456789!?.*#@$%&_-+= "
CLASSES = ("lower case letters", "upper case letters", "digits", "other characters")


class PasswordRejected(Exception):
    """A password breaks a rule: ``rule`` is the error code, the message names the rule and the fix."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


def _classes(password: str) -> int:
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))


def check(auth: Any, password: str, login: str = "") -> None:
    """Raise ``PasswordRejected`` unless ``password`` follows the ``[auth]`` rules (``auth`` is an ``AuthConfig``)."""
    if len(password) < auth.password_min_length:
        raise PasswordRejected("password_too_short", f"password: at least {auth.password_min_length} characters are required "
                                                     f"(auth.password_min_length), got {len(password)}; choose a longer one")
    if _classes(password) < auth.password_min_classes:
        raise PasswordRejected("password_too_simple", f"password: mix at least {auth.password_min_classes} of {', '.join(CLASSES)} "
                                                      f"(auth.password_min_classes), got {_classes(password)}")
    folded = password.casefold()
    base = folded.rstrip(_TAIL)
    name = login.strip().casefold()
    if auth.password_refuse_login and name and (name in (folded, base, folded[::-1], base[::-1]) or folded.lstrip(_TAIL) == name):
        raise PasswordRejected("password_is_login", "password: it must not be the login, even reversed or with digits added "
                                                    "(auth.password_refuse_login); choose another one")
    if auth.password_refuse_common and (folded in COMMON or base in COMMON):
        raise PasswordRejected("password_too_common", "password: this is a well-known password that attackers try first "
                                                      "(auth.password_refuse_common); choose another one")


# -- reset codes ----------------------------------------------------------------------

def _code() -> str:
    # 16 characters from an unambiguous alphabet, grouped for reading aloud: XXXX-XXXX-XXXX-XXXX (80 bits).
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def create_reset(conn: sa.Connection, user_id: int, lifetime: float, created_by: str) -> tuple[str, dt.datetime]:
    """A new reset code for the user (the previous one stops working); return it and its expiry."""
    code = _code()
    expires = now() + dt.timedelta(seconds=lifetime)
    r = t.password_resets
    conn.execute(sa.delete(r).where(r.c.user_id == user_id))
    conn.execute(sa.insert(r).values(user_id=user_id, code_hash=hash_password(normalize_code(code)), created_at=now(),
                                     expires_at=expires, created_by=created_by[:220]))
    return code, expires


def consume_reset(conn: sa.Connection, user_id: int | None, code: str) -> str:
    """Use the user's reset code; return "" when it worked, else why not (for the audit log).

    With no code pending (or no user: ``None``) the code is checked against a dummy hash,
    so the answer takes as long either way.
    """
    r = t.password_resets
    row = None if user_id is None else conn.execute(
        sa.select(r).where(r.c.user_id == user_id, r.c.used_at.is_(None)).order_by(r.c.id.desc()).limit(1)).one_or_none()
    if row is None:
        verify_password(None, normalize_code(code))
        return "no reset code pending for this user"
    if not verify_password(row.code_hash, normalize_code(code)):
        return "wrong reset code"
    if _aware(row.expires_at) <= now():
        return "reset code expired"
    done = conn.execute(sa.update(r).where(r.c.id == row.id, r.c.used_at.is_(None)).values(used_at=now())).rowcount
    return "" if done else "reset code already used"
