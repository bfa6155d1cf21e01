"""The Google Workspace directory connector (guide 8.9): a service account with domain-wide delegation.

- A **public** directory reads the domain's users (Admin SDK Directory API ``users.list``)
  acting as a Workspace administrator (``admin``): name, email, phones, organization.
  Suspended users are left out.
- A **private** directory reads, for each granted TWP user, the contacts of the Google
  user at that user's Email (People API ``connections.list``), acting as that user.

Authentication is the OAuth 2 JWT-bearer grant (RFC 7523): the connector signs a JWT
(RS256) with the service account's private key from its JSON key file, naming the user
it acts for (``sub``) and the read-only scopes, and trades it for an access token at
the account's ``token_uri``.  The key is a ``Secret``; no part of it is ever logged.

Everything is async on aiohttp (the kernel's own HTTP library); cryptography is imported
when the first assertion is signed, not when the plugin loads.  Base URLs are options so
tests (and proxies) can point elsewhere.  Failures: ``NotReady`` for an unreachable API, a time-out or a 5xx/429;
``AuthFailed`` when Google refuses the key, the delegation or the scope; entries
without an id are skipped and named in the sync report.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import attrs

from twp_google.calendar import CALENDAR_SCOPE, calendar_event
from twpcore.plugin_api import (
    AuthFailed,
    CalendarChanges,
    CalendarChangesBuilder,
    ConnectorError,
    DirectoryConnector,
    Duration,
    NotReady,
    Secret,
    ServerSide,
    SkippedRecord,
    SourceRecord,
    setting,
    user_value,
)

log = logging.getLogger(__name__)

DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts.readonly"
PERSON_FIELDS = "names,emailAddresses,phoneNumbers,organizations,addresses,biographies"
DIRECTORY_FIELDS = [
    "id", "primaryEmail", "name.givenName", "name.familyName", "name.fullName", "organizations.name",
    "organizations.title", "organizations.department", "phones.work", "phones.mobile", "phones.home",
    "phones.work_fax", "phones.other", "addresses.work", "emails.other", "externalIds.organization",
]
PEOPLE_FIELDS = [
    "resourceName", "names.givenName", "names.familyName", "names.displayName", "organizations.name",
    "organizations.title", "organizations.department", "phoneNumbers.work", "phoneNumbers.mobile",
    "phoneNumbers.home", "phoneNumbers.workFax", "phoneNumbers.other", "emailAddresses.work",
    "emailAddresses.home", "emailAddresses.other", "addresses.work", "addresses.home", "biographies",
]


DIRECTORY_DEFAULT_FIELDS: dict[str, str] = {
    "id": "id", "last_name": "name.familyName", "first_name": "name.givenName", "company": "organizations.name",
    "department": "organizations.department", "title": "organizations.title", "email": "primaryEmail",
    "address": "addresses.work", "phone": "phones.work", "mobile": "phones.mobile", "home": "phones.home",
    "fax": "phones.work_fax", "other": "phones.other",
}
PEOPLE_DEFAULT_FIELDS: dict[str, str] = {
    "id": "resourceName", "last_name": "names.familyName", "first_name": "names.givenName",
    "company": "organizations.name", "department": "organizations.department", "title": "organizations.title",
    "email": "emailAddresses.work", "address": "addresses.work", "note": "biographies", "phone": "phoneNumbers.work",
    "mobile": "phoneNumbers.mobile", "home": "phoneNumbers.home", "fax": "phoneNumbers.workFax", "other": "phoneNumbers.other",
}
"""Pre-filled mappings (the People API names differ from the Directory API's): the kernel takes
``default_fields`` for a public directory and ``private_default_fields`` for a private one; a
directory's ``fields`` override them one by one (docs/connectors-exchange-google.md)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(key: dict[str, Any], scopes: list[str], subject: str, audience: str, now: float | None = None) -> str:
    """A JWT-bearer assertion (RS256) for the service account ``key``, acting for ``subject``."""
    issued = int(now if now is not None else time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id", "")}
    claims = {"iss": key["client_email"], "scope": " ".join(scopes), "aud": audience, "iat": issued, "exp": issued + 3600}
    if subject:
        claims["sub"] = subject
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    # Imported here, on first use, rather than when the plugin loads (about 30 ms at start-up).
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        private_key = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        raise ConnectorError(f"the private_key of the service account key {key.get('client_email')} is not a PEM key: "
                             "download a new JSON key from the Google Cloud console") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ConnectorError("the service account key is not an RSA key; create a JSON key for the service account")
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


@attrs.frozen(kw_only=True)
class GoogleConfig:
    """Options of a ``google`` directory (guide 8.9.4, 8.9.5)."""

    service_account_key: Secret | None = setting(None, help='the service account\'s JSON key (the file\'s content); '
                                                            'write { env = "VAR" } to keep it out of the file')
    """The JSON key downloaded from the Google Cloud console; never shown."""
    service_account_file: str = setting("", help="path of the service account's JSON key file, readable by the twp server only "
                                                 "(instead of service_account_key); super users only",
                                        server_side=ServerSide("a key file on the server"))
    """Where the JSON key is kept on the server."""
    workspace_domain: str = setting(help='the Google Workspace domain (the guide\'s "Domain" field), e.g. "example.com"')
    """Domain whose users a public directory lists."""
    admin: str = setting("", help="public directories: email of a Workspace administrator the account acts as to list users")
    """The ``sub`` of directory requests (domain-wide delegation acts on behalf of a user)."""
    token_url: str = setting("", help="token endpoint; empty means the key's token_uri (https://oauth2.googleapis.com/token)")
    directory_url: str = setting("https://admin.googleapis.com", help="Admin SDK base URL (change for tests or a proxy)")
    people_url: str = setting("https://people.googleapis.com", help="People API base URL (change for tests or a proxy)")
    calendar_url: str = setting("https://www.googleapis.com", help="Calendar API base URL (change for tests or a proxy)")
    calendar: bool = setting(False, help="also read the primary calendar of each user of the domain with an Email, for calendar "
                                         "presence (guide 8.9.6); authorize the calendar.readonly scope for the service account")
    """Makes the directory a calendar connector (``twpcore.calendars.CalendarSync``)."""
    calendar_every: Duration = setting(Duration(300), min=30, max=86400, help="seconds between two calendar reads (each one "
                                                                              "incremental: the Calendar API's syncToken)")
    """The calendar schedule."""
    include_suspended: bool = setting(False, help="also list suspended users")
    timeout: Duration = setting(Duration(30), min=1, max=600, help="seconds allowed for each request")
    page_size: int = setting(500, min=1, max=1000, help="entries per page (users.list takes at most 500)")

    def __attrs_post_init__(self) -> None:
        key = self.key()
        missing = [name for name in ("client_email", "private_key") if not key.get(name)]
        if missing:
            raise ValueError(f"the service account key lacks {', '.join(missing)}: download a JSON key "
                             "(Service accounts > Keys > Add key > JSON) rather than a P12 file")

    def key(self) -> dict[str, Any]:
        """The service account's JSON key, from ``service_account_key`` or ``service_account_file``."""
        if (self.service_account_key is None) == (not self.service_account_file):
            raise ValueError("set exactly one of service_account_key and service_account_file")
        if self.service_account_key is not None:
            return _parse_key(self.service_account_key.reveal())
        try:
            with open(self.service_account_file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read service_account_file {self.service_account_file}: {exc.strerror}") from None
        return _parse_key(text)


def _parse_key(text: str) -> dict[str, Any]:
    try:
        key = json.loads(text)
    except ValueError:
        raise ValueError("service_account_key is not JSON: give the content of the service account's JSON key file") from None
    if not isinstance(key, dict):
        raise ValueError("service_account_key is not a JSON object: give the content of the JSON key file")
    return key


class GoogleConnector(DirectoryConnector):
    """Reads the Workspace domain's users, or each user's Google contacts."""

    type_name = "google"
    Config = GoogleConfig
    capabilities = frozenset({"sync", "test_connection", "private", "calendar"})
    description = ("Google Workspace: domain users (Admin SDK), users' contacts (People API) and calendars (Calendar API) "
                   "with a service account")
    default_fields: ClassVar[dict[str, str]] = DIRECTORY_DEFAULT_FIELDS
    private_default_fields: ClassVar[dict[str, str]] = PEOPLE_DEFAULT_FIELDS

    config: GoogleConfig

    def __init__(self, config: GoogleConfig, context: Any):
        super().__init__(config, context)
        self.key = config.key()
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    @property
    def logger(self) -> logging.Logger:
        return self.context.logger if self.context is not None else log

    @property
    def account(self) -> str:
        return str(self.key.get("client_email", "?"))

    @property
    def token_endpoint(self) -> str:
        return self.config.token_url or self.key.get("token_uri") or "https://oauth2.googleapis.com/token"

    def source_fields(self) -> list[str]:
        private = getattr(getattr(self, "directory", None), "type", "") == "private"
        return list(PEOPLE_FIELDS if private else DIRECTORY_FIELDS)

    async def setup(self) -> None:
        await self._http()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=float(self.config.timeout)))
        return self._session

    # -- the kernel's contract --------------------------------------------------------
    async def test_connection(self) -> str:
        private = getattr(getattr(self, "directory", None), "type", "") == "private"
        if private:
            # A token proves the key; acting as ``admin`` (when set) proves the delegation too.
            await self._token(CONTACTS_SCOPE, self.config.admin)
            acting = f" acting for {self.config.admin}" if self.config.admin else ""
            return (f"Google Workspace {self.config.workspace_domain}: Google accepted the service account {self.account}{acting}; "
                    "each granted user's contacts are read through the People API")
        count = 0
        async for record in self._users():
            count += 1 if isinstance(record, SourceRecord) else 0
        return f"Google Workspace {self.config.workspace_domain}: {count} users listed by {self.config.admin} through {self.account}"

    def records(self, user: Any = None) -> AsyncIterator[Any]:
        if user is not None:
            email = user_value(user, "email") or ""
            login = user_value(user, "login") or "?"
            return self._contacts(email, login)
        return self._users()

    async def calendar_changes(self, mailbox: str, state: str | None) -> CalendarChanges:
        """The changes of the primary calendar of ``mailbox`` since ``state`` (a syncToken): ``twp_google.calendar``."""
        try:
            return await self._calendar_changes(mailbox, state)
        except _SyncTokenExpired:
            self.logger.info("Google says the sync token of the calendar of %s expired; reading it all again", mailbox)
            return await self._calendar_changes(mailbox, None)

    async def _calendar_changes(self, mailbox: str, state: str | None) -> CalendarChanges:
        url = f"{self.config.calendar_url.rstrip('/')}/calendar/v3/calendars/primary/events"
        what = f"calendar of {mailbox}"
        token = await self._token(CALENDAR_SCOPE, mailbox)
        params = {"singleEvents": "true", "maxResults": str(min(self.config.page_size, 2500))}
        if state:
            params["syncToken"] = state
        read = CalendarChangesBuilder()
        page_token = ""
        while True:
            query = dict(params, pageToken=page_token) if page_token else params
            status, body = await self._request("GET", url, what, params=query, headers={"Authorization": f"Bearer {token}"})
            if status == 410 and state:
                raise _SyncTokenExpired
            if status in (401, 403):
                raise AuthFailed(f"{url}: {what}: Google refused {self.account} acting for {mailbox}: {_message(body)}; authorize "
                                 f"{CALENDAR_SCOPE} for client id {self.key.get('client_id')} (guide 8.9.3)")
            if status == 404:
                raise ConnectorError(f"{url}: {what}: no such calendar ({_message(body)}); check the user's Email field")
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get("items", []), list):
                raise ConnectorError(f"{url}: {what}: HTTP {status}: {_message(body)}")
            for entry in body.get("items") or []:
                if not isinstance(entry, dict) or not entry.get("id"):
                    read.skip(f"an event without id in the {what}")
                    continue
                read.put(str(entry["id"]), *((None, "") if entry.get("status") == "cancelled" else calendar_event(entry)))
            page_token = body.get("nextPageToken") or ""
            if not page_token:
                next_state = body.get("nextSyncToken") or ""
                break
        if not next_state:
            raise ConnectorError(f"{url}: {what}: the last page has no nextSyncToken")
        return read.changes(str(next_state), full=not state)

    # -- HTTP -------------------------------------------------------------------------
    async def _token(self, scope: str, subject: str) -> str:
        cached = self._tokens.get((scope, subject))
        if cached and cached[1] > time.time() + 60:
            return cached[0]
        assertion = signed_assertion(self.key, [scope], subject, self.token_endpoint)
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        status, body = await self._request("POST", self.token_endpoint, f"token for {subject or self.account}", data=form)
        if status != 200:
            error = body.get("error", "") if isinstance(body, dict) else ""
            description = body.get("error_description", "") if isinstance(body, dict) else str(body)
            if error == "unauthorized_client":
                raise AuthFailed(f"{self.token_endpoint}: Google refused to let {self.account} act for {subject}: {description}; "
                                 f"authorize client id {self.key.get('client_id')} for {scope} in the Admin console "
                                 "(Security > API controls > Domain-wide delegation, guide 8.9.3)")
            if error in ("invalid_grant", "invalid_client", "access_denied") or status in (400, 401, 403):
                raise AuthFailed(f"{self.token_endpoint}: Google refused the service account {self.account} acting for "
                                 f"{subject or 'itself'}: {error}: {description}")
            raise NotReady(f"{self.token_endpoint}: token request answered HTTP {status}: {description}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise ConnectorError(f"{self.token_endpoint}: no access_token in the answer")
        self._tokens[(scope, subject)] = (token, time.time() + float(body.get("expires_in", 3600)))
        return str(token)

    async def _request(self, method: str, url: str, what: str, **kwargs: Any) -> tuple[int, Any]:
        session = await self._http()
        try:
            async with session.request(method, url, **kwargs) as response:
                text = await response.text()
                try:
                    body = json.loads(text) if text else {}
                except ValueError:
                    body = {"error": f"HTTP {response.status}", "error_description": text[:200]}
                if response.status >= 500 or response.status == 429:
                    raise NotReady(f"{url}: {what}: Google answered HTTP {response.status}: {_message(body)}")
                return response.status, body
        except TimeoutError:
            raise NotReady(f"{url}: {what}: no answer within {float(self.config.timeout):g} s") from None
        except aiohttp.ClientError as exc:
            raise NotReady(f"{url}: {what}: cannot reach Google: {exc}") from None

    async def _get_pages(self, url: str, scope: str, subject: str, params: dict[str, str], key: str, what: str) -> AsyncIterator[list[Any]]:
        token = await self._token(scope, subject)
        page_token = ""
        while True:
            query = dict(params, pageToken=page_token) if page_token else params
            status, body = await self._request("GET", url, what, params=query, headers={"Authorization": f"Bearer {token}"})
            if status in (401, 403):
                raise AuthFailed(f"{url}: {what}: Google refused {self.account} acting for {subject}: {_message(body)}")
            if status != 200:
                raise ConnectorError(f"{url}: {what}: HTTP {status}: {_message(body)}")
            if not isinstance(body, dict):
                raise ConnectorError(f"{url}: {what}: expected a JSON object, got {type(body).__name__}")
            entries = body.get(key) or []
            if not isinstance(entries, list):
                raise ConnectorError(f"{url}: {what}: expected a list in {key!r}")
            yield entries
            page_token = body.get("nextPageToken") or ""
            if not page_token:
                return

    # -- reading ----------------------------------------------------------------------
    async def _users(self) -> AsyncIterator[Any]:
        if not self.config.admin:
            raise ConnectorError("set admin to the email of a Workspace administrator: the Directory API lists users "
                                 "on behalf of an administrator (domain-wide delegation)")
        url = f"{self.config.directory_url.rstrip('/')}/admin/directory/v1/users"
        params = {"domain": self.config.workspace_domain, "maxResults": str(min(self.config.page_size, 500)),
                  "projection": "full", "viewType": "admin_view", "orderBy": "email"}
        position = 0
        async for page in self._get_pages(url, DIRECTORY_SCOPE, self.config.admin, params, "users", "users.list"):
            for entry in page:
                position += 1
                if not isinstance(entry, dict) or not entry.get("id"):
                    where = entry.get("primaryEmail") if isinstance(entry, dict) and entry.get("primaryEmail") else f"users.list #{position}"
                    yield SkippedRecord(str(where), "no id in the Directory API entry")
                    continue
                if entry.get("suspended") and not self.config.include_suspended:
                    continue
                yield SourceRecord(str(entry["id"]), user_fields(entry))

    async def _contacts(self, email: str, login: str) -> AsyncIterator[Any]:
        if not email:
            raise ConnectorError(f"user {login} has no Email: enter their Google address in the user form (guide 8.9.4)")
        url = f"{self.config.people_url.rstrip('/')}/v1/people/me/connections"
        params = {"personFields": PERSON_FIELDS, "pageSize": str(self.config.page_size), "sortOrder": "LAST_NAME_ASCENDING"}
        position = 0
        async for page in self._get_pages(url, CONTACTS_SCOPE, email, params, "connections", f"contacts of {email}"):
            for entry in page:
                position += 1
                if not isinstance(entry, dict) or not entry.get("resourceName"):
                    yield SkippedRecord(f"{email} #{position}", "no resourceName in the People API entry")
                    continue
                yield SourceRecord(str(entry["resourceName"]), person_fields(entry))


class _SyncTokenExpired(Exception):
    """Google answered 410 Gone to a syncToken: a full sync is required."""


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))
        if error:
            return f"{error}: {body.get('error_description', '')}".rstrip(": ")
    return str(body)[:200]


def _first(items: Any, pick: Any = None) -> Any:
    if not isinstance(items, list):
        return None
    candidates = [i for i in items if isinstance(i, dict)]
    primary = [i for i in candidates if i.get("primary") or (i.get("metadata") or {}).get("primary")]
    chosen = primary or candidates
    return chosen[0] if chosen else None


def user_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A Directory API user as source fields (``name.familyName``, ``phones.work``…)."""
    fields: dict[str, Any] = {"id": str(entry["id"]), "primaryEmail": entry.get("primaryEmail")}
    name = entry["name"] if isinstance(entry.get("name"), dict) else {}
    for part in ("givenName", "familyName", "fullName"):
        if name.get(part):
            fields[f"name.{part}"] = name[part]
    org = _first(entry.get("organizations"))
    if org:
        for part in ("name", "title", "department"):
            if org.get(part):
                fields[f"organizations.{part}"] = org[part]
    _by_type(fields, "phones", entry, "value")
    _by_type(fields, "addresses", entry, "formatted")
    others = [e.get("address") for e in entry.get("emails") or [] if isinstance(e, dict) and e.get("address") and not e.get("primary")]
    if others:
        fields["emails.other"] = others
    return fields


def person_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A People API person as source fields (``names.familyName``, ``phoneNumbers.mobile``…)."""
    fields: dict[str, Any] = {"resourceName": entry["resourceName"]}
    name = _first(entry.get("names")) or {}
    for part in ("givenName", "familyName", "displayName"):
        if name.get(part):
            fields[f"names.{part}"] = name[part]
    org = _first(entry.get("organizations")) or {}
    for part in ("name", "title", "department"):
        if org.get(part):
            fields[f"organizations.{part}"] = org[part]
    _by_type(fields, "phoneNumbers", entry, "value", preferred="canonicalForm")
    _by_type(fields, "emailAddresses", entry, "value")
    _by_type(fields, "addresses", entry, "formattedValue")
    bio = _first(entry.get("biographies"))
    if bio and bio.get("value"):
        fields["biographies"] = bio["value"]
    return fields


def _by_type(fields: dict[str, Any], name: str, entry: dict[str, Any], key: str, *, preferred: str = "") -> None:
    """``fields["<name>.<type>"]`` (``phones.work``) from the first item of each type of ``entry[name]`` with a ``key``.

    ``preferred`` names a value used instead when present (the People API's ``canonicalForm``).
    """
    for item in entry.get(name) or []:
        if isinstance(item, dict) and item.get(key):
            fields.setdefault(f"{name}.{item.get('type') or 'other'}", (preferred and item.get(preferred)) or item[key])
