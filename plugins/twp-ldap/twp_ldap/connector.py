"""The LDAP and Active Directory directory connectors (guide 8.3 and 7.2.2), on ldap3.

One search per sync, read with the simple paged results control (RFC 2696) so that a
server size limit (Active Directory's MaxPageSize of 1,000, slapd's ``sizelimit``)
never truncates a directory: pages of ``page_size`` entries are requested until the
server's cookie is empty.  ldap3 is blocking, so the search runs in a worker thread and
records are handed to the kernel page by page through a bounded queue
(``twpcore.blocking``): memory stays flat whatever the size of the directory.

A sync either reads every entry or raises: ``NotReady`` when no server answers, an
answer takes longer than ``timeout`` or the connection drops half-way (the kernel
keeps the previous contacts and tries again later), ``AuthFailed`` when the bind is
refused, ``ConnectorError`` for everything an admin must fix (base DN not found,
filter invalid, page size refused, certificate not trusted, more entries than
``size_limit``).  Entries that are only partly readable (an attribute that is not
text, an ``objectGUID`` that is not 16 bytes, a missing id attribute) are yielded
with what could be read and logged with their DN.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import math
import ssl
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import attrs

from twp_ldap.deferred import Deferred
from twpcore.plugin_api import (
    AuthFailed,
    ConnectorError,
    DirectoryConnector,
    Duration,
    NotReady,
    Secret,
    ServerSide,
    SourceRecord,
    iterate_in_thread,
    setting,
    user_value,
)

if TYPE_CHECKING:
    import ldap3
    from ldap3.core import exceptions as lx
    from ldap3.utils import conv as ldap_conv
    from ldap3.utils import dn as ldap_dn
else:  # imported on first use: ldap3 costs about 0.2 s of a server start (twp_ldap.deferred)
    ldap3 = Deferred("ldap3")
    lx = Deferred("ldap3.core.exceptions")
    ldap_conv = Deferred("ldap3.utils.conv")
    ldap_dn = Deferred("ldap3.utils.dn")

log = logging.getLogger(__name__)

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

#: Binary attributes read as bytes unless listed in ``binary_attributes`` differently.
DEFAULT_BINARY_ATTRIBUTES = ["objectGUID", "objectSid", "thumbnailPhoto", "jpegPhoto", "photo", "userCertificate"]

#: Binary attributes turned into their usual text form rather than bytes.
GUID_ATTRIBUTES = frozenset({"objectguid", "msexchmailboxguid", "ms-ds-consistencyguid"})
SID_ATTRIBUTES = frozenset({"objectsid"})

#: Active Directory: enabled user accounts (sAMAccountType 805306368 = SAM_NORMAL_USER_ACCOUNT,
#: which leaves out computers) and contacts.  The bit test 1.2.840.113556.1.4.803 leaves
#: out disabled accounts (userAccountControl bit 2, ACCOUNTDISABLE).
AD_FILTER = "(&(|(sAMAccountType=805306368)(objectClass=contact))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"

#: The attributes Active Directory address books read (guide 7.2.2: "standard AD fields").
AD_ATTRIBUTES = [
    "objectGUID", "sAMAccountName", "userPrincipalName", "displayName", "givenName", "sn",
    "initials", "title", "department", "company", "physicalDeliveryOfficeName",
    "telephoneNumber", "otherTelephone", "ipPhone", "mobile", "otherMobile", "homePhone",
    "otherHomePhone", "facsimileTelephoneNumber", "pager", "mail", "wWWHomePage",
    "streetAddress", "l", "st", "postalCode", "co", "info", "manager", "thumbnailPhoto",
]

#: Guide 7.2.2 pre-fills a directory's fields from the standard AD attributes: this is
#: that mapping (TWP field -> field spec), used by the kernel when a directory has none.
AD_DEFAULT_FIELDS: dict[str, str] = {
    "id": "objectGUID",
    "last_name": "sn",
    "first_name": "givenName",
    "company": "company",
    "department": "department",
    "title": "title",
    "email": "mail",
    "address": "streetAddress|a",
    "city": "l",
    "zip": "postalCode",
    "state": "st",
    "country": "co",
    "website": "wWWHomePage",
    "note": "info",
    "phone": "telephoneNumber",
    "mobile": "mobile",
    "home": "homePhone",
    "fax": "facsimileTelephoneNumber",
    "other": "otherTelephone",
}

#: The same for an OpenLDAP / inetOrgPerson tree (guide 8.3's "people type schema").
#: No ``id``: the record id (``id_attribute``, else the DN) identifies contacts.
LDAP_DEFAULT_FIELDS: dict[str, str] = {
    "last_name": "sn",
    "first_name": "givenName",
    "company": "o",
    "department": "ou",
    "title": "title",
    "email": "mail",
    "address": "street|a",
    "city": "l",
    "zip": "postalCode",
    "state": "st",
    "note": "description",
    "phone": "telephoneNumber",
    "mobile": "mobile",
    "home": "homePhone",
    "fax": "facsimileTelephoneNumber",
}

_SCOPES = {"subtree": "SUBTREE", "one": "LEVEL", "base": "BASE"}
"""Search scopes: ldap3's values of ``ldap3.SUBTREE``, ``LEVEL`` and ``BASE``."""

# LDAP result codes (RFC 4511) the connector explains.
_SIZE_LIMIT_EXCEEDED, _TIME_LIMIT_EXCEEDED, _ADMIN_LIMIT_EXCEEDED = 4, 3, 11
_NO_SUCH_OBJECT, _INVALID_CREDENTIALS, _INSUFFICIENT_ACCESS = 32, 49, 50
_STRONGER_AUTH_REQUIRED, _INAPPROPRIATE_AUTH, _UNWILLING = 8, 48, 53
_BUSY, _UNAVAILABLE = 51, 52


def check_urls(value: str) -> None:
    """Raise ``ValueError`` naming the key unless ``value`` is one or more ldap(s):// URLs."""
    urls = value.split()
    if not urls:
        raise ValueError("url: expected one or more ldap:// or ldaps:// URLs, got an empty string")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f'url: expected ldap://host[:port] or ldaps://host[:port], got "{url}"')
        try:
            _ = parts.port  # reading it checks it
        except ValueError:
            raise ValueError(f'url: "{url}" has an invalid port; expected 1-65535') from None


@attrs.frozen(kw_only=True)
class LdapConfig:
    """Options of an ``ldap`` directory (guide 8.3: connector, fields and advanced tabs)."""

    url: str = setting(help='server URL(s), space-separated, tried in order: "ldap://dc1:389 ldaps://dc2:636"')
    """One or more ``ldap://`` or ``ldaps://`` URLs; the next is tried when one does not answer."""
    base_dn: str = setting(help='where the search starts (the guide\'s "connection string"), e.g. "ou=people,dc=example,dc=com"')
    """The search base."""
    bind_dn: str = setting("", help="DN (or user@domain for AD) with read access; empty for an anonymous bind")
    """Who the connector binds as; empty binds anonymously."""
    password: Secret | None = setting(None, help='password of bind_dn; write { env = "VAR" } to keep it out of the file')
    """The bind password."""
    filter: str = setting(
        "(objectClass=person)", help="LDAP filter (RFC 4515) selecting the contacts; {login} and {email} stand for the user of a private directory"
    )
    """The search filter."""
    scope: Literal["subtree", "one", "base"] = setting("subtree", help="subtree: everything below base_dn; one: its children only")
    """Search scope."""
    attributes: list[str] = setting(factory=list, help="attributes to read; empty reads every user attribute")
    """Attributes requested; the field names of the records are spelt as here."""
    id_attribute: str = setting("", help="attribute giving each record a stable id (entryUUID, objectGUID); empty uses the DN")
    """Where ``SourceRecord.id`` comes from."""
    page_size: int = setting(
        500, min=0, max=100_000, help="entries per page of the paged search (RFC 2696); at most the server's limit (AD: 1000); 0 disables paging"
    )
    """Page size of the simple paged results control."""
    size_limit: int = setting(0, min=0, help="fail the sync when more entries than this match (a safety cap); 0 for no cap")
    """A cap on the entries one sync may read; reaching it fails the sync rather than truncating it."""
    start_tls: bool = setting(False, help="upgrade ldap:// connections with StartTLS")
    """Use StartTLS on ``ldap://`` URLs."""
    ca_file: str = setting("", help="PEM file of the CA(s) that signed the server certificate; empty uses the system CAs; super users only",
                           server_side=ServerSide("a certificate file on the server"))
    """Trusted CAs for LDAPS and StartTLS."""
    tls_verify: Literal["full", "ca", "none"] = setting(
        "full", help="full: check the certificate chain and the host name; ca: the chain only; none: no check (tests only)"
    )
    """Server certificate verification."""
    timeout: Duration = setting(Duration(10), min=0.1, max=3600, help="seconds to wait for a connection or an answer")
    """Connection and response time-out."""
    lower_case_names: bool = setting(False, help="give attribute names in lower case (the guide's field names are typed in lower case)")
    """Lower-case the field names of records."""
    binary_attributes: list[str] = setting(
        factory=lambda: list(DEFAULT_BINARY_ATTRIBUTES),
        help="attributes read as binary: objectGUID and objectSid become their text form, others bytes (photos)",
    )
    """Attributes that are not text."""

    @url.validator
    def _check_url(self, attribute: Any, value: str) -> None:
        check_urls(value)


@attrs.frozen(kw_only=True)
class ActiveDirectoryConfig(LdapConfig):
    """Options of an ``active_directory`` directory: LDAP with Active Directory's defaults (guide 7.2.2)."""

    filter: str = setting(AD_FILTER, help="LDAP filter; the default selects enabled user accounts and contacts")
    attributes: list[str] = setting(factory=lambda: list(AD_ATTRIBUTES), help="attributes to read; the default is the standard AD address-book set")
    id_attribute: str = setting("objectGUID", help="attribute giving each record a stable id")
    page_size: int = setting(1000, min=0, max=100_000, help="entries per page; Active Directory's MaxPageSize is 1000 by default")


def format_guid(value: bytes) -> str:
    """Active Directory's text form of an objectGUID (little-endian first three fields)."""
    return str(uuid.UUID(bytes_le=value))


def format_sid(value: bytes) -> str:
    """``S-1-5-21-…`` from a binary security identifier."""
    revision, count = value[0], value[1]
    if len(value) != 8 + 4 * count:
        raise ValueError(f"{len(value)} bytes for {count} sub-authorities")
    authority = int.from_bytes(value[2:8], "big")
    subs = struct.unpack(f"<{count}I", value[8:])
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def check_host_name(cert: Mapping[str, Any], host: str) -> None:
    """Raise ``ssl.CertificateError`` unless the certificate names ``host`` (RFC 6125: SAN first, one wildcard label)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    sans = cert.get("subjectAltName", ())
    names: list[str] = []
    for kind, value in sans:
        if address is not None and kind == "IP Address":
            try:
                if ipaddress.ip_address(value.strip()) == address:
                    return
            except ValueError:
                pass
        elif address is None and kind == "DNS" and _dns_match(value, host):
            return
        names.append(value)
    if address is None and not any(kind == "DNS" for kind, _ in sans):
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    if _dns_match(value, host):
                        return
                    names.append(value)
    raise ssl.CertificateError(f"certificate is for {', '.join(names) or 'no name'}, not {host}")


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*.") and "." in host:
        return host.split(".", 1)[1] == pattern[2:]
    return pattern == host


class LdapConnector(DirectoryConnector):
    """Reads contacts from any LDAP v3 server (OpenLDAP, 389 DS, Active Directory…) with paged searches."""

    type_name = "ldap"
    Config = LdapConfig
    capabilities = frozenset({"sync", "test_connection", "photo", "private"})
    description = "LDAP directory (paged search, LDAPS/StartTLS, binary attributes)"
    default_fields: ClassVar[Mapping[str, str]] = LDAP_DEFAULT_FIELDS
    """The field mapping a directory gets when the admin sets none (guide 7.2 pre-fills fields)."""

    config: LdapConfig

    def __init__(self, config: LdapConfig, context: Any):
        super().__init__(config, context)
        self.urls = config.url.split()
        self._binary = {name.lower() for name in config.binary_attributes}
        self._wanted = {name.lower(): name for name in config.attributes}
        self._id = config.id_attribute.lower()
        # Requested attributes an entry lacks are given as None, under their field name.
        self._missing = {key: name.lower() if config.lower_case_names else name for key, name in self._wanted.items()}
        self._plans: dict[str, tuple[str, str, bool]] = {}

    @property
    def logger(self) -> logging.Logger:
        return self.context.logger if self.context is not None else log

    # -- the kernel's contract --------------------------------------------------------

    def source_fields(self) -> list[str]:
        names = ["dn", *self.config.attributes]
        return [n.lower() for n in names] if self.config.lower_case_names else names

    async def test_connection(self) -> str:
        return await asyncio.to_thread(self._count)

    def records(self, user: Any = None) -> Any:
        return iterate_in_thread(lambda emit: self._produce(emit, user), max_batches=2)

    # -- connecting -------------------------------------------------------------------

    def _tls(self) -> ldap3.Tls:
        verify = self.config.tls_verify
        return ldap3.Tls(
            validate=ssl.CERT_NONE if verify == "none" else ssl.CERT_REQUIRED,
            ca_certs_file=self.config.ca_file or None,
            # "*" makes ldap3 accept any name (the chain is still checked): the host
            # name is checked by ``check_host_name`` instead, because ldap3's own check
            # relies on ssl.match_hostname, which Python 3.12 removed.
            valid_names=["*"],
        )

    def _connection(self, url: str) -> ldap3.Connection:
        timeout = float(self.config.timeout)
        server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=timeout, tls=self._tls())
        password = self.config.password.reveal() if self.config.password is not None else None
        conn = ldap3.Connection(
            server,
            user=self.config.bind_dn or None,
            password=password if self.config.bind_dn else None,
            client_strategy=ldap3.SYNC,
            read_only=True,
            raise_exceptions=False,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds.
            receive_timeout=max(1, math.ceil(timeout)),
            auto_referrals=False,
            auto_range=False,
            check_names=False,
            return_empty_attributes=False,
        )
        _decode_entries_raw(conn)
        return conn

    def _connect(self) -> tuple[ldap3.Connection, str]:
        """Open and bind to the first server that answers; raise what the admin must know."""
        failures: list[str] = []
        not_ldap = 0
        who = self.config.bind_dn or "anonymous"
        for url in self.urls:
            conn = self._connection(url)
            try:
                conn.open()
                if self.config.start_tls and not conn.server.ssl and not conn.start_tls():
                    raise ConnectorError(f"{url}: StartTLS refused by the server: {_describe(conn.result)}")
                if self.config.tls_verify == "full" and (conn.server.ssl or conn.tls_started):
                    check_host_name(conn.socket.getpeercert() or {}, conn.server.host)
                bound = conn.bind()
            except ssl.CertificateError as exc:
                _close(conn)
                raise ConnectorError(self._tls_problem(url, exc)) from exc
            except (lx.LDAPStartTLSError, lx.LDAPCertificateError, lx.LDAPSSLConfigurationError) as exc:
                _close(conn)
                raise ConnectorError(self._tls_problem(url, exc)) from exc
            except lx.LDAPCommunicationError as exc:
                _close(conn)
                if _is_tls_error(exc):
                    raise ConnectorError(self._tls_problem(url, exc)) from exc
                failures.append(f"{url}: {_communication(exc, self.config.timeout)}")
                continue
            except ConnectorError:
                _close(conn)
                raise
            except (LookupError, ValueError, TypeError) as exc:
                # ldap3 decodes whatever comes back as LDAP: an HTTP or SSH server answers bytes it
                # cannot map (KeyError: (1, 20), IndexError...).
                _close(conn)
                failures.append(f"{url} did not answer as an LDAP server (its answer could not be decoded: {type(exc).__name__}); "
                                "check the host and port: LDAP listens on 389, LDAPS on 636, the Active Directory global catalog on 3268")
                not_ldap += 1
                continue
            if bound:
                return conn, url
            result = conn.result
            _close(conn)
            code = result.get("result")
            if code in (_INVALID_CREDENTIALS, _INAPPROPRIATE_AUTH, _UNWILLING):
                raise AuthFailed(f"{url}: the server refused the bind as {who} ({_describe(result)}); check bind_dn and password")
            if code in (_STRONGER_AUTH_REQUIRED,):
                raise ConnectorError(
                    f"{url}: the server requires a protected connection to bind as {who} ({_describe(result)}); use ldaps:// or start_tls = true"
                )
            if code in (_BUSY, _UNAVAILABLE):
                failures.append(f"{url}: {_describe(result)}")
                continue
            raise ConnectorError(f"{url}: bind as {who} failed: {_describe(result)}")
        if not_ldap == len(failures):  # a wrong address, not a server that is down: retrying will not help
            raise ConnectorError("; ".join(failures))
        raise NotReady("no LDAP server answered: " + "; ".join(failures))

    def _tls_problem(self, url: str, exc: Exception) -> str:
        where = f"ca_file {self.config.ca_file}" if self.config.ca_file else "the system CAs"
        return (f"{url}: TLS failed: {exc}; the server certificate must be signed by a CA in {where} "
                'and name the host in the URL (tls_verify = "ca" skips the host name check)')

    # -- searching --------------------------------------------------------------------

    def _base_and_filter(self, user: Any) -> tuple[str, str]:
        """The search base and filter, with a private directory's user put in safely."""
        base, flt = self.config.base_dn, self.config.filter
        if user is None:
            return base, flt
        values: dict[str, str] = {}
        for key in ("login", "email"):
            if "{" + key + "}" not in base + flt:
                continue
            value = str(user_value(user, key) or "")
            if not value:
                raise ConnectorError(f"this private directory's base_dn or filter uses {{{key}}} but the user has no {key}")
            values[key] = value
        flt = _substitute(flt, {k: ldap_conv.escape_filter_chars(v) for k, v in values.items()})
        base = _substitute(base, {k: ldap_dn.escape_rdn(v) for k, v in values.items()})
        return base, flt

    def _search(self, conn: ldap3.Connection, url: str, base: str, flt: str, *, attributes: Any,
                page_size: int, cookie: Any, read: int) -> tuple[list[dict[str, Any]], Any]:
        """One page of the search: its entries and the cookie for the next (None when done)."""
        scope = _SCOPES[self.config.scope]
        try:
            conn.search(base, flt, search_scope=scope, attributes=attributes,
                        paged_size=page_size or None, paged_cookie=cookie)
        except lx.LDAPInvalidFilterError as exc:
            raise ConnectorError(
                f'filter "{flt}" is not a valid LDAP filter ({exc}); see RFC 4515, e.g. "(&(objectClass=person)(telephoneNumber=*))"'
            ) from exc
        except lx.LDAPCommunicationError as exc:
            raise NotReady(f"{url}: {_communication(exc, self.config.timeout)} after {read:,} entries; the previous contacts are kept") from exc
        except lx.LDAPInvalidDnError as exc:
            raise ConnectorError(f'base_dn "{base}" is not a valid DN: {exc}') from exc
        result = conn.result
        code = result.get("result")
        if code == _SIZE_LIMIT_EXCEEDED:
            if page_size:
                raise ConnectorError(
                    f"{url}: the server stopped at its size limit after {read + _entries(conn):,} entries although the "
                    f"search was paged (page_size = {page_size}): its total limit for paged searches is reached; "
                    "raise it on the server (slapd: size.prtotal, AD: MaxResultSetSize)")
            raise ConnectorError(
                f"{url}: the server stopped at its size limit after {_entries(conn):,} entries; "
                "set page_size (e.g. 500) so that the search is paged and reads every entry")
        if code == _ADMIN_LIMIT_EXCEEDED and page_size:
            raise ConnectorError(
                f"{url}: the server refused page_size = {page_size} ({_describe(result)}); "
                "set page_size to at most the server's page limit (Active Directory: 1000)")
        if code == _NO_SUCH_OBJECT:
            raise ConnectorError(f'{url}: base_dn "{base}" does not exist on the server ({_describe(result)}); check base_dn')
        if code == _INSUFFICIENT_ACCESS:
            raise ConnectorError(f"{url}: {self.config.bind_dn or 'anonymous'} may not search {base} ({_describe(result)})")
        if code in (_BUSY, _UNAVAILABLE, _TIME_LIMIT_EXCEEDED):
            raise NotReady(f"{url}: {_describe(result)} after {read:,} entries")
        if code != 0:
            raise ConnectorError(f'{url}: search of {base} with filter "{flt}" failed: {_describe(result)}')
        entries = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
        next_cookie = None
        if page_size:
            control = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
            next_cookie = (control or {}).get("value", {}).get("cookie") or None
        return entries, next_cookie

    def _produce(self, emit: Callable[[Sequence[SourceRecord]], None], user: Any) -> None:
        conn, url = self._connect()
        try:
            base, flt = self._base_and_filter(user)
            attributes = list(self.config.attributes) or [ldap3.ALL_ATTRIBUTES]
            # Asked for by name even with "*": entryUUID is an operational attribute.
            if self.config.id_attribute and self._id not in self._wanted:
                attributes.append(self.config.id_attribute)
            page_size, limit = self.config.page_size, self.config.size_limit
            cookie, read, pages = None, 0, 0
            while True:
                entries, cookie = self._search(conn, url, base, flt, attributes=attributes,
                                               page_size=page_size, cookie=cookie, read=read)
                read += len(entries)
                pages += 1
                if limit and read > limit:
                    raise ConnectorError(
                        f"more than size_limit = {limit:,} entries match {flt} under {base}; "
                        "raise size_limit (or 0 for no cap), or narrow the filter")
                emit([self.record(entry) for entry in entries])
                if cookie is None:
                    break
            self.logger.info("%s: read %d entries in %d page(s) from %s", self.name, read, pages, url)
        finally:
            _close(conn)

    def _count(self) -> str:
        conn, url = self._connect()
        try:
            base, flt = self.config.base_dn, self.config.filter
            who = self.config.bind_dn or "anonymous"
            if any("{" + key + "}" in base + flt for key in ("login", "email")):
                return (f"{url}: bound as {who}; base_dn and filter depend on the user ({{login}}, {{email}}): "
                        "they are checked when the directory synchronizes its users")
            page_size = self.config.page_size
            cookie, read = None, 0
            while True:
                # "1.1" asks for no attributes: only DNs travel.
                entries, cookie = self._search(conn, url, base, flt, attributes=["1.1"],
                                               page_size=page_size, cookie=cookie, read=read)
                read += len(entries)
                if cookie is None:
                    break
            return f"{url}: bound as {who}; {read:,} entries match {flt} under {base}"
        finally:
            _close(conn)

    # -- entries to records -----------------------------------------------------------

    def record(self, entry: Mapping[str, Any]) -> SourceRecord:
        """A ``SourceRecord`` from one ldap3 search entry (its DN and raw attribute values)."""
        dn = entry["dn"]
        raw: Mapping[str, list[bytes]] = entry.get("raw_attributes") or {}
        fields: dict[str, Any] = {"dn": dn}
        record_id: str | None = None
        plans = self._plans
        seen: list[str] = []
        for name, values in raw.items():
            plan = plans.get(name)
            if plan is None:
                plan = plans[name] = self._plan(name)
            field, key, binary = plan
            if not binary and len(values) == 1:
                try:  # the common case: one text value
                    value: Any = values[0].decode("utf-8")
                except UnicodeDecodeError:
                    value = self._convert(dn, field, key, values)
            else:
                value = self._convert(dn, field, key, values)
            fields[field] = value
            seen.append(key)
            if key == self._id:
                record_id = value if isinstance(value, str) else None
        if self._missing:
            for key in self._missing.keys() - set(seen):
                fields[self._missing[key]] = None
        if self._id and record_id is None:
            self.logger.warning("%s: entry %s has no usable %s; its DN is used as its id", self.name, dn, self.config.id_attribute)
        return SourceRecord(id=record_id or dn, fields=fields)

    def _plan(self, name: str) -> tuple[str, str, bool]:
        """How to read attribute ``name``: the field name, its lower-case base name, whether it is binary."""
        key = name.lower().split(";", 1)[0]  # "member;range=0-1499" is "member"
        field = self._wanted.get(key, name)
        if self.config.lower_case_names:
            field = field.lower()
        return field, key, key in self._binary

    def _convert(self, dn: str, field: str, key: str, values: Sequence[bytes]) -> Any:
        out: list[Any] = []
        for raw in values:
            if key in self._binary:
                if key in GUID_ATTRIBUTES:
                    if len(raw) != 16:
                        self.logger.warning("%s: entry %s: %s is %d bytes, not a 16-byte GUID; ignored", self.name, dn, field, len(raw))
                        continue
                    out.append(format_guid(raw))
                elif key in SID_ATTRIBUTES:
                    try:
                        out.append(format_sid(raw))
                    except (ValueError, IndexError, struct.error) as exc:
                        self.logger.warning("%s: entry %s: %s is not a security identifier (%s); ignored", self.name, dn, field, exc)
                else:
                    out.append(bytes(raw))
                continue
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                # Handed over as bytes: the kernel's mapping reports the record if the
                # field is mapped to text; the log says how to read it on purpose.
                self.logger.warning(
                    "%s: entry %s: %s holds %d bytes that are not UTF-8 text; add it to binary_attributes to read it as binary",
                    self.name, dn, field, len(raw))
                out.append(bytes(raw))
        if not out:
            return None
        return out[0] if len(out) == 1 else out


class ActiveDirectoryConnector(LdapConnector):
    """Active Directory: LDAP with AD's filter, attributes, objectGUID ids and page size (guide 7.2.2)."""

    type_name = "active_directory"
    Config = ActiveDirectoryConfig
    description = "Active Directory (users and contacts, objectGUID ids, thumbnailPhoto)"
    default_fields: ClassVar[Mapping[str, str]] = AD_DEFAULT_FIELDS


# -- helpers ---------------------------------------------------------------------------

_STUB_DN = b"\x00twp-parsed-entry"


def _ber_length(data: bytes, i: int) -> tuple[int, int]:
    """The BER definite length at ``data[i]`` and the index after it."""
    n = data[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    return int.from_bytes(data[i + 1:i + 1 + k], "big"), i + 1 + k


def parse_search_entry(data: bytes) -> tuple[int, bytes, list[tuple[bytes, list[bytes]]]] | None:
    """(message id, DN, [(attribute, values)]) of an LDAPMessage carrying a SearchResultEntry (RFC 4511 4.5.2).

    None for any other message, or an entry with controls: ldap3 decodes those.
    """
    try:
        if data[0] != 0x30:
            return None
        _, i = _ber_length(data, 1)
        if data[i] != 0x02:
            return None
        n, i = _ber_length(data, i + 1)
        message_id = int.from_bytes(data[i:i + n], "big", signed=True)
        i += n
        if data[i] != 0x64:  # [APPLICATION 4] SearchResultEntry
            return None
        n, i = _ber_length(data, i + 1)
        if i + n != len(data) or data[i] != 0x04:  # controls follow, or not an objectName
            return None
        n, i = _ber_length(data, i + 1)
        dn = data[i:i + n]
        i += n
        if data[i] != 0x30:
            return None
        n, i = _ber_length(data, i + 1)
        end = i + n
        attributes = []
        # Lengths below 128 take one byte (the short form): read inline, the hot path.
        while i < end:
            if data[i] != 0x30:
                return None
            n = data[i + 1]
            if n < 0x80:
                i += 2
            else:
                n, i = _ber_length(data, i + 1)
            next_attribute = i + n
            if data[i] != 0x04:
                return None
            n = data[i + 1]
            if n < 0x80:
                i += 2
            else:
                n, i = _ber_length(data, i + 1)
            name = data[i:i + n]
            i += n
            if data[i] != 0x31:
                return None
            n = data[i + 1]
            if n < 0x80:
                i += 2
            else:
                n, i = _ber_length(data, i + 1)
            end_values = i + n
            values = []
            while i < end_values:
                if data[i] != 0x04:
                    return None
                n = data[i + 1]
                if n < 0x80:
                    i += 2
                else:
                    n, i = _ber_length(data, i + 1)
                values.append(data[i:i + n])
                i += n
            attributes.append((name, values))
            i = next_attribute
        return message_id, dn, attributes
    except IndexError:
        return None


def _stub(message_id: int) -> bytes:
    """A tiny SearchResultEntry with the same message id, standing for an entry already parsed."""
    mid = message_id.to_bytes(max(1, (message_id.bit_length() + 8) // 8), "big", signed=True)
    op = b"\x04" + bytes([len(_STUB_DN)]) + _STUB_DN + b"\x30\x00"
    body = b"\x02" + bytes([len(mid)]) + mid + b"\x64" + bytes([len(op)]) + op
    return b"\x30" + bytes([len(body)]) + body


def _decode_entries_raw(conn: ldap3.Connection) -> None:
    """Make this connection decode search entries with ``parse_search_entry``.

    ldap3 decodes every message with a generic BER decoder, then builds a formatted
    copy of every attribute, which the connector never reads; together they cost three
    quarters of a sync.  Here each received SearchResultEntry is parsed once, straight
    to its DN and raw values, and ldap3 is handed a tiny stand-in with the same message
    id, so that its own bookkeeping (message ids, the final SearchResultDone and its
    paging cookie) is unchanged.  Anything else (other messages, entries with controls)
    takes ldap3's own path.  Only this connection's strategy object is changed.
    """
    strategy = conn.strategy
    receive = getattr(strategy, "receiving", None)
    decode = getattr(strategy, "decode_response_fast", None)
    if receive is None or decode is None or not getattr(conn, "fast_decoder", False):
        return
    parsed: collections.deque[tuple[bytes, list[tuple[bytes, list[bytes]]]]] = collections.deque()

    def receiving() -> list[bytes]:
        messages = []
        for message in receive():
            entry = parse_search_entry(message) if message else None
            if entry is None:
                messages.append(message)
            else:
                parsed.append((entry[1], entry[2]))
                messages.append(_stub(entry[0]))
        return messages

    def decode_response_fast(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("protocolOp") == 4 and message["payload"][0][3] == _STUB_DN:
            dn, attributes = parsed.popleft()
            return {"type": "searchResEntry", "raw_dn": dn, "dn": dn.decode("utf-8", "replace"),
                    "raw_attributes": {name.decode("utf-8", "replace"): values for name, values in attributes},
                    "attributes": {}}
        return decode(message)

    strategy.receiving = receiving
    strategy.decode_response_fast = decode_response_fast


def _entries(conn: ldap3.Connection) -> int:
    return sum(1 for e in conn.response or () if e.get("type") == "searchResEntry")


def _describe(result: Mapping[str, Any]) -> str:
    text = f"{result.get('description', 'error')} (code {result.get('result')})"
    message = (result.get("message") or "").strip()
    return f"{text}: {message}" if message else text


def _communication(exc: Exception, timeout: float) -> str:
    text = str(exc)
    if "timed out" in text or isinstance(exc, lx.LDAPResponseTimeoutError):
        return f"no answer within {float(timeout):g} s (timeout)"
    if "refused" in text:
        return "connection refused (is the server running, is the port right?)"
    if isinstance(exc, lx.LDAPSessionTerminatedByServerError) or "closed" in text or "reset" in text:
        return f"the server closed the connection ({text})"
    return text


def _is_tls_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("ssl", "certificate", "tls"))


def _close(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


def _substitute(template: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template
