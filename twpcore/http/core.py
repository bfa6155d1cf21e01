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
import math
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiohttp import web

from twpcore.app import Kernel
from twpcore.auth import Principal, TokenError, principal_for_token

# Shared with the kernel and plugins (twpcore.plugin_api): re-exported for the handlers.
from twpcore.routing import ACCESS, PRINCIPAL, ApiError, Handler, Route, bad_request, check_plugin_route, forbidden, not_found, principal  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.store import Store

log = logging.getLogger(__name__)
KERNEL = web.AppKey("kernel", Kernel)
WEBSOCKETS = web.AppKey[weakref.WeakSet[web.WebSocketResponse]]("websockets")
"""The open WebSockets, closed with 1001 (going away) on shutdown."""
OPENAPI = web.AppKey("openapi", dict)
BODY = web.RequestKey("body", dict)
BODY_SCHEMA = web.RequestKey("body_schema", dict)


_T = TypeVar("_T")


def api_error(exc: Any) -> ApiError:
    """The ``ApiError`` a service error describes: its ``status``, ``error``, ``detail`` and ``field``."""
    return ApiError(exc.status, exc.error, exc.detail, exc.field)


def service_call(errors: type[Exception]) -> Callable[[Awaitable[_T]], Awaitable[_T]]:
    """``_call = service_call(SmsError)`` in a route module; ``await _call(service.op(...))`` then answers an
    ``SmsError`` as the ``ApiError`` it describes (``api_error``)."""

    async def call(coro: Awaitable[_T]) -> _T:
        try:
            return await coro
        except errors as exc:
            raise api_error(exc) from None

    return call


def open_store(kernel: Kernel) -> Store:
    """The kernel's store, open from ``Kernel.start`` (which runs before the first request is served) to ``Kernel.stop``."""
    if kernel.store is None:
        raise ApiError(503, "not_ready", "the server is not ready: its store is not open (starting or stopping); retry in a moment")
    return kernel.store


def store_of(request: web.Request) -> Store:
    """The store of the kernel serving ``request`` (``open_store``)."""
    return open_store(request.app[KERNEL])


def json_error(status: int, error: str, detail: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail, "field": field}, status=status)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # Browsers cannot set headers on WebSocket upgrades: accept the token as a query value there.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token")
    return None


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


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
        value = data[key] = _checked(key, key, sub, data[key])
        if isinstance(value, list) and isinstance(sub.get("items"), dict) and "type" in sub["items"]:
            value[:] = [_checked(f"{key}[{i}]", key, sub["items"], item) for i, item in enumerate(value)]


def _checked(name: str, field: str, sub: dict[str, Any], value: Any) -> Any:
    """``value`` once it has the documented type and bounds (an integral number as an int), or a 400 naming ``name``."""
    types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
    if "integer" in types and isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
        value = int(value)  # JSON Schema counts 1.0 as an integer, and so do clients generated from the document
    ok = any(
        isinstance(value, _JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool)) for t in types if t in _JSON_TYPES
    )
    if not ok:
        shown = "another type" if sub.get("writeOnly") else json.dumps(value)[:60]  # secrets are never echoed
        raise bad_request(f"field {name}: expected {' or '.join(types)}, got {shown}", field)
    _check_bounds(name, field, sub, value)
    return value


def _check_bounds(name: str, field: str, sub: dict[str, Any], value: Any) -> None:
    """The documented bounds of a number; an integer field without them fits the store's INTEGER columns."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi = sub.get("minimum"), sub.get("maximum")
    types = sub["type"] if isinstance(sub.get("type"), list) else [sub.get("type")]
    if isinstance(value, int) and "integer" in types:
        lo, hi = -MAX_ID - 1 if lo is None else lo, MAX_ID if hi is None else hi
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad_request(f"field {name}: expected {'' if lo is None else lo}-{'' if hi is None else hi}, got {value}", field)


async def resolve_principal(request: web.Request) -> Principal | None:
    token = bearer(request)
    if not token:
        return None
    try:
        return await store_of(request).read(principal_for_token, token)
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
        check_request_text(request)
        check_query(route, request)
        if route.body is not None:
            request[BODY_SCHEMA] = route.body
        return await route.handler(request)

    guarded.__name__ = getattr(route.handler, "__name__", "handler")
    return guarded


def websocket_only(handler: Handler) -> Handler:
    """``handler`` for WebSocket handshakes only: a plain request answers 426 (Upgrade Required, RFC 9110) naming the upgrade.

    A handshake that asks for the upgrade but is malformed (no ``Sec-WebSocket-Key``...) answers 400 from aiohttp's check.
    """

    async def upgraded(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.json_response(
                {"error": "upgrade_required", "field": None,
                 "detail": f"{request.path} is a WebSocket: open it with a WebSocket client (Upgrade: websocket, RFC 6455), "
                           f"not a plain {request.method}"},
                status=426, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        return await handler(request)

    upgraded.__name__ = getattr(handler, "__name__", "handler")
    return upgraded


def check_request_text(request: web.Request) -> None:
    """400 naming the parameter when a path or query value is no valid text (a lone surrogate, a NUL)."""
    for name, value in request.match_info.items():
        _check_text(value, f"path parameter {name}", name)
    for name, value in request.query.items():
        _check_text(name, f"query parameter {_shown(name)!r}", _shown(name))
        _check_text(value, f"query parameter {_shown(name)}", _shown(name))


QUERY_INT_BOUNDS = {"minimum": 0, "maximum": 10**9}
"""The bounds of an integer query parameter that declares none (``query_int``'s defaults)."""


def query_schema(entry: tuple[Any, ...]) -> dict[str, Any]:
    """The JSON schema of a declared query parameter ``(name, type, description[, bounds])``, as the OpenAPI document shows it.

    ``bounds`` holds schema keywords (``minimum``, ``enum``, ``pattern``, ``maxLength``...) and
    ``"required": True`` for a parameter the route cannot do without (shown on the parameter).
    """
    extra = {k: v for k, v in (entry[3] if len(entry) > 3 else {}).items() if k != "required"}
    if entry[1] == "integer":
        extra = {**QUERY_INT_BOUNDS, **extra}
    return {"type": entry[1], **extra}


def check_query(route: Route, request: web.Request) -> None:
    """400 naming the parameter when a declared query value breaks its documented schema.

    As ``check_body`` for bodies: the bounds, choices and lengths in the OpenAPI document are
    enforced here, so a handler never accepts what the document calls invalid.  An empty value
    (``?limit=``) is no integer nor boolean: a 400, as the document says (leave the parameter out instead).
    """
    for entry in route.query:
        name, raw = entry[0], request.query.get(entry[0])
        schema = query_schema(entry)
        if raw is None and len(entry) > 3 and entry[3].get("required"):
            raise bad_request(f"query parameter {name} is required: {entry[2]}", name)
        if raw is None:
            continue
        if schema["type"] == "integer":
            lo, hi = schema["minimum"], schema["maximum"]
            if not _ASCII_INT.fullmatch(raw) or not lo <= int(raw) <= hi:
                raise bad_request(f'query parameter {name}: expected an integer {lo}-{hi} in ASCII digits, got "{_shown(raw)}"', name)
        elif schema["type"] == "boolean" and raw not in ("true", "false"):
            raise bad_request(f'query parameter {name}: expected true or false, got "{_shown(raw)}"', name)
        elif schema["type"] == "string":
            if "enum" in schema and raw not in schema["enum"]:
                raise bad_request(f'query parameter {name}: expected one of {", ".join(schema["enum"])}, got "{_shown(raw)}"', name)
            if not schema.get("minLength", 0) <= len(raw) <= schema.get("maxLength", len(raw)):
                raise bad_request(
                    f"query parameter {name}: expected {schema.get('minLength', 0)}-{schema.get('maxLength', 'any')} characters, got {len(raw)}", name
                )
            if "pattern" in schema and not re.search(schema["pattern"], raw):
                raise bad_request(f'query parameter {name}: {entry[2]}, got "{_shown(raw)}"', name)


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
            # RFC 9110: a 405 names the methods the resource has.
            return web.json_response({"error": "method_not_allowed", "detail": detail, "field": None}, status=405,
                                     headers={"Allow": exc.headers.get("Allow", "")})
        elif exc.status == 413:
            detail = "request body too large"
        return json_error(exc.status, exc.reason.lower().replace(" ", "_"), detail)
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error in %s %s (ref %s)", request.method, request.path, ref)
        return json_error(500, "internal_error", f"the server failed on this request; the log has the details under ref {ref}")


MAX_INT = 2**63 - 1
"""The largest integer a JSON body may carry anywhere (signed 64 bits, SQLite's INTEGER)."""
MAX_ID = 2**31 - 1
"""The largest id, and integer body field without a documented maximum: the store's INTEGER columns are 32-bit on PostgreSQL."""
MAX_DEPTH = 32
"""How deeply arrays and objects may nest in a request body."""
_ASCII_INT = re.compile(r"-?[0-9]{1,19}")  # [0-9], not \d: "²" and "١" are digits to str.isdigit() and \d


class _Huge:
    """A JSON integer too long to be an integer of the store, kept unparsed so the check can name its field."""


_HUGE = _Huge()


def _parse_int(text: str) -> int | _Huge:
    # int() of a 4,300-digit string raises ValueError (CPython's int max str digits), and any
    # integer past 19 digits is out of range anyway: no need to convert it.
    return int(text) if len(text) <= 20 else _HUGE


def check_value(value: Any, field: str | None = None) -> None:
    """400 naming the field when a decoded JSON value cannot reach the store.

    Numbers must be finite and fit in signed 64 bits (floats too), strings must be valid
    Unicode without NUL (a lone surrogate such as ``\\ud800`` cannot be encoded as UTF-8),
    and arrays and objects nest at most ``MAX_DEPTH`` levels.  Iterative, so depth costs no stack.
    """
    # Each item: (value, its path such as "items[3].number" for messages, the top-level field it is in, depth).
    todo: list[tuple[Any, str, str | None, int]] = [(value, field or "body", field, 0)]
    while todo:
        item, path, top, depth = todo.pop()
        if isinstance(item, bool) or item is None:
            continue
        if item is _HUGE or (isinstance(item, int) and not -MAX_INT - 1 <= item <= MAX_INT):
            raise bad_request(f"field {_shown(path, 100)}: integers must be within -2^63..2^63-1 ({-MAX_INT - 1}..{MAX_INT})", top)
        if isinstance(item, float) and not math.isfinite(item):
            raise bad_request(f"field {_shown(path, 100)}: expected a finite number, got {item}", top)
        if isinstance(item, float) and not -MAX_INT - 1 <= item <= MAX_INT:
            # As integers: a client cannot tell 1e19 from 10000000000000000000 (JSON Schema calls both integers).
            raise bad_request(f"field {_shown(path, 100)}: numbers must be within -2^63..2^63-1, got {item}", top)
        if isinstance(item, str):
            _check_text(item, f"field {_shown(path, 100)}", top)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise bad_request(f"field {top}: arrays and objects nest more than {MAX_DEPTH} levels deep", top)
            if isinstance(item, dict):
                for key, sub in item.items():
                    _check_text(key, f"a field name in {_shown(path, 100)}", top)
                    todo.append((sub, key if top is None else f"{path}.{key}", key if top is None else top, depth + 1))
            else:
                todo.extend((sub, f"{path}[{i}]", top, depth + 1) for i, sub in enumerate(item))


def _check_text(text: str, what: str, field: str | None) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{what}: contains a lone surrogate (an unpaired \\ud800-\\udfff escape); send valid Unicode", field) from None
    if "\x00" in text:
        raise bad_request(f"{what}: contains a NUL character (\\u0000), which no field accepts", field)


def parse_json(raw: bytes) -> Any:
    """Decode a JSON request body, or a 400 saying what is wrong with it (never a 500)."""
    try:
        data = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise bad_request(f"the body is not acceptable JSON: arrays and objects nest more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError (both ValueErrors)
        raise bad_request(f"the body is not valid JSON: {str(exc)[:200]}") from None
    check_value(data)
    return data


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it.

    Every value is checked (``check_value``) before any handler sees it.  When the route
    documents a body schema, the body is checked against it here (``check_body``), so
    every handler accepts exactly what the OpenAPI document says.
    """
    if BODY in request:
        return request[BODY]
    schema = request.get(BODY_SCHEMA)
    if not request.body_exists:
        if schema is not None and not schema.get("required"):
            request[BODY] = {}  # every field optional: the document marks the body optional too
            return request[BODY]
        raise bad_request("a JSON object body is required")
    data = parse_json(await request.read())
    if not isinstance(data, dict):
        raise bad_request(f"the body must be a JSON object, got {type(data).__name__}")
    if schema is not None:
        check_body(schema, data)
    request[BODY] = data
    return data


def _shown(raw: str, limit: int = 40) -> str:
    """A request value as an error may echo it: short, and encodable (lone surrogates written ``\\ud800``)."""
    return (raw[:limit] + ("..." if len(raw) > limit else "")).encode("utf-8", "backslashreplace").decode("utf-8")


@overload
def query_int(request: web.Request, name: str, default: int, *, lo: int = 0, hi: int = 10**9) -> int: ...
@overload
def query_int(request: web.Request, name: str, default: None = None, *, lo: int = 0, hi: int = 10**9) -> int | None: ...
def query_int(request: web.Request, name: str, default: int | None = None, *, lo: int = 0, hi: int = 10**9) -> int | None:
    """The integer query parameter ``name`` (``default`` when absent or empty), or a 400 naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _ASCII_INT.fullmatch(raw):
        raise bad_request(f'query parameter {name}: expected an integer {lo}-{hi} in ASCII digits, got "{_shown(raw)}"', name)
    value = int(raw)
    if not lo <= value <= hi:
        raise bad_request(f"query parameter {name}: expected {lo}-{hi}, got {value}", name)
    return value


def parse_id(raw: str, name: str, where: str = "path parameter") -> int:
    """An id written in a path or query: ASCII digits, 1..MAX_ID, or a 400 naming ``name``."""
    value = int(raw) if _ASCII_INT.fullmatch(raw) else 0
    if not 1 <= value <= MAX_ID:
        raise bad_request(f'{where} {name}: expected a numeric id 1-{MAX_ID}, got "{_shown(raw)}"', name)
    return value


def path_int(request: web.Request, name: str = "id") -> int:
    return parse_id(request.match_info[name], name)
