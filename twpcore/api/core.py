"""What every API handler shares: routes with their access level, JSON errors, the caller.

Every route declares who may call it (``public``, ``user``, ``admin`` or ``any``
authenticated caller); the middleware resolves the bearer token before the handler runs,
so no handler can forget to check authentication.  Errors are always JSON:
``{"error": <short code>, "detail": <sentence naming the thing, the value and the fix>,
"field": <offending field or null>}``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Awaitable, Callable

import attrs
from aiohttp import web

from twpcore.auth import Principal, TokenError, principal_for_token

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCESS = ("public", "user", "admin", "any")
KERNEL = web.AppKey("kernel", object)
WEBSOCKETS = web.AppKey("websockets", object)
OPENAPI = web.AppKey("openapi", dict)
PRINCIPAL = web.RequestKey("principal", object)
BODY = web.RequestKey("body", dict)
BODY_SCHEMA = web.RequestKey("body_schema", dict)


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def bad_request(detail: str, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", detail, field)


def not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found", None)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def json_error(status: int, error: str, detail: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail, "field": field}, status=status)


@attrs.frozen
class Route:
    """One HTTP route and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    access: str = "admin"
    summary: str = ""
    tag: str = "misc"
    body: dict[str, Any] | None = None
    """JSON schema of the request body, when there is one."""
    query: tuple[tuple[str, str, str], ...] = ()
    """Query parameters: (name, JSON type, description)."""
    plugin: str | None = None
    """The plugin that registered it; ``None`` for kernel routes."""
    status: int = 200
    """The status of a successful answer (201 for creations, 204 for empty answers)."""


_PATH = re.compile(r"^/api/v1/[A-Za-z0-9_\-/{}.]+$")


def check_plugin_route(plugin: str, call: tuple) -> Route:
    """Validate a ``register(method, path, handler, ...)`` call from ``twp_register_routes``."""
    args, kw = call
    if len(args) != 3:
        raise ValueError(f"register() takes (method, path, handler, *, access=, summary=, body=), got {len(args)} positional arguments")
    method, path, handler = args
    access = kw.pop("access", "user")
    if access not in ACCESS:
        raise ValueError(f"route {path}: access must be one of {ACCESS}, got {access!r}")
    if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValueError(f"route {path}: unsupported method {method!r}")
    if not isinstance(path, str) or not _PATH.match(path):
        raise ValueError(f"route path must start with /api/v1/, got {path!r}")
    unknown = set(kw) - {"summary", "body", "query", "status"}
    if unknown:
        raise ValueError(f"route {path}: unknown options {sorted(unknown)}")
    body = kw.get("body")
    if body is not None and (not isinstance(body, dict) or body.get("type") != "object"):
        raise ValueError(f'route {path}: body must be a JSON schema of an object ({{"type": "object", ...}}), got {body!r}'[:300])
    status = kw.get("status", 200)
    if status not in (200, 201, 202, 204):
        raise ValueError(f"route {path}: status must be 200, 201, 202 or 204, got {status!r}")
    return Route(method.upper(), path, handler, access, kw.get("summary", ""), f"plugin:{plugin}", body, tuple(kw.get("query", ())), plugin, status)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # Browsers cannot set headers on WebSocket upgrades: accept the token as a query value there.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token")
    return None


_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list, "null": type(None)}


def check_body(schema: dict[str, Any], data: dict[str, Any]) -> None:
    """Check a JSON object body against the top level of its documented schema.

    Required properties must be there, values must have the documented type (and
    bounds), and with ``additionalProperties: false`` no other key is accepted, so the
    OpenAPI document always says what the endpoint accepts.  Handlers check meaning.
    """
    props: dict[str, Any] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        for key in data:
            if key not in props:
                raise bad_request(f"unknown field {key!r}; this endpoint accepts: {', '.join(props) or 'no fields'}", key)
    for key in data:
        if isinstance(props.get(key), dict) and props[key].get("readOnly"):
            raise bad_request(f"field {key}: {props[key].get('description') or 'read-only here'}", key)
    for key in schema.get("required", ()):
        if key not in data:
            raise bad_request(f"field {key} is required", key)
    for key, sub in props.items():
        if key not in data or not isinstance(sub, dict) or "type" not in sub:
            continue
        value = data[key]
        types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        ok = any(isinstance(value, _JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool)) for t in types if t in _JSON_TYPES)
        if not ok:
            shown = "another type" if sub.get("writeOnly") else json.dumps(value)[:60]  # secrets are never echoed
            raise bad_request(f"field {key}: expected {' or '.join(types)}, got {shown}", key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if ("minimum" in sub and value < sub["minimum"]) or ("maximum" in sub and value > sub["maximum"]):
                raise bad_request(f"field {key}: expected {sub.get('minimum', '')}-{sub.get('maximum', '')}, got {value}", key)


async def resolve_principal(request: web.Request) -> Principal | None:
    token = bearer(request)
    if not token:
        return None
    kernel = request.app[KERNEL]
    try:
        return await kernel.store.read(principal_for_token, token)  # type: ignore[attr-defined]
    except TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


def guard(route: Route) -> Handler:
    """Wrap a handler so it only runs for callers its ``access`` level admits."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if route.access == "public":
            # A stale token must not lock anyone out of logging in again: public routes
            # treat a bad token as no token.
            try:
                principal = await resolve_principal(request)
            except ApiError:
                principal = None
        else:
            principal = await resolve_principal(request)
            if principal is None:
                raise ApiError(401, "unauthorized", "this endpoint needs a bearer token; log in with POST /api/v1/auth/login")
            if route.access == "admin" and not principal.is_admin:
                raise forbidden("this endpoint is for administrators")
            if route.access == "user" and principal.is_admin:
                raise forbidden("this endpoint is for users; administrators use the admin endpoints")
        request[PRINCIPAL] = principal
        if route.body is not None:
            request[BODY_SCHEMA] = route.body
        return await route.handler(request)

    guarded.__name__ = getattr(route.handler, "__name__", "handler")
    return guarded


def principal(request: web.Request) -> Principal:
    p = request.get(PRINCIPAL)
    if p is None:  # pragma: no cover - guard() makes this unreachable
        raise ApiError(401, "unauthorized", "not authenticated")
    return p


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.error, exc.detail, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text or exc.reason
        if exc.status == 404:
            detail = f"no API endpoint {request.method} {request.path}; see /api/v1/openapi.json"
        elif exc.status == 405:
            detail = f"method {request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            detail = "request body too large"
        return json_error(exc.status, exc.reason.lower().replace(" ", "_"), detail)
    except Exception:  # noqa: BLE001
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error in %s %s (ref %s)", request.method, request.path, ref)
        return json_error(500, "internal_error", f"the server failed on this request; the log has the details under ref {ref}")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it.

    When the route documents a body schema, the body is checked against it here
    (``check_body``), so every handler accepts exactly what the OpenAPI document says.
    """
    if BODY in request:
        return request[BODY]
    if not request.body_exists:
        raise bad_request("a JSON object body is required")
    try:
        data = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request(f"the body must be a JSON object, got {type(data).__name__}")
    schema = request.get(BODY_SCHEMA)
    if schema is not None:
        check_body(schema, data)
    request[BODY] = data
    return data


def query_int(request: web.Request, name: str, default: int | None = None, *, lo: int = 0, hi: int = 10**9) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f'query parameter {name}: expected an integer, got "{raw}"', name) from None
    if not lo <= value <= hi:
        raise bad_request(f"query parameter {name}: expected {lo}-{hi}, got {value}", name)
    return value


def path_int(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise bad_request(f'path parameter {name}: expected a numeric id, got "{raw}"', name)
    return int(raw)
