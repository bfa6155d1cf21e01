"""Kernel endpoints beyond plain CRUD: login, the caller's own view, relations, parameters, system."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from twpcore import lockout, rights, sessions
from twpcore.admin import accounts
from twpcore.app import Kernel
from twpcore.auth import (
    ChainResult,
    ChecksBusy,
    Principal,
    TokenError,
    check_token_id,
    ends_session,
    now,
    revoke_token,
    run_chain,
    tokens_revoked_event,
    verify_password,
)
from twpcore.events import visible_to
from twpcore.http.core import (
    KERNEL,
    PRINCIPAL,
    WEBSOCKETS,
    ApiError,
    Route,
    bad_request,
    open_store,
    path_int,
    principal,
    read_json,
    store_of,
    websocket_only,
)
from twpcore.http.resources import publish_admin
from twpcore.instances import UNRESOLVED
from twpcore.kinds import AuthMethod, Kind, LoginAttempt

log = logging.getLogger(__name__)
T = TypeVar("T")


def _login_fields(data: dict[str, Any]) -> tuple[str, str | None, str | None]:
    login = data.get("login")
    password = data.get("password")
    domain = data.get("domain")
    if not isinstance(login, str) or not login.strip() or len(login) > 200:
        raise bad_request("login: a user name of 1-200 characters is required", "login")
    if any(ord(c) < 32 for c in login):
        raise bad_request("login: control characters are not allowed in a user name", "login")
    if password is not None and (not isinstance(password, str) or len(password) > 1024):
        raise bad_request("password: expected a string of at most 1024 characters", "password")
    if domain is not None and not isinstance(domain, str):
        raise bad_request('domain: expected "Company/Domain" or a domain name', "domain")
    return login.strip(), password, domain


def locked_out(lock: lockout.Lock) -> web.Response:
    """The answer to a login while its name or address is locked: 429 with ``Retry-After``."""
    wait = lock.retry_after()
    what = "this source address" if lock.scope == "address" else "this login"
    return web.json_response({"error": "locked_out", "detail": f"too many failed logins for {what}; try again in {wait} s "
                              "(an administrator can unlock a user with POST /api/v1/users/{id}/unlock)", "field": None},
                             status=429, headers={"Retry-After": str(wait)})


async def lockout_gate(kernel: Kernel, scope: str, login: str | None, source: str) -> tuple[lockout.Attempt, web.Response | None]:
    """Count a login attempt (``lockout.begin``), and the 429 answer to give when its name or address is locked now.

    Call it before any password is checked, so that a locked name or address is no password
    oracle and concurrent attempts cannot pass the threshold.  Then ``lockout.failed``,
    ``lockout.succeeded`` or ``lockout.forgive`` the attempt.
    """
    counters = lockout.keys(scope, login, source)
    got = await open_store(kernel).run(lockout.begin, kernel.config.auth, counters)
    if isinstance(got, lockout.Lock):
        return lockout.Attempt(tuple(counters)), locked_out(got)
    return got, None


async def checked(kernel: Kernel, attempt: lockout.Attempt, check: Callable[[], Awaitable[T]]) -> T:
    """Run a password check in a turn of ``kernel.password_checks``.

    When the queue is full the attempt is taken back (no password was checked) and
    ``ChecksBusy`` raised: answer it with ``busy``.
    """
    try:
        async with kernel.password_checks.turn():
            return await check()
    except ChecksBusy:
        await open_store(kernel).run(lockout.forgive, attempt)
        raise


def busy(exc: ChecksBusy) -> web.Response:
    """429 ``busy`` with ``Retry-After``: too many password checks running and waiting."""
    return web.json_response({"error": "busy", "detail": str(exc), "field": None}, status=429, headers={"Retry-After": str(exc.retry_after)})


async def login(request: web.Request) -> web.Response:
    """User login through the auth chain (``AuthMethods`` parameter); lock-out first (``twpcore.lockout``).

    A login in several domains given without ``domain`` has each account's password
    checked; only when one is right is the caller asked for the domain (409), so a
    stranger learns nothing of other companies' logins.
    """
    kernel = request.app[KERNEL]
    data = await read_json(request)
    login_name, password, domain = _login_fields(data)
    application = data.get("application")
    source = request.remote or ""
    auth_cfg = kernel.config.auth
    store = store_of(request)
    attempt, refused = await lockout_gate(kernel, "login", login_name, source)
    if refused is not None:
        return refused
    candidates = await store.run(sessions.users_and_chains, kernel.parameters, login_name, domain)
    methods = {name: m for name, m in kernel.instances.ready(Kind.AUTH_METHOD).items() if isinstance(m, AuthMethod)}  # all are: plugins.py checks

    async def check() -> list[ChainResult]:
        return [await run_chain(methods, chain, LoginAttempt(login_name, password, user, source, request.headers))
                for user, chain in candidates]

    try:
        results = await checked(kernel, attempt, check)
    except ChecksBusy as exc:
        return busy(exc)
    accepted = [(user, r) for (user, _), r in zip(candidates, results, strict=True) if r.accepted]
    if not accepted:
        result = next((r for r in results if r.error), results[0])
        # A crashed method (result.error) is the server's fault, not a guess: the attempt does not count.
        await store.run(sessions.login_refused, attempt, login_name, source, candidates, results, bool(result.error))
        raise ApiError(401, "login_failed", result.reason or "invalid login or password")
    user, result = accepted[0]
    if len(candidates) > 1:
        assert user is not None  # several candidates are several users
        await store.run(sessions.login_needs_domain, attempt, login_name, user, source, result.method)
        raise sessions.ambiguous(login_name)
    if user is None:
        # A method vouched for someone TWP does not know: there is no account to log into.
        reason = f"auth method {result.method} accepted {login_name!r}, but no TWP user has this login; an administrator must create or import it"
        await store.run(sessions.login_of_nobody, attempt, login_name, source, result.method, reason)
        raise ApiError(401, "login_failed", reason)
    if not user["enabled"]:
        await store.run(lockout.forgive, attempt)
        raise ApiError(403, "user_disabled", f"user {login_name} is disabled; ask an administrator to enable the account")
    out = await store.run(sessions.open_user_session, auth_cfg, attempt, login_name, user, source, result.method, application)
    if isinstance(out, rights.RightsError):
        raise ApiError(out.status, "application_not_granted" if out.status == 403 else "invalid_application", str(out), out.field)
    return web.json_response(out)


async def admin_login(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    data = await read_json(request)
    login_name, password, _ = _login_fields(data)
    if password is None:
        raise bad_request("password is required", "password")
    source = request.remote or ""
    auth_cfg = kernel.config.auth
    attempt, refused = await lockout_gate(kernel, "admin", login_name, source)
    if refused is not None:
        return refused
    row = await store_of(request).read(sessions.find_admin, login_name)
    try:  # an unknown admin is checked against a dummy hash: the answer takes as long
        right = await checked(kernel, attempt, lambda: asyncio.to_thread(verify_password, row.password_hash if row else None, password))
    except ChecksBusy as exc:
        return busy(exc)
    ok = bool(right and row is not None and row.enabled)
    out = await store_of(request).run(sessions.admin_login_outcome, auth_cfg, attempt, login_name, row, ok, source)
    if out is None:
        raise ApiError(401, "login_failed", "invalid admin login or password")
    return web.json_response(out)


async def logout(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    await store_of(request).run(revoke_token, who.token_id)
    kernel.events.publish(tokens_revoked_event(who.type, who.id, None if who.is_admin else min(who.companies, default=None), who.token_id))
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    who = principal(request)
    if who.is_admin:
        return web.json_response(who.as_json())
    return web.json_response(await store_of(request).run(sessions.profile, who))


def _resolved_json(kernel: Kernel, resolved: dict[str, Any], expert: bool) -> list[dict[str, Any]]:
    out = []
    for name, r in sorted(resolved.items()):
        d = kernel.parameters.definitions[name]
        if d.expert and not expert:
            continue
        out.append({"name": name, "value": "***" if d.secret else r.value, "source": r.source, "application": d.application, "expert": d.expert})
    return out


async def my_parameters(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    resolved = await store_of(request).run(kernel.parameters.resolve, who.id)
    return web.json_response({"items": _resolved_json(kernel, resolved, True)})


async def user_parameters(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    ident = path_int(request)
    resolved = await store_of(request).run(accounts.user_parameters, kernel.parameters, who, ident)
    return web.json_response({"items": _resolved_json(kernel, resolved, request.query.get("expert") == "true")})


async def parameter_definitions(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    expert = request.query.get("expert") == "true"
    app = request.query.get("application")
    q = request.query.get("q", "").lower()
    items = [d.as_json() for d in sorted(kernel.parameters.definitions.values(), key=lambda d: (d.application, d.name))
             if (expert or not d.expert) and (not app or d.application == app) and (not q or q in d.name.lower())]
    return web.json_response({"items": items, "total": len(items)})


def _membership_routes(m: accounts.Membership) -> list[Route]:
    """GET/POST/DELETE routes for a many-to-many relation such as group members."""
    pres, cres, child_col = m.parent_res, m.child_res, m.child_col

    async def list_members(request: web.Request) -> web.Response:
        who, ident = principal(request), path_int(request)
        return web.json_response(await store_of(request).run(accounts.list_members, m, who, ident))

    async def add_member(request: web.Request) -> web.Response:
        who, ident = principal(request), path_int(request)
        data = await read_json(request)
        member = data.get(child_col)
        if not isinstance(member, int) or isinstance(member, bool):
            raise bad_request(f"{child_col}: an integer id is required", child_col)
        p = await store_of(request).run(accounts.add_member, m, who, ident, member, request.remote or "")
        publish_admin(request, pres, "members_changed", {"id": ident, "company_id": p._company_id, "domain_id": p.domain_id})
        return web.Response(status=204)

    async def remove_member(request: web.Request) -> web.Response:
        who, ident = principal(request), path_int(request)
        member = path_int(request, "member")
        p = await store_of(request).run(accounts.remove_member, m, who, ident, member, request.remote or "")
        publish_admin(request, pres, "members_changed", {"id": ident, "company_id": p._company_id, "domain_id": p.domain_id})
        return web.Response(status=204)

    base = m.base
    body = {"type": "object", "required": [child_col], "additionalProperties": False, "properties": {child_col: {"type": "integer"}}}
    return [
        Route("GET", base, list_members, "admin", f"List the {cres.name} of a {pres.singular}", pres.name),
        Route("POST", base, add_member, "admin", f"Add a {cres.singular} to a {pres.singular}", pres.name, body=body, status=204),
        Route("DELETE", base + "/{member}", remove_member, "admin", f"Remove a {cres.singular} from a {pres.singular}", pres.name, status=204),
    ]


async def admin_companies(request: web.Request) -> web.Response:
    """Set the companies a limited admin manages (guide 10.1)."""
    who, ident = principal(request), path_int(request)
    if not who.super_user:
        raise ApiError(403, "forbidden", "only super users manage admin accounts")
    data = await read_json(request)
    companies = data.get("companies")
    if not isinstance(companies, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in companies):
        raise bad_request("companies: a list of company ids is required", "companies")
    return web.json_response(await store_of(request).run(accounts.set_admin_companies, who, ident, companies, request.remote or ""))


async def get_admin_companies(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    return web.json_response(await store_of(request).run(accounts.admin_companies, who, ident))


async def quotas(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    return web.json_response(await store_of(request).run(accounts.quotas, who, ident))


async def set_quota(request: web.Request) -> web.Response:
    """Set (or with ``seats: null`` remove) a company's seat quota for one application."""
    who, ident = principal(request), path_int(request)
    app = request.match_info["application"]
    if app not in rights.APPLICATIONS:
        raise ApiError(404, "not_found", f'application "{app}" is unknown; use one of {", ".join(rights.APPLICATIONS)}')
    if not who.super_user:
        raise ApiError(403, "forbidden", "only super users set license quotas")
    data = await read_json(request)
    seats = data.get("seats", ...)
    if seats is not None and (not isinstance(seats, int) or isinstance(seats, bool) or seats < 0):
        raise bad_request("seats: a whole number >= 0, or null for no quota, is required", "seats")
    return web.json_response(await store_of(request).run(accounts.set_quota, who, ident, app, seats, request.remote or ""))


async def revoke_user_tokens(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    out = await store_of(request).run(accounts.revoke_user_tokens, who, ident, request.remote or "")
    request.app[KERNEL].events.publish(tokens_revoked_event("user", ident, out.pop("company_id")))
    return web.json_response(out)


async def audit_log(request: web.Request) -> web.Response:
    who = principal(request)
    from twpcore.http.core import query_int

    limit = query_int(request, "limit", 100, lo=1, hi=1000)
    offset = query_int(request, "offset", 0)
    return web.json_response(await store_of(request).run(accounts.audit_page, who, limit, offset))


async def _limited_view(kernel: Kernel, who: Principal) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Plugins and instances as an admin limited to companies sees them.

    Instances of its companies in full; server-wide ones (no ``company`` nor ``domain``)
    without their ``reason``; other companies' not at all.  Plugins keep their name,
    version and state, not their error texts, which may name another company's link.
    """
    owners = await open_store(kernel).read(kernel.instances.owners)
    items = []
    for key, inst in kernel.instances.instances.items():
        owner = owners.get(key, UNRESOLVED)
        if owner is None:
            items.append({**inst.as_json(), "reason": None})
        elif owner in who.companies:
            items.append(inst.as_json())
    return [{**p, "reason": None, "last_error": None} for p in kernel.plugins.as_json()], items


async def health(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    who = request.get(PRINCIPAL)
    body = kernel.health(detailed=bool(who and who.is_admin))
    if who is not None and who.is_admin and not who.super_user:
        body["plugins"]["items"], body["instances"]["items"] = await _limited_view(kernel, who)
        body["warnings"] = kernel.warnings_for(who.companies)
        body["call_logs"]["last_error"] = None  # a store error may quote another company's rows
        body.pop("cluster", None)  # nodes and every company's PBX links: the operator's view (docs/cluster.md)
    return web.json_response(body, status=200 if body["ready"] else 503)


async def plugins(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    who = principal(request)
    if not who.super_user:
        mine, instances = await _limited_view(kernel, who)
        return web.json_response({"plugins": mine, "instances": instances})
    return web.json_response({"plugins": kernel.plugins.as_json(), "instances": kernel.instances.as_json()})


async def events_ws(request: web.Request) -> web.StreamResponse:
    """Live events the caller may see; ``system.resync`` when it fell behind."""
    who = principal(request)
    kernel = request.app[KERNEL]
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    sub = kernel.events.subscribe(lambda e: e.type == "system.resync" or visible_to(who, e) or ends_session(who, e),
                                  name=f"ws {who.type}:{who.login}", queue_size=kernel.config.http.websocket_queue)
    request.app[WEBSOCKETS].add(ws)
    await ws.send_json({"type": "system.hello", "data": {"principal": who.as_json()}})
    loop = asyncio.get_running_loop()
    every = kernel.config.auth.websocket_recheck

    async def pump() -> None:
        # The socket lives as long as the token: at its expiry, its revocation or when its
        # user or admin is disabled or deleted, the server closes it (code 4001).  Changes
        # made here are seen at once (events); those made by another kernel on the same
        # store within auth.websocket_recheck.
        next_check = loop.time() + every
        while True:
            wait = max(0.0, next_check - loop.time())
            if who.expires_at is not None:
                wait = min(wait, max(0.0, (who.expires_at - now()).total_seconds()))
            try:
                event = await asyncio.wait_for(sub.get(), wait)
            except TimeoutError:
                event = None
            if who.expires_at is not None and now() >= who.expires_at:
                await ws.close(code=4001, message=b"token expired; log in again")
                return
            if (event is None and loop.time() >= next_check) or (event is not None and ends_session(who, event)):
                next_check = loop.time() + every
                try:
                    await store_of(request).run(check_token_id, who.token_id)
                except TokenError as exc:
                    await ws.close(code=4001, message=str(exc).encode()[:120])
                    return
                except Exception as exc:  # noqa: BLE001 - a store hiccup must not kill the socket; next check later
                    log.warning("events WebSocket of %s:%s could not check its token: %s", who.type, who.login, exc)
            if event is not None and (event.type == "system.resync" or visible_to(who, event)):
                await ws.send_json(event.as_json())

    task = asyncio.get_running_loop().create_task(pump())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str("pong")
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        task.cancel()
        kernel.events.unsubscribe(sub)
        request.app[WEBSOCKETS].discard(ws)
    return ws


def kernel_routes() -> list[Route]:
    login_body: dict[str, Any] = {
        "type": "object",
        "required": ["login"],
        "additionalProperties": False,
        "properties": {
            # 1-200 characters, not all blank, no control character (_login_fields)
            "login": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\u0000-\u001f]*[^\s\u0000-\u001f][^\u0000-\u001f]*$"},
            "password": {"type": "string", "writeOnly": True},
            "domain": {"type": "string", "description": "Company/Domain when the login exists in several domains"},
        },
    }
    user_login_body = {**login_body, "properties": {**login_body["properties"], "application": {
        "type": "string", "description": "the application logging in (Caller...): refused unless the user holds it"}}}
    routes = [
        Route("POST", "/api/v1/auth/login", login, "public", "Log a user in through the auth chain", "auth", body=user_login_body,
              errors=(401, 409, 429)),
        Route("POST", "/api/v1/auth/admin-login", admin_login, "public", "Log an administrator in", "auth",
              body={**login_body, "required": ["login", "password"]}, errors=(401, 429)),
        Route("POST", "/api/v1/auth/logout", logout, "any", "Revoke the caller's token", "auth", status=204),
        Route("GET", "/api/v1/me", me, "any", "Who am I: profile, groups, devices, applications", "auth"),
        Route("GET", "/api/v1/me/parameters", my_parameters, "user", "The caller's resolved parameters", "parameters"),
        Route(
            "GET",
            "/api/v1/parameters",
            parameter_definitions,
            "admin",
            "Parameter definitions (expert ones with ?expert=true)",
            "parameters",
            query=(
                ("expert", "boolean", "include expert parameters"),
                ("application", "string", "Server, Caller, System..."),
                ("q", "string", "name contains"),
            ),
        ),
        Route(
            "GET",
            "/api/v1/users/{id}/parameters",
            user_parameters,
            "admin",
            "A user's resolved parameters and where each value comes from",
            "parameters",
        ),
        Route("POST", "/api/v1/users/{id}/revoke-tokens", revoke_user_tokens, "admin", "Revoke every token of a user", "users"),
        Route("GET", "/api/v1/admins/{id}/companies", get_admin_companies, "admin", "Companies a limited admin manages", "admins"),
        Route(
            "PUT",
            "/api/v1/admins/{id}/companies",
            admin_companies,
            "admin",
            "Set the companies a limited admin manages",
            "admins",
            body={
                "type": "object",
                "required": ["companies"],
                "additionalProperties": False,
                "properties": {"companies": {"type": "array", "items": {"type": "integer", "minimum": 1}, "description": "company ids"}},
            },
        ),
        Route("GET", "/api/v1/companies/{id}/quotas", quotas, "admin", "Application seat quotas and usage", "companies"),
        Route(
            "PUT",
            "/api/v1/companies/{id}/quotas/{application}",
            set_quota,
            "admin",
            "Set an application's seat quota",
            "companies",
            body={
                "type": "object",
                "required": ["seats"],
                "additionalProperties": False,
                "properties": {"seats": {"type": ["integer", "null"], "minimum": 0}},
            },
        ),
        Route(
            "GET",
            "/api/v1/audit",
            audit_log,
            "admin",
            "Audit log of logins and admin actions",
            "audit",
            query=(
                ("limit", "integer", "page size, 1-1000 (default 100)", {"minimum": 1, "maximum": 1000}),
                ("offset", "integer", "items to skip", {"minimum": 0, "maximum": 10**9}),
            ),
        ),
        Route(
            "GET", "/api/v1/health", health, "public", "Health: status for everyone, plugin and instance details for admins", "system", errors=(503,)
        ),
        Route("GET", "/api/v1/plugins", plugins, "admin", "Plugins and configured instances with their states", "system"),
        Route("GET", "/api/v1/events", websocket_only(events_ws), "any", "WebSocket of live events filtered by the caller's rights", "events",
              status=101, errors=(426,), rules=("a WebSocket handshake (Upgrade: websocket, RFC 6455): a plain GET answers 426",)),
    ]
    for membership in accounts.MEMBERSHIPS:
        routes += _membership_routes(membership)
    return routes

