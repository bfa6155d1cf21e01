"""``POST /api/v1/auth/negotiate``: HTTP Negotiate logins (RFC 4559), Kerberos or NTLM (guide 6.2).

The exchange, as browsers and ``curl --negotiate`` do it:

1. no ``Authorization`` header: 401 with ``WWW-Authenticate: Negotiate``;
2. ``Authorization: Negotiate <base64>``: the auth method with the ``negotiate``
   capability (``WindowsSecurity``) takes the token.  When it needs another leg (NTLM)
   the answer is 401 with ``WWW-Authenticate: Negotiate <token>``; the client sends the
   next token *on the same connection* (the half-made context is bound to it);
3. once the context is established the name is mapped to a TWP user, who must exist,
   be enabled and have the method in its ``AuthMethods`` chain; the answer is the token
   of ``/auth/login`` (same JSON, plus ``principal`` and ``protocol``) with the final
   mutual-auth token, when Kerberos gives one, in ``WWW-Authenticate``.

Every refusal after the token was read is written to the audit log like a failed login.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from aiohttp import web

from twpcore import lockout, sessions
from twpcore.app import Kernel
from twpcore.auth import ChecksBusy
from twpcore.http.core import KERNEL, ApiError, Route, json_error, store_of
from twpcore.http.routes import busy, checked, lockout_gate
from twpcore.kinds import AuthMethod, Kind, NegotiateRefused, NegotiateStep

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 48_000
"""Larger tokens are refused before decoding: Windows' largest MaxTokenSize (tickets of users in very many groups)."""


def _challenge(status: int, error: str, detail: str, schemes: tuple[str, ...], token: bytes | None = None) -> web.Response:
    """A JSON error with one ``WWW-Authenticate`` header per scheme (the token goes with the scheme the client used)."""
    resp = web.json_response({"error": error, "detail": detail, "field": None}, status=status)
    for scheme in schemes:
        resp.headers.add("WWW-Authenticate", scheme + (" " + base64.b64encode(token).decode() if token else ""))
    return resp


def _method(kernel: Kernel) -> AuthMethod:
    ready = kernel.instances.ready(Kind.AUTH_METHOD)
    for name in sorted(ready):
        method = ready[name]
        if isinstance(method, AuthMethod) and "negotiate" in type(method).capabilities:  # AUTH_METHOD types subclass AuthMethod
            return method
    installed = [name for (kind, name), inst in kernel.instances.instances.items()
                 if kind == Kind.AUTH_METHOD and inst.type is not None and "negotiate" in inst.type.cls.capabilities]
    if installed:
        raise ApiError(503, "auth_method_unavailable", f"the auth method {installed[0]} is not ready; "
                       "an administrator can see why in GET /api/v1/plugins (instances)")
    raise ApiError(503, "auth_method_unavailable", "no installed auth method speaks HTTP Negotiate; "
                   "an administrator must install the twp-windows-auth plugin (WindowsSecurity)")


def connection_key(request: web.Request) -> tuple[Any, ...]:
    """The client's TCP connection: its peer address and port, and the transport object serving it."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return (tuple(peer) if isinstance(peer, (list, tuple)) else peer, id(transport))


async def negotiate(request: web.Request) -> web.Response:
    """Log a user in with ``Authorization: Negotiate`` (Kerberos, NTLM)."""
    kernel = request.app[KERNEL]
    method = _method(kernel)
    source = request.remote or ""
    offered = method.negotiate_schemes()
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    used = next((s for s in offered if s.lower() == scheme.lower()), None)
    if used is None or not value.strip():
        return _challenge(401, "negotiate_required", "send Authorization: Negotiate <token> (Kerberos or NTLM), "
                          "e.g. curl --negotiate -u : -X POST .../api/v1/auth/negotiate", offered)
    if used == "NTLM" and not value.strip().startswith("TlRMTVNTUA"):  # base64 of "NTLMSSP"
        raise ApiError(400, "bad_negotiate_token", "Authorization: NTLM carries a token that is not NTLM; send NTLM messages, "
                       "or Kerberos and SPNEGO tokens with Authorization: Negotiate")
    value = value.strip()
    if len(value) > MAX_TOKEN_BYTES * 4 // 3 + 4:
        raise ApiError(
            400, "bad_negotiate_token", f"the Negotiate token is {len(value)} characters long; at most {MAX_TOKEN_BYTES} bytes are accepted"
        )
    try:
        token = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_negotiate_token", "the Negotiate token is not valid base64; send Authorization: Negotiate <base64 token>") from None
    if not token:
        raise ApiError(400, "bad_negotiate_token", "the Negotiate token is empty")
    store = store_of(request)
    # Refused tokens count against the source address like failed logins (twpcore.lockout): NTLM answers are
    # password guesses.  The NTLM user name of a refused answer is not known here, so only the address counts.
    attempt, refused = await lockout_gate(kernel, "login", None, source)
    if refused is not None:
        return refused

    async def refuse(status: int, error: str, reason: str, login_name: str, user: dict | None, audit: str = "") -> web.Response:
        await store.run(sessions.negotiate_refused, attempt, login_name or "negotiate", user, source, method.type_name, audit or reason,
                        status == 401)
        return _challenge(401, error, reason, offered) if status == 401 else json_error(status, error, reason)

    try:
        step: NegotiateStep = await checked(kernel, attempt, lambda: method.negotiate(connection_key(request), token))
    except ChecksBusy as exc:
        return busy(exc)
    except NegotiateRefused as exc:
        if exc.status in (400, 503):
            await store.run(lockout.forgive, attempt)
            raise ApiError(exc.status, "bad_negotiate_token" if exc.status == 400 else "auth_method_unavailable", exc.reason) from None
        return await refuse(exc.status, "login_failed", exc.reason, exc.principal, None, exc.audit)
    if not step.complete:
        await store.run(lockout.forgive, attempt)  # one leg of NTLM: the answer comes with the next token
        return _challenge(401, "negotiate_continue", "send the next token from WWW-Authenticate, on the same connection", (used,), step.token)

    try:
        user = await store.run(sessions.find_user, step.login, step.domain)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await refuse(409, "ambiguous_login", f"login {step.login!r} exists in several TWP domains; an administrator can set "
                            'realm_handling = "domain" and realm_domains in [auth.methods.WindowsSecurity] to pick one', step.login, None)
    what = f"{step.protocol or 'Negotiate'} authenticated {step.principal}"
    if user is None:
        where = f" in {step.domain}" if step.domain else ""
        return await refuse(401, "login_failed", f"{what}, but no TWP user has the login {step.login!r}{where}; "
                            "an administrator must create or import it", step.login, None)
    if not user["enabled"]:
        return await refuse(403, "user_disabled", f"user {step.login} is disabled; ask an administrator to enable the account", step.login, user)
    chain = (await store.run(kernel.parameters.resolve_one, user["id"], "AuthMethods")).value
    if method.type_name not in [m.strip() for m in str(chain).split("|")]:
        return await refuse(403, "auth_method_not_allowed", f"{what}, but user {step.login} may not log in with {method.type_name}: "
                            f"its AuthMethods is {chain!r}; an administrator can add {method.type_name} to it", step.login, user)
    headers = {"WWW-Authenticate": f"{used} " + base64.b64encode(step.token).decode()} if step.token else None
    out = await store.run(sessions.negotiate_session, kernel.config.auth, attempt, step.login, user, source, method.type_name,
                          step.principal, step.protocol)
    return web.json_response(out, headers=headers)


def negotiate_routes() -> list[Route]:
    return [Route("POST", "/api/v1/auth/negotiate", negotiate, "public",
                  "Log a user in with HTTP Negotiate (Kerberos or NTLM, guide 6.2)", "auth",
                  # 401: a challenge (WWW-Authenticate) or a refused login; 503: no Negotiate auth method ready.
                  errors=(401, 403, 409, 429, 503))]
