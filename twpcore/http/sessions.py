"""Sessions beyond a login: token refresh, lock-out administration, password change and reset.

- ``POST /api/v1/auth/refresh`` rotates a live token within its session's maximum
  lifetime (``auth.session_max_lifetime``, ``auth.admin_session_max_lifetime``).
- ``GET /api/v1/users/{id}/lockout``, ``POST /api/v1/users/{id}/unlock``,
  ``POST /api/v1/admins/{id}/unlock``, ``GET /api/v1/lockouts`` and
  ``POST /api/v1/lockouts/unlock`` show and lift lock-outs (``twpcore.lockout``).
- ``POST /api/v1/me/password`` changes one's TWS password; ``POST
  /api/v1/users/{id}/password-reset`` gives an administrator a one-time code (e-mailed
  to the user when SMTP is set up), which ``POST /api/v1/auth/password-reset``
  exchanges for a new password.  Every new password follows ``twpcore.passwords``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from twpcore import lockout, passwords, sessions
from twpcore.admin import accounts
from twpcore.app import Kernel
from twpcore.auth import ChecksBusy, SessionEnded, TokenError, hash_password, refresh_token, tokens_revoked_event, verify_password
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, read_json, store_of
from twpcore.http.routes import _login_fields, busy, checked, lockout_gate
from twpcore.mail import MailError, send_blocking

log = logging.getLogger(__name__)
RESET_REFUSED = "the login or the reset code is wrong, used or expired; ask an administrator for a new code"


# -- refresh ---------------------------------------------------------------------------

async def refresh(request: web.Request) -> web.Response:
    """Rotate the caller's token: the answer carries a new one, the old one stops working."""
    who = principal(request)
    kernel = request.app[KERNEL]
    cfg = kernel.config.auth
    lifetime, longest = (cfg.admin_token_lifetime, cfg.admin_session_max_lifetime) if who.is_admin else (cfg.token_lifetime, cfg.session_max_lifetime)
    try:
        token, expires, ends, method = await store_of(request).run(refresh_token, who.token_id, lifetime, longest, request.remote or "")
    except SessionEnded as exc:
        raise ApiError(401, "session_expired", str(exc)) from None
    except TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    kernel.events.publish(tokens_revoked_event(who.type, who.id, None if who.is_admin else min(who.companies, default=None), who.token_id))
    body: dict[str, Any] = {"token": token, "token_type": "Bearer", "expires_at": expires.isoformat(), "session_expires_at": ends.isoformat()}
    if who.is_admin:
        body["admin"] = {"id": who.id, "login": who.login, "super_user": who.super_user}
    else:
        body["method"] = method
        body["user"] = {"id": who.id, "login": who.login, "domain_id": who.domain_id, "company_id": min(who.companies, default=None)}
    return web.json_response(body)


# -- lock-outs ---------------------------------------------------------------------------

async def user_lockout(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    return web.json_response(await store_of(request).run(accounts.user_lockout, kernel.config.auth, who, ident))


def _unlock_route(resource: str, scope: str) -> Any:
    async def unlock(request: web.Request) -> web.Response:
        who, ident = principal(request), path_int(request)
        kernel = request.app[KERNEL]
        out = await store_of(request).run(accounts.unlock_account, kernel.config.auth, who, resource, scope, ident, request.remote or "")
        return web.json_response(out)

    return unlock


async def lockouts(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.super_user:
        raise ApiError(403, "forbidden", "only super users list every lock-out; see GET /api/v1/users/{id}/lockout for one user")
    kernel = request.app[KERNEL]
    items = await store_of(request).run(lockout.current, kernel.config.auth)
    return web.json_response({"items": items, "total": len(items)})


async def unlock_any(request: web.Request) -> web.Response:
    """Lift the lock of a source address or of a login name that matches no account (super users)."""
    who = principal(request)
    if not who.super_user:
        raise ApiError(403, "forbidden", "only super users lift address lock-outs; unlock a user with POST /api/v1/users/{id}/unlock")
    data = await read_json(request)
    scope = data["scope"]
    if scope not in lockout.SCOPES:
        raise bad_request(f'scope: expected one of {", ".join(lockout.SCOPES)}, got {scope!r}', "scope")
    subject = data["subject"] if scope == "address" else lockout.login_key(data["subject"])
    kernel = request.app[KERNEL]
    return web.json_response(await store_of(request).run(accounts.unlock_subject, kernel.config.auth, who, scope, subject, request.remote or ""))


# -- passwords ---------------------------------------------------------------------------

def _rules(kernel: Kernel, password: str, login: str, field: str) -> None:
    try:
        passwords.check(kernel.config.auth, password, login)
    except passwords.PasswordRejected as exc:
        raise ApiError(422, exc.rule, str(exc).replace("password:", f"{field}:", 1), field) from None


async def change_password(request: web.Request) -> web.Response:
    """A user changes its own TWS password; its other tokens stop working."""
    who = principal(request)
    kernel = request.app[KERNEL]
    data = await read_json(request)
    current, new = data["current_password"], data["new_password"]
    _rules(kernel, new, who.login, "new_password")
    source = request.remote or ""
    attempt, refused = await lockout_gate(kernel, "login", who.login, source)
    if refused is not None:
        return refused  # a stolen token must not become a way to guess the password
    stored = await store_of(request).read(sessions.password_hash_of, who.id)
    try:
        right = await checked(kernel, attempt, lambda: asyncio.to_thread(verify_password, stored, current))
    except ChecksBusy as exc:
        return busy(exc)
    if right and new == current:  # ``current`` matched the hash: no second argon2 needed to see the password is unchanged
        await store_of(request).run(lockout.succeeded, attempt)
        raise ApiError(422, "password_unchanged", "new_password: it is the current password; choose a new one", "new_password")
    new_hash = await asyncio.to_thread(hash_password, new) if right else ""
    out = await store_of(request).run(sessions.change_password, who, attempt, right, stored, new_hash, source)
    if out is None:
        raise ApiError(403, "wrong_password", "current_password: this is not your current TWP password", "current_password")
    kernel.events.publish(tokens_revoked_event("user", who.id, min(who.companies, default=None)))
    return web.json_response(out)


async def create_reset(request: web.Request) -> web.Response:
    """An administrator gets a one-time code for a user to choose a new password (shown once)."""
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    data = await read_json(request) if request.body_exists else {}
    send = data.get("send_email", True)
    mail_timeout = getattr(getattr(kernel.mail, "options", None), "mail_timeout", 20.0)
    out = await store_of(request).run(accounts.create_reset_code, kernel.config.auth, kernel.parameters, mail_timeout, who, ident, bool(send),
                                      request.remote or "")
    mail = out.pop("mail")
    out["emailed_to"], out["email_error"] = None, None
    if mail is not None:
        settings, message = mail
        try:
            await asyncio.to_thread(send_blocking, settings, message)
            out["emailed_to"] = message["To"]
            log.info("password-reset code for user %s e-mailed via %s", ident, settings.where)
        except MailError as exc:
            out["email_error"] = str(exc)
            log.warning("password-reset code for user %s not e-mailed: %s", ident, exc)
    return web.json_response(out, status=201)


async def complete_reset(request: web.Request) -> web.Response:
    """Exchange a reset code for a new password; every token of the user stops working."""
    kernel = request.app[KERNEL]
    data = await read_json(request)
    login_name, _, domain = _login_fields(data)
    code, new = data["code"], data["new_password"]
    if len(code) > 64 or len(new) > 1024:
        raise bad_request("code or new_password too long", "code" if len(code) > 64 else "new_password")
    source = request.remote or ""
    _rules(kernel, new, login_name, "new_password")
    attempt, refused = await lockout_gate(kernel, "login", login_name, source)
    if refused is not None:
        return refused
    # A login in several domains: the code says whose it is (each user's code is its own), so no domain is asked.
    candidates = await store_of(request).read(sessions.find_users, login_name, domain)
    try:
        out = await checked(kernel, attempt,
                            lambda: store_of(request).run(sessions.complete_reset, attempt, candidates, login_name, code, new, source))
    except ChecksBusy as exc:
        return busy(exc)
    if out is None:
        raise ApiError(401, "invalid_reset_code", RESET_REFUSED, "code")
    kernel.events.publish(tokens_revoked_event("user", out["user_id"], out["company_id"]))
    return web.json_response({"revoked": out["revoked"]})


def _object(required: tuple[str, ...], **props: Any) -> dict[str, Any]:
    """The schema of a JSON object body with exactly ``props``, ``required`` among them."""
    return {"type": "object", "required": list(required), "additionalProperties": False, "properties": props}


def session_routes() -> list[Route]:
    obj = _object
    secret = {"type": "string", "writeOnly": True}
    return [
        Route("POST", "/api/v1/auth/refresh", refresh, "any", "Exchange a live token for a new one (the old one stops working)", "auth"),
        Route(
            "POST",
            "/api/v1/auth/password-reset",
            complete_reset,
            "public",
            "Choose a new password with a reset code from an administrator",
            "auth",
            body=obj(
                ("login", "code", "new_password"),
                login={"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\u0000-\u001f]*[^\s\u0000-\u001f][^\u0000-\u001f]*$"},
                domain={"type": "string", "description": "Company/Domain when the login exists in several domains"},
                code={"type": "string", "writeOnly": True, "maxLength": 64, "description": "the one-time code, e.g. ABCD-EFGH-JKLM-NPQR"},
                new_password={**secret, "maxLength": 1024},
            ),
            errors=(401, 422, 429),  # 401: a wrong, used or expired code; 429: locked out, or too many password checks
            rules=("new_password follows the server's password rules (auth.password_min_length...), else 422",),
        ),
        Route(
            "POST",
            "/api/v1/me/password",
            change_password,
            "user",
            "Change one's own TWS password (other tokens stop working)",
            "auth",
            body=obj(("current_password", "new_password"), current_password=secret, new_password=secret),
        ),
        Route(
            "POST",
            "/api/v1/users/{id}/password-reset",
            create_reset,
            "admin",
            "A one-time password-reset code for a user (shown once; e-mailed when SMTP is set up)",
            "users",
            body=obj((), send_email={"type": "boolean", "description": "e-mail the code to the user when possible (default true)"}),
            status=201,
        ),
        Route("GET", "/api/v1/users/{id}/lockout", user_lockout, "admin", "A user's failed logins and lock-out", "users"),
        Route("POST", "/api/v1/users/{id}/unlock", _unlock_route("users", "login"), "admin", "Lift a user's lock-out", "users"),
        Route("POST", "/api/v1/admins/{id}/unlock", _unlock_route("admins", "admin"), "admin", "Lift an admin account's lock-out", "admins"),
        Route("GET", "/api/v1/lockouts", lockouts, "admin", "Login names and addresses locked now (super users)", "auth"),
        Route(
            "POST",
            "/api/v1/lockouts/unlock",
            unlock_any,
            "admin",
            "Lift the lock-out of an address or login name (super users)",
            "auth",
            body=obj(("scope", "subject"), scope={"type": "string", "enum": list(lockout.SCOPES), "description": "login, admin or address"},
                     subject={"type": "string"}),
        ),
    ]
