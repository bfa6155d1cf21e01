"""Logins, sessions and passwords: the SQL behind ``/auth/*``, ``/me`` and the password endpoints.

The HTTP handlers (``twpcore.http.routes``, ``.sessions``, ``.negotiate``) read the request,
check passwords in a turn of ``PasswordChecks`` and count the attempt (``twpcore.lockout``);
each transaction they then need is one function here, run in the store's thread pool with
``store.run(fn, ...)``.  Every function receives what it uses (the connection, the
``[auth]`` section, the parameter registry, the lock-out attempt): none reaches into the kernel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from twpcore import lockout, passwords, rights
from twpcore.admin.resources import audit
from twpcore.auth import ChainResult, Principal, hash_password, issue_token, now, revoke_all
from twpcore.config import AuthConfig
from twpcore.mail import SMTP_PARAMETERS, SmtpSettings, build_message, language_of
from twpcore.parameters import ParameterRegistry, Resolved
from twpcore.routing import ApiError
from twpcore.store import schema as t

MAX_CANDIDATES = 10
"""Accounts of one login (in several domains) whose password a login without ``domain`` checks; beyond, give the domain."""

Candidate = tuple[dict[str, Any] | None, str]
"""An account a login may be (None: no TWP user has the login) and its ``AuthMethods`` chain."""


# -- finding the account -----------------------------------------------------------------

def find_users(conn: sa.Connection, login: str, domain: str | None, limit: int = MAX_CANDIDATES) -> list[dict[str, Any]]:
    """The users with this login (one per domain at most); ``domain`` ("Company/Domain" or "Domain") narrows them."""
    sel = (sa.select(t.users, t.domains.c.company_id, t.domains.c.name.label("domain_name"), t.companies.c.name.label("company_name"))
           .join(t.domains, t.domains.c.id == t.users.c.domain_id).join(t.companies, t.companies.c.id == t.domains.c.company_id)
           .where(t.users.c.login == login))
    if domain:
        company, _, dname = domain.rpartition("/")
        sel = sel.where(t.domains.c.name == dname)
        if company:
            sel = sel.where(t.companies.c.name == company)
    return [dict(r._mapping) for r in conn.execute(sel.order_by(t.users.c.id).limit(limit))]


def find_user(conn: sa.Connection, login: str, domain: str | None) -> dict[str, Any] | None:
    """The one user with this login, or 409 when it is in several domains (for callers whose identity is already proven)."""
    rows = find_users(conn, login, domain, 2)
    if len(rows) > 1:
        raise ambiguous(login)
    return rows[0] if rows else None


def ambiguous(login: str) -> ApiError:
    """Said only once the password is right: the login names accounts in several domains."""
    return ApiError(409, "ambiguous_login", f'login "{login}" exists in several domains; add "domain": "Company/Domain" to the request', "domain")


def users_and_chains(conn: sa.Connection, parameters: ParameterRegistry, login_name: str, domain: str | None) -> list[Candidate]:
    """The accounts a login may be, each with its ``AuthMethods`` chain; ``[(None, server-wide chain)]`` for an unknown login."""
    users = find_users(conn, login_name, domain)
    if not users:
        return [(None, server_default(conn, parameters, "AuthMethods").value)]
    return [(user, parameters.resolve_one(conn, user["id"], "AuthMethods").value) for user in users]


def server_default(conn: sa.Connection, parameters: ParameterRegistry, name: str) -> Resolved:
    """A parameter's server-wide value (default scope, else built-in): what applies to an unknown login."""
    value = conn.execute(sa.select(t.parameter_values.c.value).where(
        t.parameter_values.c.name == name, t.parameter_values.c.scope == "default")).scalar_one_or_none()
    definition = parameters.get(name)
    return Resolved(name, value, "default") if value is not None else Resolved(name, definition.default, "built-in")


# -- user logins -------------------------------------------------------------------------

def audit_login(conn: sa.Connection, login_name: str, user: dict | None, ok: bool, source: str, method: str | None, reason: str) -> None:
    conn.execute(sa.insert(t.audit_log).values(
        at=now(), actor=f"user:{login_name}"[:220], action="login" if ok else "login_failed",
        object_type="user", object_id=str(user["id"]) if user else "", company_id=user["company_id"] if user else None,
        source=source[:64], detail={"method": method, "reason": reason}))


def login_refused(conn: sa.Connection, attempt: lockout.Attempt, login_name: str, source: str,
                  candidates: Sequence[Candidate], results: Sequence[ChainResult], crashed: bool) -> None:
    """No account accepted the login: audit each, and count the attempt unless a method crashed (the server's fault)."""
    for (user, _), r in zip(candidates, results, strict=True):
        audit_login(conn, login_name, user, False, source, r.method, r.audit or r.reason)
    if crashed:
        lockout.forgive(conn, attempt)
    else:
        lockout.failed(conn, attempt, source, candidates[0][0] if len(candidates) == 1 else None)


def login_needs_domain(conn: sa.Connection, attempt: lockout.Attempt, login_name: str, user: dict[str, Any], source: str, method: str | None) -> None:
    """A right password for a login in several domains given without one: not a guess, but no session either."""
    lockout.succeeded(conn, attempt)
    audit_login(conn, login_name, user, False, source, method, "the login is in several domains and no domain was given")


def login_of_nobody(conn: sa.Connection, attempt: lockout.Attempt, login_name: str, source: str, method: str | None, reason: str) -> None:
    """An auth method vouched for someone TWP does not know."""
    lockout.forgive(conn, attempt)
    audit_login(conn, login_name, None, False, source, method, reason)


def user_session(conn: sa.Connection, auth_cfg: AuthConfig, user: dict[str, Any], source: str, method: str) -> dict[str, Any]:
    """Issue a user token; the answer of a successful user login (password or Negotiate)."""
    started = now()
    token, expires = issue_token(conn, "user", user["id"], auth_cfg.token_lifetime, source, method,
                                 session_started_at=started, session_max_lifetime=auth_cfg.session_max_lifetime)
    return {"token": token, "token_type": "Bearer", "expires_at": expires.isoformat(),
            "session_expires_at": (started + dt.timedelta(seconds=auth_cfg.session_max_lifetime)).isoformat(), "method": method,
            "user": {"id": user["id"], "login": user["login"], "domain_id": user["domain_id"], "company_id": user["company_id"]},
            "applications": rights.granted_applications(conn, user["id"])}


def open_user_session(conn: sa.Connection, auth_cfg: AuthConfig, attempt: lockout.Attempt, login_name: str, user: dict[str, Any],
                      source: str, method: str | None, application: str | None) -> dict[str, Any] | rights.RightsError:
    """The login succeeded: the session's answer, or the ``RightsError`` when ``application`` is not granted."""
    lockout.succeeded(conn, attempt)  # the password was right, even if the application is refused
    if application is not None:
        try:
            rights.check_application_login(conn, user["id"], application)
        except rights.RightsError as exc:
            audit_login(conn, login_name, user, False, source, method, str(exc))
            return exc
    audit_login(conn, login_name, user, True, source, method, f"application {application}" if application else "")
    return user_session(conn, auth_cfg, user, source, method or "")


def negotiate_refused(conn: sa.Connection, attempt: lockout.Attempt, login_name: str, user: dict | None, source: str,
                      method: str, reason: str, guess: bool) -> None:
    """A Negotiate login refused: audited; counted only when the token itself was refused (``guess``)."""
    audit_login(conn, login_name, user, False, source, method, reason)
    if guess:
        lockout.failed(conn, attempt, source)
    else:  # the token was good: not a guess
        lockout.forgive(conn, attempt)


def negotiate_session(conn: sa.Connection, auth_cfg: AuthConfig, attempt: lockout.Attempt, login_name: str, user: dict[str, Any],
                      source: str, method: str, principal: str, protocol: str | None) -> dict[str, Any]:
    """The same token and answer as a password login, plus principal and protocol."""
    lockout.succeeded(conn, attempt)
    audit_login(conn, login_name, user, True, source, method, f"{protocol} {principal}")
    return {**user_session(conn, auth_cfg, user, source, method), "principal": principal, "protocol": protocol}


# -- administrator logins ----------------------------------------------------------------

def find_admin(conn: sa.Connection, login_name: str) -> Any:
    """The administrator account with this login, or None."""
    return conn.execute(sa.select(t.admins).where(t.admins.c.login == login_name)).one_or_none()


def admin_login_outcome(conn: sa.Connection, auth_cfg: AuthConfig, attempt: lockout.Attempt, login_name: str, admin: Any,
                        ok: bool, source: str) -> dict[str, Any] | None:
    """Audit an administrator login; its session's answer when ``ok``, else None (the attempt counts)."""
    conn.execute(sa.insert(t.audit_log).values(at=now(), actor=f"admin:{login_name}"[:220],
                                               action="admin_login" if ok else "admin_login_failed", source=source[:64]))
    if not ok:
        lockout.failed(conn, attempt, source, actor="admin")
        return None
    assert admin is not None  # ok says so
    lockout.succeeded(conn, attempt)
    started = now()
    token, expires = issue_token(conn, "admin", admin.id, auth_cfg.admin_token_lifetime, source, "admin",
                                 session_started_at=started, session_max_lifetime=auth_cfg.admin_session_max_lifetime)
    return {"token": token, "token_type": "Bearer", "expires_at": expires.isoformat(),
            "session_expires_at": (started + dt.timedelta(seconds=auth_cfg.admin_session_max_lifetime)).isoformat(),
            "admin": {"id": admin.id, "login": admin.login, "super_user": admin.super_user}}


# -- the caller's own view ---------------------------------------------------------------

def profile(conn: sa.Connection, who: Principal) -> dict[str, Any]:
    """``GET /me`` for a user: the principal, its profile, groups, devices and applications."""
    u = conn.execute(sa.select(t.users).where(t.users.c.id == who.id)).one()
    groups = conn.execute(sa.select(t.groups.c.id, t.groups.c.name).join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
                          .where(t.group_members.c.user_id == who.id).order_by(t.groups.c.priority, t.groups.c.id)).all()
    devices = conn.execute(sa.select(t.devices.c.id, t.devices.c.number, t.devices.c.protocol).where(t.devices.c.user_id == who.id)).all()
    return {**who.as_json(), "first_name": u.first_name, "last_name": u.last_name, "email": u.email, "mobile": u.mobile,
            "culture": u.culture, "groups": [dict(g._mapping) for g in groups], "devices": [dict(d._mapping) for d in devices],
            "applications": rights.granted_applications(conn, who.id)}


# -- passwords ---------------------------------------------------------------------------

def password_hash_of(conn: sa.Connection, user_id: int) -> str:
    return conn.execute(sa.select(t.users.c.password_hash).where(t.users.c.id == user_id)).scalar_one()


def change_password(conn: sa.Connection, who: Principal, attempt: lockout.Attempt, right: bool, stored: str, new_hash: str,
                    source: str) -> dict[str, Any] | None:
    """Store ``new_hash`` over ``stored`` when the current password was ``right``; None (the attempt counts) when it was not.

    Only over the hash just checked: a password changed meanwhile elsewhere is not
    overwritten (409).  The user's other tokens are revoked.
    """
    company = min(who.companies, default=None)
    if not right:
        audit(conn, who, "password_change_failed", "user", who.id, company, source, {"reason": "wrong current password"})
        lockout.failed(conn, attempt, source, {"id": who.id, "company_id": company})
        return None
    lockout.succeeded(conn, attempt)
    if not conn.execute(
        sa.update(t.users).where(t.users.c.id == who.id, t.users.c.password_hash == stored).values(password_hash=new_hash)
    ).rowcount:
        raise ApiError(409, "password_changed_meanwhile", "current_password: your password was changed meanwhile; try again with the new one",
                       "current_password")
    n = revoke_all(conn, "user", who.id, keep=who.token_id)
    audit(conn, who, "password_change", "user", who.id, company, source, {"revoked": n})
    return {"revoked": n}


def reset_mail(conn: sa.Connection, parameters: ParameterRegistry, mail_timeout: float, user: Any, code: str, expires: Any) -> Any:
    """(settings, message) when the user has an e-mail address and the SMTP parameters name a server."""
    if not user.email.strip() or any(n not in parameters.definitions for n in SMTP_PARAMETERS):
        return None
    params = parameters.resolve(conn, user.id, SMTP_PARAMETERS)
    settings = SmtpSettings.from_parameters(params, mail_timeout)
    if not settings.host:
        return None
    name = " ".join(x for x in (user.first_name, user.last_name) if x)
    body = (f"Hello {user.first_name or user.login},\n\nAn administrator started a password reset for your TWP account {user.login}.\n"
            f"Your one-time reset code is:\n\n    {code}\n\nIt works once, until {expires.strftime('%Y-%m-%d %H:%M')} UTC. Enter it with your "
            "login and a new password in your TWP application.\nIf you did not ask for this, tell your administrator.\n")
    return settings, build_message(settings, name, user.email.strip(), "Your TWP password-reset code", body, language_of(user.culture))


def complete_reset(conn: sa.Connection, attempt: lockout.Attempt, candidates: Sequence[dict[str, Any]], login_name: str, code: str,
                   new: str, source: str) -> dict[str, Any] | None:
    """Exchange a reset code for a new password; None (audited, the attempt counts) when the code opens no account.

    A login in several domains: the code says whose it is (each user's code is its own).
    """
    whys = [passwords.consume_reset(conn, c["id"] if c["enabled"] else None, code) for c in candidates] or [
        passwords.consume_reset(conn, None, code)
    ]
    user = next((c for c, why in zip(candidates, whys, strict=False) if not why), None)  # no candidates: one why, for no user
    if user is None:
        one = candidates[0] if len(candidates) == 1 else None
        why = "unknown user" if not candidates else "user disabled" if one and not one["enabled"] else whys[0]
        conn.execute(sa.insert(t.audit_log).values(
            at=now(), actor=f"user:{login_name}"[:220], action="password_reset_failed", object_type="user",
            object_id=str(one["id"]) if one else "", company_id=one["company_id"] if one else None, source=source[:64], detail={"reason": why}))
        lockout.failed(conn, attempt, source, one)
        return None
    conn.execute(sa.update(t.users).where(t.users.c.id == user["id"]).values(password_hash=hash_password(new)))
    n = revoke_all(conn, "user", user["id"])
    lockout.succeeded(conn, attempt)
    conn.execute(sa.insert(t.audit_log).values(
        at=now(), actor=f"user:{login_name}"[:220], action="password_reset", object_type="user", object_id=str(user["id"]),
        company_id=user["company_id"], source=source[:64], detail={"revoked": n}))
    return {"user_id": user["id"], "company_id": user["company_id"], "revoked": n}
