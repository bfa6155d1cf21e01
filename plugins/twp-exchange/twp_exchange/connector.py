"""The Exchange 2010+ / Office 365 directory connector (guide 8.7), on exchangelib over EWS.

Three ways to use it, chosen by the directory's type and its connection string:

- **public folders** (public directory, ``url`` or ``url|public|General/Suppliers,Sales``):
  every contacts folder of the public folder tree, or only the folders named (case
  sensitive, ``/`` between a folder and its sub-folder, ``,`` between selections: 8.7.2);
- **one mailbox made public** (``url|user``, 8.7.3): the Contacts folder of the account's
  own mailbox (or of ``mailbox``), shown to every user the directory is granted to;
- **private contacts** (private directory): for each granted user, the Contacts folder of
  the mailbox at that user's Email, opened through impersonation (ApplicationImpersonation
  role) or delegate access (the user gave the account Reviewer rights in Outlook): 8.7.5.

Credentials: ``auth = "ntlm"`` or ``"basic"`` with ``user`` and ``password`` (on-premises
Exchange), or ``auth = "oauth"`` with an Entra ID (Azure AD) application's ``client_id``,
``client_secret`` and ``tenant_id`` (client credentials, Office 365).

exchangelib is blocking: every request runs in a worker thread and contacts reach the
kernel a page at a time through ``twpcore.blocking.iterate_in_thread``.  It is imported on
first use (``ews()``), not when the plugin loads.  Failures raise
what keeps the previous contacts: ``NotReady`` (server down, time-out), ``AuthFailed``
(credentials or mailbox rights refused), ``ConnectorError`` (a folder or mailbox that does
not exist).  Items that cannot be read (corrupt items, distribution lists) are skipped and
named in the sync report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from twpcore.plugin_api import (
    AuthFailed,
    CalendarChanges,
    ConnectorError,
    DirectoryConnector,
    Duration,
    NotReady,
    ProducerStopped,
    Secret,
    SkippedRecord,
    SourceRecord,
    iterate_in_thread,
    setting,
    user_value,
)

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger(__name__)


def ews() -> ModuleType:
    """exchangelib (through ``twp_exchange.ews``), imported on first use: it costs 250 ms and 20 MiB at start-up."""
    from twp_exchange import ews as module

    return module

OFFICE365_URL = "https://outlook.office365.com/EWS/Exchange.asmx"
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"

PHONE_LABELS = (
    "AssistantPhone", "BusinessFax", "BusinessPhone", "BusinessPhone2", "Callback", "CarPhone", "CompanyMainPhone",
    "HomeFax", "HomePhone", "HomePhone2", "Isdn", "MobilePhone", "OtherFax", "OtherTelephone", "Pager",
    "PrimaryPhone", "RadioPhone", "Telex", "TtyTddPhone",
)
# EWS entry keys that the guide's field list (8.7.1) names differently.
PHONE_FIELD = {"Callback": "CallbackPhone", "CompanyMainPhone": "CompanyPhone", "OtherTelephone": "OtherPhone"}
ADDRESS_PARTS = {"street": "Street", "city": "City", "state": "State", "country": "Country", "zipcode": "PostalCode"}
TEXT_ATTRIBUTES = {
    "display_name": "DisplayName", "given_name": "GivenName", "surname": "Surname", "middle_name": "MiddleName",
    "initials": "Initials", "nickname": "Nickname", "generation": "Generation", "company_name": "CompanyName",
    "department": "Department", "job_title": "JobTitle", "office": "OfficeLocation", "manager": "Manager",
    "assistant_name": "AssistantName", "profession": "Profession", "spouse_name": "SpouseName",
    "business_homepage": "BusinessHomePage", "complete_name": "CompleteName", "subject": "Subject",
    "mileage": "Mileage", "item_class": "ItemClass",
}
SOURCE_FIELDS = sorted(
    {"Id", "ItemId", "Email1Address", "Email2Address", "Email3Address", "Categories", "Comment", "Birthday",
     "BusinessAddress", "HomeAddress", "OtherAddress", "FolderPath"}
    | set(TEXT_ATTRIBUTES.values())
    | {PHONE_FIELD.get(label, label) for label in PHONE_LABELS}
    | {f"{kind}Address{part}" for kind in ("Business", "Home", "Other") for part in ADDRESS_PARTS.values()}
)
DEFAULT_FIELDS: dict[str, str] = {
    "id": "ItemId",
    "last_name": "Surname",
    "first_name": "GivenName",
    "company": "CompanyName",
    "department": "Department",
    "title": "JobTitle",
    "email": "Email1Address",
    "address": "BusinessAddressStreet",
    "city": "BusinessAddressCity",
    "zip": "BusinessAddressPostalCode",
    "state": "BusinessAddressState",
    "country": "BusinessAddressCountry",
    "website": "BusinessHomePage",
    "note": "Comment",
    "phone": "BusinessPhone",
    "mobile": "MobilePhone",
    "home": "HomePhone",
    "fax": "BusinessFax",
    "other": "OtherPhone",
    "assistant": "AssistantPhone",
}
"""The pre-filled field mapping of an Exchange directory (guide 8.7.1), used when the admin sets none."""
PUBLIC_FOLDER_DEPTH = 20
"""Deepest public folder level walked (public folders do not allow a deep FindFolder)."""


@attrs.frozen
class ConnectionString:
    """What the guide's connection string says: the EWS URL and what to read."""

    url: str
    mode: Literal["public", "mailbox"]
    folders: tuple[tuple[str, ...], ...] = ()
    """Selected public folders as paths of names; empty: every contacts folder."""


def parse_connection_string(value: str) -> ConnectionString:
    """``url``, ``url|public|folder1,folder2/sub`` (8.7.2) or ``url|user`` (8.7.3)."""
    parts = value.strip().split("|")
    url = parts[0].strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f'expected the EWS URL first, like "https://mail.example.com/EWS/Exchange.asmx", got "{parts[0]}"')
    if len(parts) == 1:
        return ConnectionString(url, "public")
    kind = parts[1].strip().lower()
    if kind == "user" and len(parts) == 2:
        return ConnectionString(url, "mailbox")
    if kind == "public" and len(parts) <= 3:
        selection = parts[2] if len(parts) == 3 else ""
        folders = []
        for item in selection.split(","):
            path = tuple(name for name in item.split("/") if name)
            if path:
                folders.append(path)
        return ConnectionString(url, "public", tuple(folders))
    raise ValueError(f'expected "url", "url|public|folder1,folder2/sub" or "url|user" (guide 8.7.2, 8.7.3), got "{value}"')


@attrs.frozen(kw_only=True)
class ExchangeConfig:
    """Options of an ``exchange`` directory (guide 8.7.1)."""

    url: str = setting(help='EWS URL, optionally with a folder selection: "https://mail.example.com/EWS/Exchange.asmx", '
                            '"…|public|General/Suppliers,Sales" (8.7.2) or "…|user" (8.7.3); Office 365: ' + OFFICE365_URL)
    """The connection string."""
    auth: Literal["ntlm", "basic", "oauth"] = setting("ntlm", help='"ntlm" or "basic" with user and password (Exchange on premises), '
                                                                    '"oauth" with client_id, client_secret and tenant_id (Office 365)')
    """How the connector logs in."""
    user: str = setting("", help='login of the service account: "CORP\\\\svc-twp" or "svc-twp@corp.example.com"')
    """The account used to read (needs Receive-As/impersonation or Reviewer rights for private contacts)."""
    password: Secret | None = setting(None, help='the account\'s password; write { env = "VAR" } to keep it out of the file')
    """The account's password; never shown in errors or logs."""
    mailbox: str = setting("", help="the account's own email address, when user is not one (public folders, url|user)")
    """Primary SMTP address of the account's mailbox."""
    client_id: str = setting("", help="oauth: the application (client) id registered in Entra ID / Azure AD")
    """OAuth client id."""
    client_secret: Secret | None = setting(None, help='oauth: the application\'s client secret; { env = "VAR" }')
    """OAuth client secret; never shown."""
    tenant_id: str = setting("", help="oauth: the directory (tenant) id of the Office 365 organisation")
    """OAuth tenant id."""
    token_url: str = setting("", help="oauth: token endpoint; empty means " + MICROSOFT_TOKEN_URL)
    """Where client-credential tokens come from."""
    access: Literal["impersonation", "delegate"] = setting(
        "impersonation", help='private contacts: "impersonation" (ApplicationImpersonation role, or OAuth app access) or '
                              '"delegate" (each user gave the account Reviewer rights in Outlook): guide 8.7.5')
    """How other users' mailboxes are opened."""
    timeout: Duration = setting(Duration(30), min=1, max=600, help="seconds allowed for each EWS request")
    """Per-request time-out."""
    page_size: int = setting(100, min=1, max=1000, help="contacts fetched per FindItem page and per GetItem request")
    """Paging of FindItem (IndexedPageItemView) and chunking of GetItem."""
    calendar: bool = setting(False, help="also read the calendar of each user of the domain with an Email, for calendar "
                                         "presence (guide 8.6.2, 8.7.4); the account needs the same rights as for private contacts")
    """Makes the directory a calendar connector (``twpcore.calendars.CalendarSync``)."""
    calendar_every: Duration = setting(Duration(300), min=30, max=86400, help="seconds between two calendar reads (each one "
                                                                              "incremental: EWS SyncFolderItems)")
    """The calendar schedule."""

    def __attrs_post_init__(self) -> None:
        parse_connection_string(self.url)
        if self.auth == "oauth":
            missing = [name for name in ("client_id", "client_secret", "tenant_id") if not getattr(self, name)]
            if missing and not (self.token_url and self.client_id and self.client_secret):
                raise ValueError(f"auth = \"oauth\" needs {', '.join(missing)} (from the Entra ID app registration)")
        elif not self.user or self.password is None:
            raise ValueError(f'auth = "{self.auth}" needs user and password (or set auth = "oauth")')


class ExchangeConnector(DirectoryConnector):
    """Reads contacts from Exchange 2010+ or Office 365 over EWS."""

    type_name = "exchange"
    Config = ExchangeConfig
    capabilities = frozenset({"sync", "test_connection", "private", "calendar"})
    description = "Exchange 2010+ / Office 365 contacts over EWS (public folders, a mailbox, users' private contacts) and users' calendars"
    default_fields: ClassVar[dict[str, str]] = DEFAULT_FIELDS

    config: ExchangeConfig

    def __init__(self, config: ExchangeConfig, context: Any):
        super().__init__(config, context)
        self.target = parse_connection_string(config.url)
        self._configuration: Any = None
        self._protocols: list[Any] = []

    @property
    def logger(self) -> logging.Logger:
        return self.context.logger if self.context is not None else log

    # -- the kernel's contract --------------------------------------------------------
    async def setup(self) -> None:
        await asyncio.to_thread(ews)  # the first import of exchangelib takes a quarter of a second: not on the event loop

    def source_fields(self) -> list[str]:
        return list(SOURCE_FIELDS)

    async def test_connection(self) -> str:
        return await asyncio.to_thread(self._test)

    def records(self, user: Any = None) -> Any:
        if user is not None:
            email = user_value(user, "email") or ""
            login = user_value(user, "login") or "?"
            if not email:
                raise ConnectorError(f"user {login} has no Email: enter their Exchange address in the user form (guide 8.7.1)")
            return iterate_in_thread(lambda emit: self._produce_mailbox(emit, email, other=True), max_batches=2)
        if self.target.mode == "mailbox":
            return iterate_in_thread(lambda emit: self._produce_mailbox(emit, self._own_address(), other=False), max_batches=2)
        return iterate_in_thread(self._produce_public, max_batches=2)

    async def calendar_changes(self, mailbox: str, state: str | None) -> CalendarChanges:
        """The changes of the calendar of ``mailbox`` since ``state`` (EWS SyncFolderItems): ``twp_exchange.calendar``."""
        return await asyncio.to_thread(self._calendar_changes, mailbox, state)

    def _calendar_changes(self, mailbox: str, state: str | None) -> CalendarChanges:
        from twp_exchange.calendar import read_changes

        try:
            return read_changes(ews(), self._account(mailbox, other=True), state, self.config.page_size)
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, f"calendar of {mailbox}") from None

    async def close(self) -> None:
        protocols, self._protocols = self._protocols, []
        for protocol in protocols:
            await asyncio.to_thread(protocol.close)
        self._configuration = None

    # -- connecting -------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.target.url

    def _own_address(self) -> str:
        address = self.config.mailbox or (self.config.user if "@" in self.config.user else "")
        if not address:
            raise ConnectorError(f'{self.endpoint}: set mailbox to the email address of {self.config.user or "the account"} '
                                 "(needed to open its mailbox or the public folders)")
        return address

    def _config(self) -> Any:
        if self._configuration is None:
            x = ews()
            if self.config.auth == "oauth":
                assert self.config.client_secret is not None
                token_url = self.config.token_url or MICROSOFT_TOKEN_URL.format(tenant=self.config.tenant_id)
                credentials: Any = x.ClientCredentials(client_id=self.config.client_id,
                                                       client_secret=self.config.client_secret.reveal(),
                                                       tenant_id=self.config.tenant_id or "common", token_endpoint=token_url)
                auth_type = x.OAUTH2
            else:
                assert self.config.password is not None
                credentials = x.Credentials(self.config.user, self.config.password.reveal())
                auth_type = x.NTLM if self.config.auth == "ntlm" else x.BASIC
            self._configuration = x.Configuration(credentials=credentials, service_endpoint=self.endpoint, auth_type=auth_type)
        return self._configuration

    def _account(self, address: str, *, other: bool) -> Any:
        x = ews()
        access = x.IMPERSONATION if other and self.config.access == "impersonation" else x.DELEGATE
        if self.config.auth == "oauth":
            access = x.IMPERSONATION  # app-only tokens always act on behalf of a mailbox
        account = x.Account(primary_smtp_address=address, config=self._config(), autodiscover=False, access_type=access)
        account.protocol.TIMEOUT = float(self.config.timeout)
        if account.protocol not in self._protocols:
            self._protocols.append(account.protocol)
        return account

    def _who(self) -> str:
        return f"application {self.config.client_id}" if self.config.auth == "oauth" else f"account {self.config.user}"

    def _translate(self, exc: BaseException, what: str) -> Exception:
        """The kernel's exception for an exchangelib or requests error met while reading ``what``."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in (self.config.password, self.config.client_secret):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        where = f"{self.endpoint}: {what}"
        x = ews()
        if isinstance(exc, x.UnauthorizedError):
            return AuthFailed(f"{where}: Exchange refused the credentials of {self._who()} (HTTP 401); check user and password, "
                              "and that the server accepts the chosen auth (guide 8.7.6)")
        if isinstance(exc, x.ErrorImpersonateUserDenied):
            return AuthFailed(f"{where}: {self._who()} may not impersonate this user; give it the ApplicationImpersonation role "
                              'or use access = "delegate" (guide 8.7.5, 8.7.6)')
        if isinstance(exc, x.ErrorAccessDenied):
            return AuthFailed(f"{where}: access denied to {self._who()}; grant it Receive-As on the mailbox database or Reviewer "
                              "rights in Outlook (guide 8.7.6)")
        if isinstance(exc, x.ErrorNonExistentMailbox):
            return ConnectorError(f"{where}: no such mailbox ({text}); check the user's Email field")
        if isinstance(exc, x.ErrorFolderNotFound):
            return ConnectorError(f"{where}: folder not found ({text})")
        if "Reraised from ConnectionError" in text or "Connection aborted" in text or "Connection refused" in text:
            # exchangelib re-raises lost connections as a (retryable) server error
            return NotReady(f"{where}: cannot reach the EWS endpoint: {text.removeprefix('Reraised from ')}")
        if isinstance(exc, (x.ErrorServerBusy, x.ErrorTimeoutExpired, x.RateLimitError)):
            return NotReady(f"{where}: the server is busy: {text}")
        if isinstance(exc, x.requests.exceptions.Timeout) or "timed out" in text.lower() or "timeout" in text.lower():
            return NotReady(f"{where}: no answer within {float(self.config.timeout):g} s")
        if isinstance(exc, (x.requests.exceptions.RequestException, x.TransportError, ConnectionError, OSError)):
            return NotReady(f"{where}: cannot reach the EWS endpoint: {text}")
        if "invalid_client" in text or "AADSTS" in text or "unauthorized_client" in text:
            return AuthFailed(f"{where}: the token endpoint refused {self._who()}: {text}; check client_id, client_secret and tenant_id")
        if isinstance(exc, x.EWSError):
            return ConnectorError(f"{where}: {type(exc).__name__}: {text}")
        return ConnectorError(f"{where}: {type(exc).__name__}: {text}")

    # -- reading ----------------------------------------------------------------------
    def _test(self) -> str:
        if self.target.mode == "mailbox":
            address = self._own_address()
            try:
                account = self._account(address, other=False)
                count = account.contacts.total_count
            except Exception as exc:  # noqa: BLE001 - translated
                raise self._translate(exc, f"mailbox {address}") from None
            return f"Exchange at {self.endpoint}: mailbox {address}, {count} items in Contacts"
        if getattr(getattr(self, "directory", None), "type", "") == "private":
            # Opening an account asks the server for its version (one ConvertId request),
            # which the server only answers once it accepted the credentials.
            address = self.config.mailbox or (self.config.user if "@" in self.config.user else "connection-test@twp.invalid")
            try:
                self._account(address, other=False)
            except Exception as exc:  # noqa: BLE001 - translated
                raise self._translate(exc, "login") from None
            access = "impersonation" if self.config.auth == "oauth" else self.config.access
            return (f"Exchange at {self.endpoint}: {self._who()} logged in; each granted user's Contacts are read "
                    f"through {access}")
        folders = []
        try:
            for path, folder in self._public_folders():
                folders.append(f"{'/'.join(path)} ({folder.total_count})")
        except (ConnectorError, AuthFailed, NotReady, ProducerStopped):
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, "public folders") from None
        return f"Exchange at {self.endpoint}: {len(folders)} public contacts folders: {', '.join(folders) or 'none'}"

    def _public_root(self) -> Any:
        account = self._account(self._own_address(), other=False)
        return account.public_folders_root

    def _public_folders(self) -> Iterator[tuple[tuple[str, ...], Any]]:
        """(path, folder) of each public folder to read: the selection, or every contacts folder."""
        root = self._public_root()
        if self.target.folders:
            for path in self.target.folders:
                folder = root
                for depth, name in enumerate(path):
                    children = list(folder.children)
                    match = [child for child in children if child.name == name]
                    if not match:
                        names = ", ".join(sorted(f'"{c.name}"' for c in children)) or "none"
                        raise ConnectorError(
                            f'{self.endpoint}: public folder "{"/".join(path[:depth + 1])}" not found (names are case '
                            f'sensitive); {"/".join(path[:depth]) or "the root"} holds: {names}')
                    folder = match[0]
                yield path, folder
            return

        def walk(folder: Any, path: tuple[str, ...], depth: int) -> Iterator[tuple[tuple[str, ...], Any]]:
            for child in folder.children:
                child_path = (*path, child.name)
                if (child.folder_class or "").startswith("IPF.Contact"):
                    yield child_path, child
                if depth < PUBLIC_FOLDER_DEPTH:
                    yield from walk(child, child_path, depth + 1)

        yield from walk(root, (), 0)

    def _produce_public(self, emit: Callable[[Sequence[Any]], None]) -> None:
        seen: set[str] = set()
        try:
            for path, folder in self._public_folders():
                self._read_folder(emit, folder, "/".join(path), seen)
        except (ConnectorError, AuthFailed, NotReady, ProducerStopped):
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, "public folders") from None

    def _produce_mailbox(self, emit: Callable[[Sequence[Any]], None], address: str, *, other: bool) -> None:
        try:
            account = self._account(address, other=other)
            self._read_folder(emit, account.contacts, "Contacts", set())
        except (ConnectorError, AuthFailed, NotReady, ProducerStopped):
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, f"mailbox {address}") from None

    def _read_folder(self, emit: Callable[[Sequence[Any]], None], folder: Any, path: str, seen: set[str]) -> None:
        query = folder.all()
        query.page_size = self.config.page_size
        query.chunk_size = self.config.page_size
        batch: list[Any] = []
        for position, item in enumerate(query, 1):
            batch.append(self._record(item, path, position, seen))
            if len(batch) >= self.config.page_size:
                emit(batch)
                batch = []
        emit(batch)

    def _record(self, item: Any, path: str, position: int, seen: set[str]) -> Any:
        x = ews()
        if isinstance(item, x.ErrorItemNotFound):
            return SkippedRecord(f"{path} #{position}", "the item was deleted while reading")
        if isinstance(item, x.ResponseMessageError):
            self.logger.warning("%s: item %d of folder %s cannot be read: %s", self.endpoint, position, path, item)
            return SkippedRecord(f"{path} #{position}", f"Exchange cannot read this item: {type(item).__name__}: {item}")
        if isinstance(item, BaseException):
            return SkippedRecord(f"{path} #{position}", f"{type(item).__name__}: {item}")
        item_id = getattr(item, "id", None) or f"{path} #{position}"
        if isinstance(item, x.DistributionList):
            return SkippedRecord(item_id, f'distribution list "{item.display_name or ""}" in {path}, not a contact')
        if not isinstance(item, x.Contact):
            return SkippedRecord(item_id, f"{type(item).__name__} item in {path}, not a contact")
        if item_id in seen:
            return SkippedRecord(item_id, f"item already read in another selected folder ({path})")
        seen.add(item_id)
        return SourceRecord(item_id, contact_fields(item, path))


def contact_fields(item: Any, folder_path: str = "") -> dict[str, Any]:
    """An exchangelib ``Contact`` as source fields named like the guide's Exchange field list (8.7.1)."""
    fields: dict[str, Any] = {"Id": item.id, "ItemId": item.id, "FolderPath": folder_path}
    for attr, name in TEXT_ATTRIBUTES.items():
        value = getattr(item, attr, None)
        if value not in (None, ""):
            fields[name] = str(value)
    for phone in getattr(item, "phone_numbers", None) or ():
        if phone.phone_number:
            fields[PHONE_FIELD.get(phone.label, phone.label)] = phone.phone_number
    for email in getattr(item, "email_addresses", None) or ():
        if email.email and email.label and email.label.startswith("EmailAddress"):
            fields[f"Email{email.label[-1]}Address"] = email.email
    for address in getattr(item, "physical_addresses", None) or ():
        kind = address.label  # Business, Home, Other
        parts = []
        for attr, suffix in ADDRESS_PARTS.items():
            value = getattr(address, attr, None)
            if value:
                fields[f"{kind}Address{suffix}"] = str(value)
                parts.append(str(value))
        if parts:
            fields[f"{kind}Address"] = ", ".join(parts)
    if getattr(item, "categories", None):
        fields["Categories"] = list(item.categories)
    if getattr(item, "birthday", None):
        fields["Birthday"] = item.birthday.isoformat()[:10]
    if getattr(item, "body", None):
        fields["Comment"] = str(item.body)
    return fields
