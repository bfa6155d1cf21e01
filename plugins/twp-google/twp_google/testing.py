"""A simulated Google Workspace API for connector tests (guide 8.9).

``GoogleApiServer`` is an aiohttp server on 127.0.0.1 with the three endpoints a
service-account directory connector uses, answering in Google's JSON:

- ``POST /token``: the OAuth 2 JWT-bearer grant (RFC 7523).  The assertion must be an
  RS256 JWT signed with the private key of a service account created by
  ``service_account()``, for the token URL as audience, not expired, whose ``sub`` is a
  user of the domain and whose scopes were authorized for the account's client id in
  the Admin console (``delegations``: domain-wide delegation, 8.9.3);
- ``GET /admin/directory/v1/users`` (Admin SDK Directory ``users.list``: ``customer`` or
  ``domain``, ``maxResults`` up to 500, ``pageToken``), allowed to admins only;
- ``GET /v1/people/me/connections`` (People API ``connections.list``: ``personFields``
  required, ``pageSize`` up to 1000, ``pageToken``) for the user named by ``sub``.
- ``GET /calendar/v3/calendars/{calendarId}/events`` (Calendar API ``events.list`` on
  ``primary`` or the user's own address: ``maxResults`` up to 2500, ``pageToken``,
  ``syncToken``, ``showDeleted``) for the user named by ``sub``, with the
  ``calendar.readonly`` scope.  The last page carries a ``nextSyncToken``; a later
  call with it lists the events changed since, cancelled ones included
  (``status: "cancelled"``).  ``expire_sync_tokens(user)`` makes every earlier token
  answer HTTP 410 (``fullSyncRequired``), as Google does for an expired token.  Events
  are single events (``add_event``, ``change_event``, ``delete_event``): the
  simulator does not expand recurring series.

Errors are Google's: ``{"error": "invalid_grant", "error_description": …}`` from the
token endpoint, ``{"error": {"code": 403, "message": …, "status": "PERMISSION_DENIED"}}``
from the APIs.  Failure switches: ``delay`` (seconds before each answer), ``fail_after``
(answer 503 after that many API pages), and stopping the server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import attrs
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts.readonly"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"

__all__ = ["CALENDAR_SCOPE", "CONTACTS_SCOPE", "DIRECTORY_SCOPE", "GoogleApiServer", "GoogleUser"]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.define(eq=False)
class GoogleUser:
    """A Workspace user: the Directory API resource and the user's own contacts (People API)."""

    primary_email: str
    given_name: str = ""
    family_name: str = ""
    phones: list[dict[str, Any]] = attrs.field(factory=list)
    """Directory API phones: ``[{"value": "+33 1 40 00 00 01", "type": "work", "primary": True}]``."""
    organizations: list[dict[str, Any]] = attrs.field(factory=list)
    is_admin: bool = False
    suspended: bool = False
    contacts: list[dict[str, Any]] = attrs.field(factory=list)
    """People API person resources (``names``, ``phoneNumbers``, ``emailAddresses``…)."""
    id: str = attrs.field(factory=lambda: str(100000000000000000000 + secrets.randbelow(10**20)))
    events: list[dict[str, Any]] = attrs.field(factory=list)
    """Calendar API event resources of the primary calendar, cancelled ones kept (``status: "cancelled"``)."""
    changed: dict[str, int] = attrs.field(factory=dict)
    """event id -> the server's change number of its last change (what sync tokens count)."""
    token_generation: int = 0

    def resource(self) -> dict[str, Any]:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        data: dict[str, Any] = {
            "kind": "admin#directory#user", "id": self.id, "primaryEmail": self.primary_email,
            "name": {"givenName": self.given_name, "familyName": self.family_name, "fullName": full},
            "isAdmin": self.is_admin, "suspended": self.suspended,
            "emails": [{"address": self.primary_email, "primary": True}],
        }
        if self.phones:
            data["phones"] = self.phones
        if self.organizations:
            data["organizations"] = self.organizations
        return data


@attrs.define(eq=False)
class GoogleApiServer:
    """The simulated Google endpoints; ``async with GoogleApiServer(...) as api``."""

    domain: str = "example.com"
    users: list[GoogleUser] = attrs.field(factory=list)
    delegations: dict[str, set[str]] = attrs.field(factory=dict)
    """client id -> scopes authorized in the Admin console ("Manage API client access", 8.9.3)."""
    extra_users: list[Any] = attrs.field(factory=list)
    """Raw entries appended to users.list answers (to test malformed entries)."""
    delay: float = 0.0
    fail_after: int | None = None
    pages_served: int = 0
    requests: list[tuple[str, str]] = attrs.field(factory=list)
    """(endpoint, subject or client) of every request."""
    _accounts: dict[str, tuple[str, Any]] = attrs.field(factory=dict)
    _tokens: dict[str, tuple[str, str, set[str]]] = attrs.field(factory=dict)
    _client_ids: dict[str, str] = attrs.field(factory=dict)
    _changes: int = 0
    _runner: web.AppRunner | None = None
    _port: int = 0

    # -- set-up ------------------------------------------------------------------------
    def service_account(self, name: str = "apitws", *,
                        authorize: tuple[str, ...] = (DIRECTORY_SCOPE, CONTACTS_SCOPE, CALENDAR_SCOPE)) -> dict[str, Any]:
        """A new service account's JSON key (as downloaded from the console), its scopes authorized domain-wide."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        client_id = str(100000000000000000000 + secrets.randbelow(10**20))
        email = f"{name}@twp-test.iam.gserviceaccount.com"
        key_id = secrets.token_hex(20)
        self._accounts[email] = (key_id, key.public_key())
        self._client_ids[email] = client_id
        if authorize:
            self.delegations[client_id] = set(authorize)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "twp-test", "private_key_id": key_id, "private_key": pem,
                "client_email": email, "client_id": client_id, "token_uri": self.token_url,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth"}

    def add_event(self, user: GoogleUser, summary: str, start: Any, end: Any, **fields: Any) -> dict[str, Any]:
        """A new event in the user's primary calendar (``fields``: location, visibility, transparency, status, eventType)."""
        event: dict[str, Any] = {"kind": "calendar#event", "id": secrets.token_hex(13), "status": "confirmed", "summary": summary,
                                 "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()},
                                 "visibility": "default", "transparency": "opaque", "eventType": "default", **fields}
        user.events.append(event)
        self._touch(user, event)
        return event

    def change_event(self, user: GoogleUser, event: dict[str, Any], **fields: Any) -> dict[str, Any]:
        event.update({k: ({"dateTime": v.isoformat()} if k in ("start", "end") and hasattr(v, "isoformat") else v)
                      for k, v in fields.items()})
        self._touch(user, event)
        return event

    def delete_event(self, user: GoogleUser, event: dict[str, Any]) -> None:
        """Deleted as Google keeps it: ``status: "cancelled"``, listed to sync tokens, hidden from full lists."""
        event["status"] = "cancelled"
        self._touch(user, event)

    def expire_sync_tokens(self, user: GoogleUser) -> None:
        """Every sync token given so far for the user's calendar answers 410 Gone from now on."""
        user.token_generation += 1

    def _touch(self, user: GoogleUser, event: dict[str, Any]) -> None:
        self._changes += 1
        event["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        user.changed[event["id"]] = self._changes

    def user(self, email: str) -> GoogleUser | None:
        return next((u for u in self.users if u.primary_email.lower() == email.lower()), None)

    async def start(self) -> GoogleApiServer:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/admin/directory/v1/users", self._users)
        app.router.add_get("/v1/people/me/connections", self._connections)
        app.router.add_get("/calendar/v3/calendars/{calendar}/events", self._events)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GoogleApiServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    # -- answering ---------------------------------------------------------------------
    @staticmethod
    def _api_error(code: int, message: str, status: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message, "status": status,
                                            "errors": [{"message": message, "domain": "global", "reason": status.lower()}]}},
                                 status=code)

    async def _token(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, status=400)
        try:
            head_b64, claims_b64, sig_b64 = str(form.get("assertion", "")).split(".")
            header = json.loads(_b64decode(head_b64))
            claims = json.loads(_b64decode(claims_b64))
        except ValueError:
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT"}, status=400)
        self.requests.append(("token", str(claims.get("sub", ""))))
        account = self._accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or account is None:
            return web.json_response({"error": "invalid_client", "error_description": "The OAuth client was not found."}, status=401)
        _key_id, public_key = account
        try:
            public_key.verify(_b64decode(sig_b64), f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400)
        now = time.time()
        if claims.get("aud") != self.token_url or not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)):
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                    "Check your iat and exp values in the JWT claim.",
                },
                status=400,
            )
        scopes = set(str(claims.get("scope", "")).split())
        client_id = self._client_ids[claims["iss"]]
        if not scopes <= self.delegations.get(client_id, set()):
            return web.json_response(
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens using this method, "
                    "or client not authorized for any of the scopes requested.",
                },
                status=401,
            )
        subject = str(claims.get("sub", ""))
        if subject and self.user(subject) is None:
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid email or User ID"}, status=400)
        token = "ya29." + secrets.token_urlsafe(32)
        self._tokens[token] = (claims["iss"], subject, scopes)
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _authorize(self, request: web.Request, scope: str) -> tuple[str, str, set[str]] | web.Response:
        header = request.headers.get("Authorization", "")
        grant = self._tokens.get(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
        if grant is None:
            return self._api_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.", "UNAUTHENTICATED")
        if scope not in grant[2]:
            return self._api_error(403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED")
        return grant

    def _page_allowed(self) -> web.Response | None:
        self.pages_served += 1
        if self.fail_after is not None and self.pages_served > self.fail_after:
            return self._api_error(503, "The service is currently unavailable.", "UNAVAILABLE")
        return None

    async def _users(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        grant = self._authorize(request, DIRECTORY_SCOPE)
        if isinstance(grant, web.Response):
            return grant
        self.requests.append(("users.list", grant[1]))
        caller = self.user(grant[1])
        if caller is None or not caller.is_admin:
            return self._api_error(403, "Not Authorized to access this resource/api", "PERMISSION_DENIED")
        query = request.query
        if query.get("domain", self.domain) != self.domain or ("customer" in query and query["customer"] != "my_customer"):
            return self._api_error(403, "Not Authorized to access this resource/api", "PERMISSION_DENIED")
        if "customer" not in query and "domain" not in query:
            return self._api_error(400, "Bad Request", "INVALID_ARGUMENT")
        if (failure := self._page_allowed()) is not None:
            return failure
        entries: list[Any] = [u.resource() for u in self.users] + list(self.extra_users)
        return web.json_response(self._paged(entries, query, "maxResults", 100, 500, "users"))

    async def _connections(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        grant = self._authorize(request, CONTACTS_SCOPE)
        if isinstance(grant, web.Response):
            return grant
        self.requests.append(("connections.list", grant[1]))
        owner = self.user(grant[1])
        if owner is None:
            return self._api_error(403, "The caller does not have permission", "PERMISSION_DENIED")
        if not request.query.get("personFields"):
            return self._api_error(400, "personFields mask is required. Please specify one or more valid paths.", "INVALID_ARGUMENT")
        if (failure := self._page_allowed()) is not None:
            return failure
        body = self._paged(list(owner.contacts), request.query, "pageSize", 100, 1000, "connections")
        body["totalPeople"] = body["totalItems"] = len(owner.contacts)
        return web.json_response(body)

    async def _events(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        grant = self._authorize(request, CALENDAR_SCOPE)
        if isinstance(grant, web.Response):
            return grant
        self.requests.append(("events.list", grant[1]))
        owner = self.user(grant[1])
        calendar = request.match_info["calendar"]
        if owner is None or (calendar != "primary" and calendar.lower() != owner.primary_email.lower()):
            return self._api_error(404, "Not Found", "NOT_FOUND")
        query = request.query
        token = query.get("syncToken", "")
        if token and any(name in query for name in ("timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID")):
            return self._api_error(400, "Sync token cannot be used with timeMin, timeMax, updatedMin, q, orderBy or iCalUID.",
                                   "INVALID_ARGUMENT")
        if (failure := self._page_allowed()) is not None:
            return failure
        if token:
            try:
                user_id, generation, since = _b64decode(token).decode().split("|")
                valid = user_id == owner.id and int(generation) == owner.token_generation
            except ValueError:
                valid = False
            if not valid:
                gone = {"error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required.",
                                  "errors": [{"domain": "calendar", "reason": "fullSyncRequired",
                                              "message": "Sync token is no longer valid, a full sync is required."}]}}
                return web.json_response(gone, status=410)
            entries = [e for e in owner.events if owner.changed.get(e["id"], 0) > int(since)]
        else:
            show_deleted = query.get("showDeleted") == "true"
            entries = [e for e in owner.events if show_deleted or e.get("status") != "cancelled"]
        body = dict(self._paged(entries, query, "maxResults", 250, 2500, "items"))
        body.update(kind="calendar#events", summary=owner.primary_email, timeZone="UTC")
        if "nextPageToken" not in body:
            body["nextSyncToken"] = base64.urlsafe_b64encode(
                f"{owner.id}|{owner.token_generation}|{self._changes}".encode()).decode().rstrip("=")
        return web.json_response(body)

    @staticmethod
    def _paged(entries: list[Any], query: Any, size_name: str, default: int, most: int, key: str) -> dict[str, Any]:
        size = min(int(query.get(size_name, default)), most)
        token = query.get("pageToken", "")
        start = int(_b64decode(token).decode()) if token else 0
        body: dict[str, Any] = {key: entries[start:start + size]}
        if start + size < len(entries):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
        return body
