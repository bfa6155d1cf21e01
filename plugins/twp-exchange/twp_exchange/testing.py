"""An Exchange Web Services simulator for connector tests (guide 8.7).

``EwsServer`` is a threaded HTTP server on 127.0.0.1 that answers the EWS SOAP requests a
directory connector sends through exchangelib, in the XML a real Exchange 2010-2019 /
Exchange Online server writes, so that exchangelib parses it unchanged.  Point a client
at ``server.url`` (the service endpoint, autodiscover bypassed) with Basic credentials
from ``server.users`` or an OAuth 2 client-credentials token from ``server.token_url``.

What it serves:

- ``ConvertId`` (exchangelib's version probe): an error message and the
  ``ServerVersionInfo`` header every response carries;
- ``GetFolder`` on ``publicfoldersroot``, ``contacts``, ``root``/``msgfolderroot`` of a
  mailbox, or a folder id; ``FindFolder`` (shallow or deep, paged);
- ``FindItem`` with ``IndexedPageItemView`` paging (IdOnly ids) and ``GetItem`` returning
  ``Contact`` / ``DistributionList`` elements, or ``ErrorItemCorrupt`` for items marked
  corrupt;
- ``SyncFolderItems`` on a mailbox's Calendar folder (``GetFolder`` on ``calendar``):
  ``CalendarItem`` elements (Start, End, Subject, Location, Sensitivity,
  LegacyFreeBusyStatus, CalendarItemType, IsCancelled); a SyncState names the folder,
  a generation and a position in the folder's change journal, so a later call answers
  the items created, updated and deleted since (``EwsMailbox.add_event``,
  ``change_event``, ``delete_event``); ``expire_sync_states()`` makes every earlier state
  answer ``ErrorInvalidSyncStateData``, as a state Exchange no longer holds does.  The
  whole change list is answered in one response (``MaxChangesReturned`` is read but not
  split into pages);
- ``GetUserAvailability`` (free/busy, in UTC, with ``GetServerTimeZones`` answering UTC):
  every login of the organisation sees the busy times of a mailbox, as Exchange's Default
  calendar permission allows; subjects and locations only for the logins in
  ``EwsMailbox.free_busy_details``, never for private items;
- mailbox access rules: a request for another mailbox passes through
  ``ExchangeImpersonation`` when the login holds the ApplicationImpersonation role
  (``impersonators``), or as delegate when the mailbox owner granted the login Reviewer
  rights (``EwsMailbox.reviewers``), and fails as Exchange does otherwise.

Authentication: Basic against ``users``; NTLM with ``ntlm=True`` (pyspnego's acceptor,
reading the accounts from the file ``ntlm_user_file()`` writes, named by the
``NTLM_USER_FILE`` environment variable); bearer tokens from the token endpoint.

Failure switches: ``delay`` (seconds before each answer, for time-outs), ``fail_after``
(drop the connection after that many requests, a server dying mid-paging), and stopping
the server.  ``requests`` keeps the SOAP operations received, for assertions.
"""

from __future__ import annotations

import base64
import datetime
import html
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import spnego

log = logging.getLogger(__name__)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"

__all__ = ["EwsCalendarItem", "EwsContact", "EwsFolder", "EwsMailbox", "EwsServer"]

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    # EWS ids are opaque base64 strings; keep them recognisable in failures.
    return base64.b64encode(f"{prefix}-{next(_ids)}".encode()).decode()


def _x(value: Any) -> str:
    return html.escape(str(value), quote=True)


@attrs.define(eq=False)
class EwsContact:
    """A contact item.  ``phones`` / ``emails`` / ``addresses`` use the EWS entry keys."""

    given_name: str = ""
    surname: str = ""
    display_name: str = ""
    company_name: str = ""
    department: str = ""
    job_title: str = ""
    phones: dict[str, str] = attrs.field(factory=dict)
    """``{"BusinessPhone": "+33 1 40 00 00 01", "MobilePhone": …}``."""
    emails: dict[str, str] = attrs.field(factory=dict)
    """``{"EmailAddress1": "a@b.fr"}``."""
    addresses: dict[str, dict[str, str]] = attrs.field(factory=dict)
    """``{"Business": {"Street": …, "City": …, "State": …, "CountryOrRegion": …, "PostalCode": …}}``."""
    corrupt: bool = False
    """GetItem answers ``ErrorItemCorrupt`` for this item, as Exchange does for a damaged item."""
    distribution_list: bool = False
    """The item is a distribution list (``IPM.DistList``) rather than a contact."""
    id: str = attrs.field(factory=lambda: _new_id("item"))
    change_key: str = "CQAAABYAAAA"

    def xml(self, folder_id: str) -> str:
        subject = self.display_name or " ".join(p for p in (self.given_name, self.surname) if p)
        if self.distribution_list:
            return (f'<t:DistributionList><t:ItemId Id="{_x(self.id)}" ChangeKey="{self.change_key}"/>'
                    f'<t:ParentFolderId Id="{_x(folder_id)}" ChangeKey="AQAAAA=="/>'
                    f"<t:ItemClass>IPM.DistList</t:ItemClass><t:Subject>{_x(subject)}</t:Subject>"
                    f"<t:DisplayName>{_x(subject)}</t:DisplayName></t:DistributionList>")
        parts = [f'<t:ItemId Id="{_x(self.id)}" ChangeKey="{self.change_key}"/>',
                 f'<t:ParentFolderId Id="{_x(folder_id)}" ChangeKey="AQAAAA=="/>',
                 "<t:ItemClass>IPM.Contact</t:ItemClass>", f"<t:Subject>{_x(subject)}</t:Subject>",
                 "<t:Sensitivity>Normal</t:Sensitivity>", "<t:DateTimeCreated>2024-03-01T09:00:00Z</t:DateTimeCreated>",
                 "<t:LastModifiedTime>2024-03-02T09:00:00Z</t:LastModifiedTime>"]
        if subject:
            parts.append(f"<t:DisplayName>{_x(subject)}</t:DisplayName>")
        if self.given_name:
            parts.append(f"<t:GivenName>{_x(self.given_name)}</t:GivenName>")
        if self.company_name:
            parts.append(f"<t:CompanyName>{_x(self.company_name)}</t:CompanyName>")
        if self.emails:
            parts.append("<t:EmailAddresses>" + "".join(
                f'<t:Entry Key="{k}">{_x(v)}</t:Entry>' for k, v in self.emails.items()) + "</t:EmailAddresses>")
        if self.addresses:
            entries = []
            for key, address in self.addresses.items():
                inner = "".join(f"<t:{name}>{_x(address[name])}</t:{name}>"
                                for name in ("Street", "City", "State", "CountryOrRegion", "PostalCode") if address.get(name))
                entries.append(f'<t:Entry Key="{key}">{inner}</t:Entry>')
            parts.append("<t:PhysicalAddresses>" + "".join(entries) + "</t:PhysicalAddresses>")
        if self.phones:
            parts.append("<t:PhoneNumbers>" + "".join(
                f'<t:Entry Key="{k}">{_x(v)}</t:Entry>' for k, v in self.phones.items()) + "</t:PhoneNumbers>")
        if self.department:
            parts.append(f"<t:Department>{_x(self.department)}</t:Department>")
        if self.job_title:
            parts.append(f"<t:JobTitle>{_x(self.job_title)}</t:JobTitle>")
        if self.surname:
            parts.append(f"<t:Surname>{_x(self.surname)}</t:Surname>")
        return "<t:Contact>" + "".join(parts) + "</t:Contact>"


@attrs.define(eq=False)
class EwsCalendarItem:
    """An appointment of a Calendar folder; times are aware datetimes (written in UTC)."""

    subject: str
    start: Any
    end: Any
    location: str = ""
    sensitivity: str = "Normal"
    """Normal, Personal, Private or Confidential (Outlook's "Private" button sets Private)."""
    free_busy: str = "Busy"
    """LegacyFreeBusyStatus: Free, Tentative, Busy, OOF, WorkingElsewhere, NoData."""
    item_type: str = "Single"
    """CalendarItemType: Single, RecurringMaster (a series), Occurrence, Exception."""
    cancelled: bool = False
    id: str = attrs.field(factory=lambda: _new_id("event"))
    change_key: str = "DwAAABYAAAA"

    def xml(self, folder_id: str) -> str:
        def when(value: Any) -> str:
            return str(value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

        return (f'<t:CalendarItem><t:ItemId Id="{_x(self.id)}" ChangeKey="{self.change_key}"/>'
                f'<t:ParentFolderId Id="{_x(folder_id)}" ChangeKey="AQAAAA=="/>'
                f"<t:ItemClass>IPM.Appointment</t:ItemClass><t:Subject>{_x(self.subject)}</t:Subject>"
                f"<t:Sensitivity>{self.sensitivity}</t:Sensitivity>"
                f"<t:Start>{when(self.start)}</t:Start><t:End>{when(self.end)}</t:End>"
                f"<t:IsAllDayEvent>false</t:IsAllDayEvent><t:LegacyFreeBusyStatus>{self.free_busy}</t:LegacyFreeBusyStatus>"
                f"<t:Location>{_x(self.location)}</t:Location><t:IsCancelled>{str(self.cancelled).lower()}</t:IsCancelled>"
                f"<t:CalendarItemType>{self.item_type}</t:CalendarItemType></t:CalendarItem>")


@attrs.define(eq=False)
class EwsFolder:
    """A folder (public or in a mailbox) holding contacts and sub-folders."""

    name: str
    items: list[Any] = attrs.field(factory=list)
    children: list[EwsFolder] = attrs.field(factory=list)
    folder_class: str = "IPF.Contact"
    id: str = attrs.field(factory=lambda: _new_id("folder"))
    journal: list[tuple[str, str]] = attrs.field(factory=list)
    """("create" | "update" | "delete", item id) of each change, in order: what SyncFolderItems answers from."""
    generation: int = 0
    """Bumped by ``EwsMailbox.expire_sync_states``: states of an earlier generation are refused."""

    def add(self, *folders: EwsFolder) -> EwsFolder:
        self.children.extend(folders)
        return self

    def walk(self) -> Any:
        for child in self.children:
            yield child
            yield from child.walk()

    def walk_with_parents(self) -> Any:
        for child in self.children:
            yield child, self
            yield from child.walk_with_parents()

    def xml(self, parent: EwsFolder | None = None) -> str:
        tag = {"IPF.Contact": "ContactsFolder", "IPF.Appointment": "CalendarFolder"}.get(self.folder_class, "Folder")
        parent_id = f'<t:ParentFolderId Id="{_x(parent.id)}" ChangeKey="AQAAAA=="/>' if parent is not None else ""
        return (f'<t:{tag}><t:FolderId Id="{_x(self.id)}" ChangeKey="AQAAAA=="/>{parent_id}'
                f"<t:FolderClass>{self.folder_class}</t:FolderClass><t:DisplayName>{_x(self.name)}</t:DisplayName>"
                f"<t:TotalCount>{len(self.items)}</t:TotalCount><t:ChildFolderCount>{len(self.children)}</t:ChildFolderCount>"
                f"</t:{tag}>")


@attrs.define(eq=False)
class EwsMailbox:
    """A user mailbox: its primary SMTP address, its Contacts folder and who may read it."""

    email: str
    contacts: EwsFolder = attrs.field(factory=lambda: EwsFolder("Contacts"))
    reviewers: set[str] = attrs.field(factory=set)
    """Logins the owner gave Reviewer rights on the Contacts folder in Outlook (guide 8.7.6, solution 2)."""
    root: EwsFolder = attrs.field(factory=lambda: EwsFolder("Top of Information Store", folder_class="IPF.Note"))
    calendar: EwsFolder = attrs.field(factory=lambda: EwsFolder("Calendar", folder_class="IPF.Appointment"))
    free_busy_details: set[str] = attrs.field(factory=set)
    """Logins that see subjects and locations in free/busy answers (Outlook's "Free/Busy time, subject, location");
    everyone else of the organisation sees free/busy times only (Exchange's Default permission)."""

    def __attrs_post_init__(self) -> None:
        self.root.children.append(self.contacts)
        self.root.children.append(self.calendar)

    def add_event(self, subject: str, start: Any, end: Any, **fields: Any) -> EwsCalendarItem:
        """A new appointment in the Calendar (``fields``: location, sensitivity, free_busy, item_type, cancelled)."""
        item = EwsCalendarItem(subject, start, end, **fields)
        self.calendar.items.append(item)
        self.calendar.journal.append(("create", item.id))
        return item

    def change_event(self, item: EwsCalendarItem, **fields: Any) -> EwsCalendarItem:
        """The appointment changed in Outlook (new times, subject, sensitivity...)."""
        for name, value in fields.items():
            setattr(item, name, value)
        item.change_key = base64.b64encode(secrets.token_bytes(6)).decode()
        self.calendar.journal.append(("update", item.id))
        return item

    def delete_event(self, item: EwsCalendarItem) -> None:
        self.calendar.items.remove(item)
        self.calendar.journal.append(("delete", item.id))

    def expire_sync_states(self) -> None:
        """Every SyncState given so far for the Calendar is refused from now on (ErrorInvalidSyncStateData)."""
        self.calendar.generation += 1


class _Fault(Exception):
    def __init__(self, code: str, text: str):
        super().__init__(text)
        self.code, self.text = code, text


@attrs.define(eq=False)
class EwsServer:
    """The simulated Exchange server; use as a context manager or ``start()`` / ``stop()``."""

    users: dict[str, str] = attrs.field(factory=dict)
    """Logins (``EXCH\\\\twp`` or ``twp@example.com``) and their passwords for Basic authentication."""
    apps: dict[str, str] = attrs.field(factory=dict)
    """OAuth client ids and secrets of registered applications (client credentials, Office 365)."""
    app_roles: dict[str, set[str]] = attrs.field(factory=dict)
    """client id -> mailboxes it may read ("*" for all: ``full_access_as_app``)."""
    impersonators: set[str] = attrs.field(factory=set)
    """Logins holding the ApplicationImpersonation role (guide 8.7.6, solution 1)."""
    public: EwsFolder = attrs.field(factory=lambda: EwsFolder("IPM_SUBTREE", folder_class="IPF.Note"))
    """The root of the public folders."""
    mailboxes: dict[str, EwsMailbox] = attrs.field(factory=dict)
    version: tuple[int, int, int, int, str] = (15, 1, 2507, 6, "Exchange2016")
    """ServerVersionInfo: major, minor, build numbers and the API version name."""
    max_page: int = 1000
    """Exchange's EWSFindCountLimit: FindItem answers at most this many items per page."""
    ntlm: bool = False
    """Ask for NTLM (IIS "Integrated Windows authentication") instead of Basic; needs ``ntlm_user_file()`` in
    the ``NTLM_USER_FILE`` environment variable, which pyspnego's NTLM acceptor reads."""
    delay: float = 0.0
    fail_after: int | None = None
    requests: list[tuple[str, str]] = attrs.field(factory=list)
    """(SOAP operation, login or client id) of every request received."""
    _httpd: ThreadingHTTPServer | None = None
    _tokens: dict[str, str] = attrs.field(factory=dict)
    _connections: set[Any] = attrs.field(factory=set)

    # -- set-up ------------------------------------------------------------------------
    def mailbox(self, email: str) -> EwsMailbox:
        """The mailbox of ``email``, created empty on first use."""
        key = email.lower()
        if key not in self.mailboxes:
            self.mailboxes[key] = EwsMailbox(email)
        return self.mailboxes[key]

    def start(self) -> EwsServer:
        server = self

        class Handler(_Handler):
            sim = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="ews-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        # A stopped server also drops the keep-alive connections clients still hold.
        for connection in list(self._connections):
            try:
                connection.shutdown(2)
            except OSError:
                pass
        self._connections.clear()

    def __enter__(self) -> EwsServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start the server first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The EWS service endpoint (``/EWS/Exchange.asmx``)."""
        return f"http://127.0.0.1:{self.port}/EWS/Exchange.asmx"

    @property
    def token_url(self) -> str:
        """The OAuth 2 token endpoint (like ``login.microsoftonline.com/<tenant>/oauth2/v2.0/token``)."""
        return f"http://127.0.0.1:{self.port}/tenant/oauth2/v2.0/token"

    def ntlm_user_file(self, path: Any) -> str:
        """Write the ``DOMAIN:user:password`` file of ``users`` for the NTLM acceptor; return its path."""
        lines = []
        for login, password in self.users.items():
            domain, _, user = login.rpartition("\\")
            lines.append(f"{domain}:{user}:{password}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return str(path)

    def operations(self) -> list[str]:
        return [op for op, _ in self.requests]

    # -- answering ---------------------------------------------------------------------
    def authenticate(self, header: str | None) -> str | None:
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                login, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
            return login if login in self.users and self.users[login] == password else None
        if scheme.lower() == "bearer":
            client = self._tokens.get(value.strip())
            return f"app:{client}" if client else None
        return None

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: only client_credentials"}
        if client not in self.apps or self.apps[client] != secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
        token = secrets.token_urlsafe(24)
        self._tokens[token] = client
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def may_open(self, login: str, mailbox: EwsMailbox, impersonating: bool) -> None:
        if login.startswith("app:"):
            allowed = self.app_roles.get(login[4:], set())
            if "*" in allowed or mailbox.email.lower() in {a.lower() for a in allowed}:
                return
            raise _Fault("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        # "CORP\\anne" and "anne@corp.example" both own the mailbox anne@corp.example.
        if mailbox.email.lower() == login.lower() or mailbox.email.lower().split("@")[0] == login.lower().split("\\")[-1]:
            return
        if impersonating:
            if login in self.impersonators:
                return
            raise _Fault("ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.")
        if login in mailbox.reviewers:
            return
        raise _Fault("ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    def handle(self, login: str, body: bytes) -> str:
        root = ET.fromstring(body)
        header = root.find(f"{{{SOAP}}}Header")
        request = root.find(f"{{{SOAP}}}Body")
        assert request is not None and len(request), "a SOAP body with one request"
        op_elem = request[0]
        op = op_elem.tag.split("}")[-1]
        self.requests.append((op, login))
        impersonated = None
        if header is not None:
            smtp = header.find(f".//{{{T}}}ExchangeImpersonation//{{{T}}}PrimarySmtpAddress")
            if smtp is not None:
                impersonated = (smtp.text or "").strip()
        if op == "GetUserAvailabilityRequest":
            return self.envelope(self._availability(op_elem, login))
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            return self.fault(f"The request {op} is not served by this EWS simulator")
        try:
            messages = handler(op_elem, login, impersonated)
        except _Fault as fault:
            messages = self.error(op, fault.code, fault.text)
        return self.envelope(f"<m:{op}Response>" + "<m:ResponseMessages>" + messages + "</m:ResponseMessages>" + f"</m:{op}Response>")

    def envelope(self, body: str) -> str:
        major, minor, build, minor_build, api = self.version
        return ('<?xml version="1.0" encoding="utf-8"?>'
                f'<s:Envelope xmlns:s="{SOAP}" xmlns:m="{M}" xmlns:t="{T}"><s:Header>'
                f'<h:ServerVersionInfo MajorVersion="{major}" MinorVersion="{minor}" MajorBuildNumber="{build}" '
                f'MinorBuildNumber="{minor_build}" Version="{api}" xmlns:h="{T}"/>'
                f"</s:Header><s:Body>{body}</s:Body></s:Envelope>")

    def fault(self, text: str) -> str:
        return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault>'
                f"<faultcode>s:Client</faultcode><faultstring>{_x(text)}</faultstring></s:Fault></s:Body></s:Envelope>")

    @staticmethod
    def success(op: str, body: str) -> str:
        return (f'<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
                f"{body}</m:{op}ResponseMessage>")

    @staticmethod
    def root_folder(offset: int, shown: int, total: int, tag: str, content: str) -> str:
        """A FindFolder/FindItem ``RootFolder``: one page (``offset``, ``shown`` of ``total``) of ``<t:{tag}>``."""
        last = offset + shown >= total
        return (f'<m:RootFolder IndexedPagingOffset="{offset + shown}" TotalItemsInView="{total}" '
                f'IncludesLastItemInRange="{str(last).lower()}"><t:{tag}>{content}</t:{tag}></m:RootFolder>')

    @staticmethod
    def error(op: str, code: str, text: str) -> str:
        return (f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{_x(text)}</m:MessageText>'
                f"<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
                f"</m:{op}ResponseMessage>")

    # folders --------------------------------------------------------------------------
    def _all_folders(self) -> Any:
        yield self.public
        yield from self.public.walk()
        for mailbox in self.mailboxes.values():
            yield mailbox.root
            yield from mailbox.root.walk()

    def _owner(self, folder: EwsFolder) -> EwsMailbox | None:
        for mailbox in self.mailboxes.values():
            if folder is mailbox.root or any(f is folder for f in mailbox.root.walk()):
                return mailbox
        return None

    def _resolve_folder(self, elem: ET.Element, login: str, impersonated: str | None) -> EwsFolder:
        tag = elem.tag.split("}")[-1]
        if tag == "DistinguishedFolderId":
            name = elem.get("Id", "")
            if name == "publicfoldersroot":
                return self.public
            smtp = elem.find(f"{{{T}}}Mailbox/{{{T}}}EmailAddress")
            email = impersonated or (smtp.text.strip() if smtp is not None and smtp.text else login.split("\\")[-1])
            mailbox = self.mailboxes.get(email.lower())
            if mailbox is None:
                raise _Fault("ErrorNonExistentMailbox", f"No mailbox with such guid or SMTP address {email}")
            self.may_open(login, mailbox, impersonated is not None)
            if name == "contacts":
                return mailbox.contacts
            if name == "calendar":
                return mailbox.calendar
            if name in ("root", "msgfolderroot"):
                return mailbox.root
            raise _Fault("ErrorFolderNotFound", f"The specified folder {name} could not be found in the store.")
        wanted = elem.get("Id")
        for folder in self._all_folders():
            if folder.id == wanted:
                owner = self._owner(folder)
                if owner is not None:
                    self.may_open(login, owner, impersonated is not None)
                return folder
        raise _Fault("ErrorFolderNotFound", "The specified folder could not be found in the store.")

    def _op_ConvertId(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        return self.error("ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.")

    def _op_GetFolder(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        out = []
        ids = elem.find(f"{{{M}}}FolderIds")
        for folder_elem in list(ids) if ids is not None else []:
            try:
                folder = self._resolve_folder(folder_elem, login, impersonated)
            except _Fault as fault:
                out.append(self.error("GetFolder", fault.code, fault.text))
                continue
            out.append(self.success("GetFolder", f"<m:Folders>{folder.xml()}</m:Folders>"))
        return "".join(out)

    def _op_FindFolder(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        deep = elem.get("Traversal") == "Deep"
        view = elem.find(f"{{{M}}}IndexedPageFolderView")
        out = []
        for parent_elem in list(elem.find(f"{{{M}}}ParentFolderIds") or []):
            try:
                parent = self._resolve_folder(parent_elem, login, impersonated)
                if (deep and parent is self.public) or (deep and any(parent is f for f in self.public.walk())):
                    raise _Fault("ErrorInvalidRequest", "Deep traversal is not supported for public folders.")
            except _Fault as fault:
                out.append(self.error("FindFolder", fault.code, fault.text))
                continue
            folders = list(parent.walk_with_parents()) if deep else [(child, parent) for child in parent.children]
            offset, limit = _page(view, len(folders))
            page = folders[offset:offset + limit]
            out.append(self.success("FindFolder", self.root_folder(offset, len(page), len(folders), "Folders",
                                                                   "".join(f.xml(p) for f, p in page))))
        return "".join(out)

    def _op_FindItem(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        view = elem.find(f"{{{M}}}IndexedPageItemView")
        out = []
        for parent_elem in list(elem.find(f"{{{M}}}ParentFolderIds") or []):
            try:
                folder = self._resolve_folder(parent_elem, login, impersonated)
            except _Fault as fault:
                out.append(self.error("FindItem", fault.code, fault.text))
                continue
            offset, limit = _page(view, len(folder.items))
            limit = min(limit, self.max_page)
            page = folder.items[offset:offset + limit]
            items = "".join(
                (f'<t:{"DistributionList" if item.distribution_list else "Contact"}>'
                 f'<t:ItemId Id="{_x(item.id)}" ChangeKey="{item.change_key}"/>'
                 f'</t:{"DistributionList" if item.distribution_list else "Contact"}>') for item in page)
            out.append(self.success("FindItem", self.root_folder(offset, len(page), len(folder.items), "Items", items)))
        return "".join(out)

    def _op_SyncFolderItems(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        target = elem.find(f"{{{M}}}SyncFolderId")
        if target is None or not len(target):
            raise _Fault("ErrorInvalidRequest", "SyncFolderId is required.")
        folder = self._resolve_folder(target[0], login, impersonated)
        state_elem = elem.find(f"{{{M}}}SyncState")
        state = (state_elem.text or "").strip() if state_elem is not None else ""
        by_id = {item.id: item for item in folder.items}
        if state:
            try:
                folder_id, generation, position = base64.b64decode(state).decode().split("|")
                start = int(position)
                valid = folder_id == folder.id and int(generation) == folder.generation and 0 <= start <= len(folder.journal)
            except ValueError:
                valid = False
            if not valid:
                # Exchange keeps SyncState and IncludesLastItemInRange in its error answer (exchangelib reads them).
                return ('<m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is '
                        "corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode>"
                        "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:SyncState/>"
                        "<m:IncludesLastItemInRange>true</m:IncludesLastItemInRange></m:SyncFolderItemsResponseMessage>")
            first: dict[str, str] = {}
            last: dict[str, str] = {}
            for kind, item_id in folder.journal[start:]:
                first.setdefault(item_id, kind)
                last.pop(item_id, None)
                last[item_id] = kind  # re-inserted: ordered by latest change
            changes = []
            for item_id, kind in last.items():
                if kind == "delete":
                    if first[item_id] != "create":
                        changes.append(f'<t:Delete><t:ItemId Id="{_x(item_id)}" ChangeKey="AAAAAA=="/></t:Delete>')
                elif item_id in by_id:
                    tag = "Create" if first[item_id] == "create" else "Update"
                    changes.append(f"<t:{tag}>{by_id[item_id].xml(folder.id)}</t:{tag}>")
        else:
            changes = [f"<t:Create>{item.xml(folder.id)}</t:Create>" for item in folder.items]
        new_state = base64.b64encode(f"{folder.id}|{folder.generation}|{len(folder.journal)}".encode()).decode()
        return self.success("SyncFolderItems", f"<m:SyncState>{new_state}</m:SyncState>"
                                               "<m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
                                               f"<m:Changes>{''.join(changes)}</m:Changes>")

    def _op_GetServerTimeZones(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        # Only UTC, without daylight saving: what a client asking for free/busy in UTC needs.
        return self.success("GetServerTimeZones", (
            '<m:TimeZoneDefinitions><t:TimeZoneDefinition Id="UTC" Name="(UTC) Coordinated Universal Time">'
            '<t:Periods><t:Period Bias="PT0H" Name="Standard" Id="Std"/></t:Periods>'
            '<t:TransitionsGroups><t:TransitionsGroup Id="0"><t:Transition><t:To Kind="Period">Std</t:To></t:Transition>'
            "</t:TransitionsGroup></t:TransitionsGroups>"
            '<t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions>'
            "</t:TimeZoneDefinition></m:TimeZoneDefinitions>"))

    def _availability(self, elem: ET.Element, login: str) -> str:
        """GetUserAvailability (free/busy, requested in UTC): the busy times of each mailbox in the window."""
        window = elem.find(f".//{{{T}}}TimeWindow")
        assert window is not None, "a FreeBusyViewOptions TimeWindow"

        def moment(tag: str) -> datetime.datetime:
            text = (window.findtext(f"{{{T}}}{tag}") or "").replace("Z", "")
            return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)

        start, end = moment("StartTime"), moment("EndTime")
        answers = []
        for data in elem.findall(f".//{{{T}}}MailboxData"):
            address = (data.findtext(f"{{{T}}}Email/{{{T}}}Address") or "").strip()
            mailbox = self.mailboxes.get(address.lower())
            if mailbox is None:
                answers.append('<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Error"><m:MessageText>No mailbox with such '
                               f"guid or SMTP address {_x(address)}</m:MessageText><m:ResponseCode>ErrorMailRecipientNotFound"
                               "</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:ResponseMessage></m:FreeBusyResponse>")
                continue
            details = login in mailbox.free_busy_details
            events = []
            for item in mailbox.calendar.items:
                if item.cancelled or item.free_busy == "Free" or item.end <= start or item.start >= end:
                    continue
                detail = ""
                if details and item.sensitivity not in ("Private", "Confidential"):
                    detail = (f"<t:CalendarEventDetails><t:ID>{_x(item.id)}</t:ID><t:Subject>{_x(item.subject)}</t:Subject>"
                              f"<t:Location>{_x(item.location)}</t:Location><t:IsMeeting>false</t:IsMeeting>"
                              "<t:IsRecurring>false</t:IsRecurring><t:IsException>false</t:IsException>"
                              "<t:IsReminderSet>false</t:IsReminderSet><t:IsPrivate>false</t:IsPrivate></t:CalendarEventDetails>")
                elif details:
                    detail = "<t:CalendarEventDetails><t:IsPrivate>true</t:IsPrivate></t:CalendarEventDetails>"
                events.append(f"<t:CalendarEvent><t:StartTime>{item.start.astimezone(datetime.UTC):%Y-%m-%dT%H:%M:%S}</t:StartTime>"
                              f"<t:EndTime>{item.end.astimezone(datetime.UTC):%Y-%m-%dT%H:%M:%S}</t:EndTime>"
                              f"<t:BusyType>{item.free_busy}</t:BusyType>{detail}</t:CalendarEvent>")
            answers.append('<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
                           f"</m:ResponseMessage><m:FreeBusyView><t:FreeBusyViewType>{'Detailed' if details else 'FreeBusy'}"
                           f"</t:FreeBusyViewType><t:CalendarEventArray>{''.join(events)}</t:CalendarEventArray></m:FreeBusyView>"
                           "</m:FreeBusyResponse>")
        return f"<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>{''.join(answers)}</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>"

    def _op_GetItem(self, elem: ET.Element, login: str, impersonated: str | None) -> str:
        index: dict[str, tuple[EwsContact, EwsFolder]] = {}
        for folder in self._all_folders():
            for item in folder.items:
                index[item.id] = (item, folder)
        out = []
        for id_elem in list(elem.find(f"{{{M}}}ItemIds") or []):
            found = index.get(id_elem.get("Id", ""))
            if found is None:
                out.append(self.error("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
                continue
            item, folder = found
            owner = self._owner(folder)
            try:
                if owner is not None:
                    self.may_open(login, owner, impersonated is not None)
                if item.corrupt:
                    raise _Fault("ErrorItemCorrupt", "The item is corrupt.")
            except _Fault as fault:
                out.append(self.error("GetItem", fault.code, fault.text))
                continue
            out.append(self.success("GetItem", f"<m:Items>{item.xml(folder.id)}</m:Items>"))
        return "".join(out)


def _page(view: ET.Element | None, total: int) -> tuple[int, int]:
    if view is None:
        return 0, total
    offset = int(view.get("Offset", "0"))
    if view.get("BasePoint") == "End":
        offset = max(0, total - offset)
    return offset, int(view.get("MaxEntriesReturned", str(total)))


class _Handler(BaseHTTPRequestHandler):
    sim: EwsServer
    protocol_version = "HTTP/1.1"
    ntlm_context: spnego.ContextProxy | None = None
    """The NTLM handshake in progress on this connection."""
    ntlm_login: str | None = None
    """Who NTLM authenticated on this connection."""

    def setup(self) -> None:
        super().setup()
        self.sim._connections.add(self.connection)

    def finish(self) -> None:
        self.sim._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # BaseHTTPRequestHandler's name
        log.debug("ews simulator: " + format, *args)  # noqa: G003 - http.server hands a format string and its arguments

    def _send(self, status: int, body: str, content_type: str = "text/xml; charset=utf-8", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _ntlm(self, token: str) -> str | None:
        """One leg of the NTLM handshake on this connection; the login once it completes, else None (answered)."""
        import spnego

        context = getattr(self, "ntlm_context", None)
        if context is None:
            context = self.ntlm_context = spnego.server(protocol="ntlm")
        try:
            answer = context.step(base64.b64decode(token))
        except Exception:  # noqa: BLE001 - a wrong password ends the handshake
            self.ntlm_context = None
            self.sim.requests.append(("unauthorized", ""))
            self._send(401, "", "text/plain", {"WWW-Authenticate": "NTLM"})
            return None
        if not context.complete:
            assert answer is not None
            self._send(401, "", "text/plain", {"WWW-Authenticate": "NTLM " + base64.b64encode(answer).decode()})
            return None
        self.ntlm_context = None
        self.ntlm_login = str(context.client_principal)
        return self.ntlm_login

    def do_GET(self) -> None:  # http.server's name
        self._send(405, "POST SOAP requests to /EWS/Exchange.asmx", "text/plain")

    def do_POST(self) -> None:  # http.server's name
        sim = self.sim
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if sim.delay:
            time.sleep(sim.delay)
        if sim.fail_after is not None and len(sim.requests) >= sim.fail_after:
            # The server dies: close the socket without an answer.
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if self.path.endswith("/oauth2/v2.0/token"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            status, token = sim.issue_token(form)
            sim.requests.append(("token", form.get("client_id", "")))
            self._send(status, json.dumps(token), "application/json")
            return
        if self.path.lower() != "/ews/exchange.asmx":
            self._send(404, "not found", "text/plain")
            return
        header = self.headers.get("Authorization") or ""
        if sim.ntlm and header[:5].lower() == "ntlm ":
            login = self._ntlm(header[5:].strip())
            if login is None:
                return
        elif sim.ntlm and getattr(self, "ntlm_login", None) and not header:
            login = self.ntlm_login  # NTLM authenticates the connection, not each request
        else:
            login = sim.authenticate(header) if not (sim.ntlm and header.lower().startswith("basic")) else None
        if login is None:
            sim.requests.append(("unauthorized", ""))
            self._send(401, "", "text/plain", {"WWW-Authenticate": "NTLM" if sim.ntlm else 'Basic realm="127.0.0.1"'})
            return
        try:
            answer = sim.handle(login, body)
        except ET.ParseError as exc:
            self._send(500, sim.fault(f"malformed request: {exc}"))
            return
        self._send(200, answer)
