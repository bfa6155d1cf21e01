"""Users import (guide 7.2): one way, from an LDAP server, an Active Directory or a PBX's subscriber list into the users of one domain.

An *import* is a stored definition (``user_imports``): the target domain, the source and
its settings, the field mapping (a preset per source, overridable), the sync type, the
groups imported users join, a schedule.  A *run* reads every entry of the source, checks
and maps each one, then writes the difference in ONE transaction and keeps a report
(``user_import_runs``) naming every entry it created, updated, disabled, deleted or
ignored, and why.

- LDAP and Active Directory are read through the ``ldap`` / ``active_directory``
  directory connectors of the twp-ldap plugin (paged search, LDAPS / StartTLS, time-outs,
  the same error messages), configured from the import's settings with an import preset:
  attributes ``uid`` / ``sAMAccountName``, ``givenName``, ``sn``, ``mail``,
  ``telephoneNumber``, ``mobile``; AD's ``userAccountControl`` ACCOUNTDISABLE bit (2)
  disables the user.  The AD default filter selects user accounts *including* disabled
  ones, so that a disabled account disables its TWP user.
- A PBX is read through the optional ``PbxDriver.subscribers()`` operation of the PBX
  link serving the import's domain (the ``pbxsim`` driver of the CSTA toolkit, ``twp-csta``, implements it).
- The match key is the login.  Users an import creates are linked to it
  (``user_import_links``, with the source's id of the entry): only those are ever
  disabled (Insert-update-disable) or deleted (Full) when their entry leaves the source.
  A user created by hand, or by another import, is never disabled or deleted; a manual
  user whose login an entry gives is updated (that is what the Update sync type is for).
- Each imported user gets a device in the domain from the mapped phone number.  With
  ``number_form = "extension"`` (the default) the device number is the number's last
  *internal length* digits (the domain's dialing plan, guide 5): ``+33 1 40 00 12 34``
  becomes ``1234`` with an internal length of 4, the form CSTA PBXs give their
  extensions; ``"as_is"`` keeps the whole number (digits and a leading +) for PBXs that
  name devices by their full number.  Entries without a phone number are ignored.
- A source that cannot be read (down, time-out, refused credentials, bad base DN) fails
  the run before anything is written: nothing changes.  Malformed entries (no login,
  control characters, over-long values, characters no login may hold, duplicates) are
  ignored, counted and named; a malformed entry whose login is usable still protects
  its user from being disabled or deleted.
- Seats: imported users join the import's groups one transaction at a time; a user
  whose membership would exceed an application's quota (guide 7.4.1) is not added to
  that group and the report says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import rights
from twpcore.clock import next_daily
from twpcore.cluster.jobs import LOCAL_JOBS, Jobs, run_once
from twpcore.config import Config, LimitsConfig
from twpcore.dialing import DialingPlans
from twpcore.events import Event, EventBus
from twpcore.instances import ContextFactory
from twpcore.kinds import AuthFailed, ConnectorError, Kind, NotReady, NotSupported, SourceRecord
from twpcore.plugins import PluginManager, describe_exception
from twpcore.schema import ConfigErrors, structure
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.telephony.service import TelephonyService

log = logging.getLogger(__name__)

SOURCES = ("ldap", "active_directory", "pbx")
SYNC_TYPES = ("full", "insert_update_disable", "insert_update", "update")
SCHEDULES = ("manual", "interval", "daily")
SECURITY = ("none", "starttls", "ldaps")
TLS_VERIFY = ("full", "ca", "none")
NUMBER_FORMS = ("extension", "as_is")
USER_FIELDS = ("login", "first_name", "last_name", "email", "phone", "mobile")

#: Guide 7.2.1 / 7.2.2: "all standard fields are pre-filled".  TWP field -> source attribute.
PRESETS: dict[str, dict[str, str]] = {
    "ldap": {"login": "uid", "first_name": "givenName", "last_name": "sn", "email": "mail", "phone": "telephoneNumber", "mobile": "mobile"},
    "active_directory": {"login": "sAMAccountName", "first_name": "givenName", "last_name": "sn", "email": "mail",
                         "phone": "telephoneNumber", "mobile": "mobile"},
    "pbx": {"login": "number", "first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "number", "mobile": "mobile"},
}
DEFAULT_FILTERS = {"ldap": "(objectClass=inetOrgPerson)", "active_directory": "(sAMAccountType=805306368)"}
"""AD: every user account (SAM_NORMAL_USER_ACCOUNT), disabled ones included, so that they disable their TWP user."""
DEFAULT_PAGE_SIZE = {"ldap": 500, "active_directory": 1000}
ACCOUNTDISABLE = 0x2
USER_ACCOUNT_CONTROL = "userAccountControl"

LIMITS = {"login": 200, "first_name": 200, "last_name": 200, "email": 320, "mobile": 64}
MAX_RAW = 1000
"""Longest source value looked at; longer ones are reported by length only."""
MAX_REPORTED = 5000
"""Entries kept in a run report; the counts are always exact."""
FORBIDDEN_LOGIN_CHARS = set('"/\\[]:;|=,+*?<>')
"""Characters no Windows or TWP login holds (Active Directory refuses them in sAMAccountName)."""
ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,253})|\[[0-9A-Fa-f:.]{2,45}\]")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
MOBILE = re.compile(r"\+?[0-9 ().-]{2,63}")


class UserImportError(Exception):
    """A users-import request cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


class SourceFailed(Exception):
    """The source could not be read: the run fails and nothing is written."""


# -- definitions -------------------------------------------------------------------

def _text(data: dict[str, Any], key: str, limit: int, *, required: bool = False, secret: bool = False) -> str:
    value = data.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserImportError(
            400, "bad_request", f"user import: {key}: expected a string, got {'a value of another type' if secret else repr(value)[:60]}", key
        )
    if len(value) > limit:
        raise UserImportError(400, "bad_request", f"user import: {key}: at most {limit} characters, got {len(value)}", key)
    if any(ord(c) < 32 for c in value):
        raise UserImportError(400, "bad_request", f"user import: {key} contains control characters", key)
    if required and not value.strip():
        raise UserImportError(400, "bad_request", f"user import: {key} is required", key)
    return value


def _choice(data: dict[str, Any], key: str, choices: Iterable[str], default: str) -> str:
    value = data.get(key, default)
    if value is None:
        value = default
    if value not in choices:
        raise UserImportError(400, "bad_request", f"user import: {key}: expected one of {', '.join(choices)}, got {str(value)[:60]!r}", key)
    return value


def _int(data: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise UserImportError(400, "bad_request", f"user import: {key}: expected an integer {lo}-{hi}, got {str(value)[:60]!r}", key)
    return value


def check_definition(conn: sa.Connection, config: Config, who: Any, data: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """Check an import's settings (create when ``existing`` is None); return the column values to write.

    ``data`` holds the fields the admin sent; on update they are merged over the stored
    row, and the whole is checked again.  The password is write-only: absent keeps it,
    ``null`` clears it.
    """
    merged = {**(existing or {}), **data}
    values: dict[str, Any] = {}
    values["name"] = _text(merged, "name", 200, required=True).strip()
    values["description"] = _text(merged, "description", 1000)
    source = merged.get("source")
    if source not in SOURCES:
        raise UserImportError(
            400, "bad_request", f"user import: source: expected one of {', '.join(SOURCES)} (guide 7.2), got {str(source)[:60]!r}", "source"
        )
    if existing is not None and "source" in data and data["source"] != existing["source"]:
        raise UserImportError(400, "bad_request", "user import: the source type cannot be changed; create another import", "source")
    values["source"] = source
    values["sync_type"] = _choice(merged, "sync_type", SYNC_TYPES, "insert_update")
    values["number_form"] = _choice(merged, "number_form", NUMBER_FORMS, "extension")
    values["enabled"] = merged.get("enabled", True)
    if not isinstance(values["enabled"], bool):
        raise UserImportError(400, "bad_request", "user import: enabled: expected true or false", "enabled")

    # Source settings.
    values["security"] = _choice(merged, "security", SECURITY, "none")
    values["tls_verify"] = _choice(merged, "tls_verify", TLS_VERIFY, "full")
    for key, limit in (("host", 255), ("bind_dn", 1000), ("base_dn", 1000), ("filter", 4000), ("link", 200), ("ca_file", 1000)):
        values[key] = _text(merged, key, limit).strip()
    if "ca_file" in data and values["ca_file"] != (existing or {}).get("ca_file", "") and not getattr(who, "super_user", False):
        # A path on the server: only a super user, who administers the server itself, names one.
        raise UserImportError(403, "forbidden", "user import: only super users may set ca_file (a file on the server); ask one to set it", "ca_file")
    values["port"] = _int(merged, "port", 1, 65535)
    values["page_size"] = _int(merged, "page_size", 0, 100_000)
    if "password" in data:
        values["password"] = None if data["password"] in (None, "") else _text(data, "password", 1024, secret=True)
    if source in ("ldap", "active_directory"):
        if not HOST.fullmatch(values["host"]):
            raise UserImportError(
                400,
                "bad_request",
                f"user import: host: expected the LDAP server's name or IP address (such as dc1.corp.example.com), got {values['host'][:80]!r}",
                "host",
            )
        if not values["base_dn"]:
            raise UserImportError(
                400, "bad_request", 'user import: base_dn is required (where the search starts, such as "ou=people,dc=example,dc=com")', "base_dn"
            )
        flt = values["filter"]
        if flt and not (flt.startswith("(") and flt.endswith(")") and flt.count("(") == flt.count(")")):
            raise UserImportError(
                400,
                "bad_request",
                f"user import: filter: expected an LDAP filter in parentheses such as {DEFAULT_FILTERS[source]}, got {flt[:80]!r}",
                "filter",
            )
    else:
        if not values["link"]:
            raise UserImportError(
                400, "bad_request", "user import: link is required for a PBX import (the name of a [pbx.links.<name>] of the domain)", "link"
            )

    fields = merged.get("fields") or {}
    if not isinstance(fields, dict):
        raise UserImportError(400, "bad_request", "user import: fields: expected an object {TWP field: source attribute}", "fields")
    for key, attr in fields.items():
        if key not in USER_FIELDS:
            raise UserImportError(
                400, "bad_request", f"user import: fields: unknown TWP field {key!r}; fields: {', '.join(USER_FIELDS)}", f"fields.{key}"
            )
        if attr in (None, "") and key not in ("login", "phone"):
            continue
        if not isinstance(attr, str) or not ATTRIBUTE.fullmatch(attr):
            raise UserImportError(
                400,
                "bad_request",
                f"user import: fields.{key}: expected an attribute name (letters, digits, -), got {str(attr)[:60]!r}",
                f"fields.{key}",
            )
    values["fields"] = fields or None

    groups = merged.get("group_ids") or []
    if not isinstance(groups, list) or not all(isinstance(g, int) and not isinstance(g, bool) for g in groups) or len(groups) > 100:
        raise UserImportError(400, "bad_request", "user import: group_ids: expected a list of at most 100 group ids", "group_ids")
    values["group_ids"] = sorted(set(groups)) or None

    schedule = _choice(merged, "schedule", SCHEDULES, "manual")
    values["schedule"] = schedule
    values["every"] = _int(merged, "every", 1, 7 * 86400)
    at = merged.get("at")
    if at is not None and not (isinstance(at, str) and re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", at)):
        raise UserImportError(400, "bad_request", f"user import: at: expected HH:MM (24 h), got {str(at)[:20]!r}", "at")
    values["at"] = at
    if schedule == "interval" and values["every"] is None:
        raise UserImportError(400, "bad_request", "user import: schedule interval needs every (seconds between two runs, such as 3600)", "every")
    if schedule == "daily" and at is None:
        raise UserImportError(400, "bad_request", 'user import: schedule daily needs at (the time of day, such as "02:30")', "at")

    if conn is not None:
        domain_id = merged["domain_id"]
        if source == "pbx" and (existing is None or values["link"] != existing.get("link")):
            serving = links_serving(conn, config, domain_id)
            if values["link"] not in serving:
                # The same answer whether the link serves another company or does not exist.
                raise UserImportError(422, "link_not_in_domain", f'user import: link: no PBX link named "{values["link"][:80]}" serves domain '
                                      f'{domain_id}; links of this domain: {", ".join(serving) or "none"} (a [pbx.links.<name>] whose '
                                      "company and domain are this domain's, added by the server's operator)", "link")
        for gid in values["group_ids"] or ():
            row = conn.execute(sa.select(t.groups.c.domain_id).where(t.groups.c.id == gid)).one_or_none()
            if row is None or row.domain_id != domain_id:
                raise UserImportError(
                    404,
                    "not_found",
                    f"user import: group {gid} not found in domain {domain_id}; imported users can only join groups of the import's domain",
                    "group_ids",
                )
    return values


def links_serving(conn: sa.Connection, config: Config, domain_id: int) -> list[str]:
    """Names of the ``[pbx.links.<name>]`` whose ``company`` and ``domain`` name this domain (as the telephony service reads them)."""
    row = conn.execute(sa.select(t.domains.c.name, t.companies.c.name.label("company"))
                       .join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.id == domain_id)).one_or_none()
    if row is None:
        return []
    out = []
    for spec in config.instances_of(Kind.PBX_DRIVER):
        if spec.domain != row.name or (spec.company is not None and spec.company != row.company):
            continue
        if spec.company is None:  # a domain name alone serves only when no other company has a domain of that name
            n = conn.execute(sa.select(sa.func.count()).select_from(t.domains).where(t.domains.c.name == spec.domain)).scalar_one()
            if n != 1:
                continue
        out.append(spec.name)
    return sorted(out)


def present(row: dict[str, Any]) -> dict[str, Any]:
    """An import as the admin API shows it: the password never, only whether it is set."""
    out = {k: v for k, v in row.items() if k not in ("password", "created_at")}
    out["password_set"] = bool(row.get("password"))
    out["fields"] = row.get("fields") or {}
    out["group_ids"] = row.get("group_ids") or []
    out["mapping"] = {**PRESETS[row["source"]], **(row.get("fields") or {})}
    created = row.get("created_at")
    if isinstance(created, dt.datetime):
        out["created_at"] = (created if created.tzinfo else created.replace(tzinfo=dt.UTC)).isoformat()
    return out


def definition_select() -> sa.Select:
    return sa.select(t.user_imports, t.domains.c.company_id).join(t.domains, t.domains.c.id == t.user_imports.c.domain_id)


def load_definition(conn: sa.Connection, import_id: int) -> dict[str, Any] | None:
    row = conn.execute(definition_select().where(t.user_imports.c.id == import_id)).one_or_none()
    return None if row is None else dict(row._mapping)


# -- mapping entries ---------------------------------------------------------------

@attrs.frozen
class Candidate:
    """One source entry that can become (or update) a user."""

    entry: str
    login: str
    values: dict[str, str]
    number: str
    disabled: bool | None
    """True/False when the source says (AD's ACCOUNTDISABLE bit); None when it does not."""


@attrs.define(eq=False)
class RunReport:
    """The outcome of one run, as kept in ``user_import_runs`` and answered by the API."""

    import_id: int
    name: str
    trigger: str
    dry_run: bool = False
    started_at: float = attrs.field(factory=time.time)
    id: int | None = None
    status: str = "running"
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    disabled: int = 0
    deleted: int = 0
    ignored: int = 0
    entries: list[dict[str, Any]] = attrs.field(factory=list)
    error: str | None = None
    finished_at: float | None = None

    def add(self, action: str, entry: str, login: str | None, reason: str = "") -> None:
        setattr(self, action, getattr(self, action) + 1)
        self.note(action, entry, login, reason)

    def note(self, action: str, entry: str, login: str | None, reason: str = "") -> None:
        if len(self.entries) < MAX_REPORTED:
            item: dict[str, Any] = {"action": action, "entry": _shown(entry, 300), "login": None if login is None else _shown(login, 120)}
            if reason:
                item["reason"] = reason
            self.entries.append(item)

    def as_json(self) -> dict[str, Any]:
        total = self.created + self.updated + self.disabled + self.deleted + self.ignored
        return {
            "id": self.id, "import_id": self.import_id, "import": self.name, "trigger": self.trigger, "dry_run": self.dry_run,
            "status": self.status, "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "records": self.records, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "disabled": self.disabled, "deleted": self.deleted, "ignored": self.ignored, "entries": self.entries,
            "entries_truncated": max(0, total - sum(1 for e in self.entries if e["action"] != "unchanged" and e["action"] != "note")),
            "error": self.error,
        }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _shown(value: str, limit: int) -> str:
    """A source value safe to show: control characters escaped, long values cut with their length."""
    text = value.encode("unicode_escape").decode("ascii") if any(ord(c) < 32 or ord(c) == 127 for c in value) else value
    return text if len(text) <= limit else f"{text[:limit]}… ({len(value)} characters)"


class EntryProblem(Exception):
    """An entry that cannot be imported; the message is the reason shown in the report."""


def _value(fields: dict[str, Any], attr: str | None) -> str:
    if not attr:
        return ""
    value = fields.get(attr.lower())
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        raise EntryProblem(f"{attr} is binary ({len(value)} bytes), not text; map another attribute")
    if not isinstance(value, str):
        value = str(value)
    if len(value) > MAX_RAW:
        raise EntryProblem(f"{attr} is {len(value)} characters long; no user field holds that much")
    return value.strip()


def _check_text(name: str, attr: str, value: str, limit: int) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise EntryProblem(f"{name} ({attr}) contains control characters")
    if len(value) > limit:
        raise EntryProblem(f"{name} ({attr}) is {len(value)} characters, at most {limit}")


def device_number(raw: str, form: str, internal_length: int) -> str:
    """The device number a mapped phone number gives (see the module docstring); '' if none."""
    digits = "".join(c for c in raw if c.isdigit())
    if not digits:
        return ""
    if form == "as_is":
        return ("+" if raw.lstrip().startswith("+") else "") + digits
    return digits[-internal_length:] if len(digits) > internal_length else digits


def map_entries(records: Iterable[SourceRecord], mapping: dict[str, str], source: str, number_form: str, internal_length: int,
                report: RunReport) -> tuple[list[Candidate], set[str]]:
    """Check and map every record; return the candidates and the logins of malformed entries (kept, never removed)."""
    out: list[Candidate] = []
    kept: set[str] = set()
    logins: dict[str, str] = {}
    numbers: dict[str, str] = {}
    for rec in records:
        report.records += 1
        entry = str(rec.id)
        fields = {str(k).lower(): v for k, v in rec.fields.items()}
        login: str | None = None
        try:
            login = _value(fields, mapping.get("login"))
            if not login:
                raise EntryProblem(f"no login: {mapping.get('login')} is empty")
            _check_text("login", mapping["login"], login, LIMITS["login"])
            bad = sorted(set(login) & FORBIDDEN_LOGIN_CHARS)
            if bad:
                raise EntryProblem(f"login contains characters no login may hold: {' '.join(bad)}")
            key = login.casefold()
            if key in logins:
                raise EntryProblem(f"duplicate login: entry {_shown(logins[key], 200)} gives it too")
            logins[key] = entry
            phone = _value(fields, mapping.get("phone"))
            number = device_number(phone, number_form, internal_length) if phone else ""
            if not number:
                login_ok = login
                login = None  # no phone: not a user of this import (guide 7.2.3)
                report.add(
                    "ignored", entry, login_ok, f"no phone number ({mapping.get('phone')} is {'empty' if not phone else repr(_shown(phone, 40))})"
                )
                continue
            if len(number) > 64:
                raise EntryProblem(f"phone number ({mapping.get('phone')}) has {len(number)} digits, at most 64")
            if number in numbers:
                raise EntryProblem(f"number {number} is also the number of entry {_shown(numbers[number], 200)}")
            numbers[number] = entry
            values: dict[str, str] = {}
            for name in ("first_name", "last_name", "email", "mobile"):
                attr = mapping.get(name) or ""
                value = _value(fields, attr)
                _check_text(name, attr, value, LIMITS[name])
                if name == "email" and value and not EMAIL.fullmatch(value):
                    raise EntryProblem(f"email ({attr}) {_shown(value, 80)!r} is not an address such as name@example.com")
                if name == "mobile" and value and not MOBILE.fullmatch(value):
                    raise EntryProblem(f"mobile ({attr}) {_shown(value, 80)!r} is not a phone number")
                values[name] = value
            disabled: bool | None = None
            if source == "active_directory":
                uac = _value(fields, USER_ACCOUNT_CONTROL)
                if uac:
                    if not uac.lstrip("-").isdigit():
                        raise EntryProblem(f"userAccountControl {_shown(uac, 40)!r} is not a number")
                    disabled = bool(int(uac) & ACCOUNTDISABLE)
            out.append(Candidate(entry, login, values, number, disabled))
        except EntryProblem as exc:
            if login and not any(ord(c) < 32 for c in login) and len(login) <= LIMITS["login"]:
                kept.add(login)
            report.add("ignored", entry, login or None, str(exc))
    return out, kept


def split_name(name: str) -> tuple[str, str]:
    """A PBX subscriber's name ("Alice Martin") as (first name, last name)."""
    parts = name.strip().split(None, 1)
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", name.strip()


# -- the service -------------------------------------------------------------------

class UserImportService:
    """The kernel's users-import service (``kernel.user_imports``): runs imports on demand and on schedule."""

    jobs: Jobs = LOCAL_JOBS
    """Whether this process runs a scheduled import now: always alone, one node at a time in a cluster (``Kernel`` sets it)."""

    def __init__(self, limits: LimitsConfig, plugins: PluginManager, contexts: ContextFactory, dialing_plans: DialingPlans,
                 events: EventBus, telephony: TelephonyService):
        self.limits = limits
        """``users_per_domain`` bounds what an import may create."""
        self.plugins = plugins
        """The directory connector types an import reads through."""
        self.contexts = contexts
        self.dialing_plans = dialing_plans
        self.events = events
        """``admin.<kind>.imported`` events are published here."""
        self.telephony = telephony
        """PBX links, for imports whose source is a PBX's subscriber list."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): definitions, runs, the users and devices they write."""
        self.locks: dict[int, asyncio.Lock] = {}
        self.tick = 30.0
        """Longest sleep of the scheduler between two looks at the schedules (seconds)."""
        self.read_timeout = 3600.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def _db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the users-import service has no store: the kernel has not started it")
        return self.store

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._scheduler(), name="user-import-scheduler")

    async def stop(self) -> None:
        tasks = [*self._running, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def changed(self) -> None:
        """A definition changed: look at the schedules again now."""
        self._wake.set()

    def is_running(self, import_id: int) -> bool:
        lock = self.locks.get(import_id)
        return lock is not None and lock.locked()

    # -- a run -------------------------------------------------------------------------
    async def run(self, import_id: int, trigger: str = "manual", *, dry_run: bool = False) -> RunReport:
        row = await self._db().run(load_definition, import_id)
        if row is None:
            raise UserImportError(404, "not_found", f"user import {import_id} not found")
        lock = self.locks.setdefault(import_id, asyncio.Lock())
        if lock.locked():
            raise UserImportError(409, "run_in_progress", f"user import {row['name']} is already running; wait for it to finish")
        async with lock:
            report = RunReport(import_id, row["name"], trigger, dry_run)
            report.id = await self._db().run(self._insert_run, report)
            changed = False
            try:
                async with asyncio.timeout(self.read_timeout):
                    records = await self._read(row)
                plan = await self._db().run(self.dialing_plans.get, row["domain_id"])
                mapping = {**PRESETS[row["source"]], **(row.get("fields") or {})}
                candidates, kept = map_entries(records, mapping, row["source"], row["number_form"], plan.settings.internal_length, report)
                changed = await self._db().run(self._apply, row, candidates, kept, report)
                report.status = "ok"
            except asyncio.CancelledError:
                report.status, report.error = "failed", "cancelled (server stopping); nothing changed"
                raise
            except UserImportError as exc:
                report.status, report.error = "failed", f"{exc.detail}; nothing changed"
            except (SourceFailed, ConnectorError) as exc:
                report.status, report.error = "failed", f"{exc}; nothing changed"
            except NotReady as exc:
                report.status, report.error = "failed", f"source not reachable: {exc.reason}; nothing changed"
            except AuthFailed as exc:
                report.status, report.error = "failed", f"credentials refused: {exc or 'authentication failed'}; nothing changed"
            except TimeoutError:
                report.status, report.error = "failed", f"the source was not read within {self.read_timeout:g} s; nothing changed"
            except Exception as exc:
                log.exception("user import %s failed", row["name"])
                report.status, report.error = "failed", f"{describe_exception(exc)}; nothing changed"
            finally:
                report.finished_at = time.time()
                if report.status != "ok":
                    # Counts of a failed run describe nothing that happened.
                    report.created = report.updated = report.unchanged = report.disabled = report.deleted = 0
                    report.entries = [e for e in report.entries if e["action"] == "ignored"]
                try:
                    await asyncio.shield(self._db().run(self._finish_run, report))
                except Exception:
                    log.exception("could not record the report of user import %s", row["name"])
            level = logging.INFO if report.status == "ok" else logging.WARNING
            log.log(level, "user import %s (%s%s): %s, %d entries, %d created, %d updated, %d disabled, %d deleted, %d ignored%s",
                    row["name"], trigger, ", dry run" if dry_run else "", report.status, report.records, report.created, report.updated,
                    report.disabled, report.deleted, report.ignored, f": {report.error}" if report.error else "")
            if changed and not dry_run:
                # Telephony supervises the new devices; the users directory follows the new users.
                for kind in ("user", "device"):
                    self.events.publish(Event(f"admin.{kind}.imported", {"import_id": import_id, "resource": f"{kind}s"},
                                                     row["company_id"], row["domain_id"]))
            return report

    async def _read(self, row: dict[str, Any]) -> list[SourceRecord]:
        if row["source"] == "pbx":
            return await self._read_pbx(row)
        connector = self.connector(row)
        try:
            await connector.setup()
            return [r async for r in connector.records()]
        finally:
            try:
                await connector.close()
            except Exception:
                log.debug("closing the connector of user import %s failed", row["name"], exc_info=True)

    def connector(self, row: dict[str, Any]) -> Any:
        """The ``ldap`` / ``active_directory`` directory connector configured from the import's settings."""
        source = row["source"]
        rec = self.plugins.types[Kind.DIRECTORY_CONNECTOR].get(source)
        if rec is None:
            raise SourceFailed(f"the {source} connector is not installed: install the twp-ldap plugin to import users from "
                               f"{'Active Directory' if source == 'active_directory' else 'LDAP'}")
        mapping = {**PRESETS[source], **(row.get("fields") or {})}
        attributes = sorted({a for a in mapping.values() if a} | ({USER_ACCOUNT_CONTROL} if source == "active_directory" else set()))
        ldaps = row["security"] == "ldaps"
        port = row.get("port") or (636 if ldaps else 389)
        options: dict[str, Any] = {
            "url": f"{'ldaps' if ldaps else 'ldap'}://{row['host']}:{port}",
            "base_dn": row["base_dn"],
            "bind_dn": row["bind_dn"],
            "filter": row["filter"] or DEFAULT_FILTERS[source],
            "attributes": attributes,
            "start_tls": row["security"] == "starttls",
            "tls_verify": row["tls_verify"],
            "ca_file": row.get("ca_file") or "",
            "page_size": row["page_size"] if row.get("page_size") is not None else DEFAULT_PAGE_SIZE[source],
        }
        if row.get("password"):
            options["password"] = row["password"]
        try:
            config = structure(rec.cls.Config, options, source=f"user import {row['name']}", path="settings")
        except ConfigErrors as exc:
            raise SourceFailed("; ".join(str(p) for p in exc.problems)) from None
        ctx = self.contexts(f"user-import:{row['name']}", Kind.DIRECTORY_CONNECTOR, logging.getLogger(f"twp.user_import.{source}"))
        return rec.cls(config, ctx)

    async def _read_pbx(self, row: dict[str, Any]) -> list[SourceRecord]:
        link = self.telephony.links.get(row["link"])
        if link is None or link.domain_id != row["domain_id"]:
            raise SourceFailed(f'no PBX link named "{row["link"]}" serves this domain; set link to the name of a [pbx.links.<name>] '
                               "table whose company and domain are the import's")
        try:
            async with asyncio.timeout(300):
                subscribers = await link.driver.subscribers()
        except NotSupported:
            raise SourceFailed(f'the {link.driver.type_name} driver of PBX link "{link.name}" cannot list the PBX\'s subscribers') from None
        except (NotReady, AuthFailed, ConnectorError):
            raise
        except Exception as exc:  # noqa: BLE001 - a link error (down, time-out, refusal) names itself
            raise SourceFailed(f'PBX link "{link.name}": {exc or "no subscriber list within 300 s"}') from None
        records = []
        for sub in subscribers:
            fields = dict(sub)
            number = str(fields.get("number") or "")
            if "first_name" not in fields and "last_name" not in fields:
                first, last = split_name(str(fields.get("name") or ""))
                fields.update(first_name=first, last_name=last)
            records.append(SourceRecord(id=f"pbx:{_shown(number, 64)}", fields=fields))
        return records

    # -- writing -----------------------------------------------------------------------
    def _apply(self, conn: sa.Connection, row: dict[str, Any], candidates: list[Candidate], kept: set[str], report: RunReport) -> bool:
        """Write the difference in the caller's transaction (a dry run rolls its savepoint back); return whether anything changed."""
        savepoint = conn.begin_nested()
        try:
            changed = self._write(conn, row, candidates, kept, report)
        except BaseException:
            savepoint.rollback()
            raise
        if report.dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
        return changed

    def _write(self, conn: sa.Connection, row: dict[str, Any], candidates: list[Candidate], kept: set[str], report: RunReport) -> bool:
        u, d, links = t.users, t.devices, t.user_import_links
        domain_id, import_id, sync = row["domain_id"], row["id"], row["sync_type"]
        users = {
            r.login: _User(*r)
            for r in conn.execute(
                sa.select(u.c.id, u.c.login, u.c.first_name, u.c.last_name, u.c.email, u.c.mobile, u.c.enabled).where(u.c.domain_id == domain_id)
            )
        }
        login_of = {r.id: r.login for r in users.values()}
        owner: dict[int, tuple[int, Any]] = {}
        for r in conn.execute(sa.select(links, t.user_imports.c.name).join(t.user_imports, t.user_imports.c.id == links.c.import_id)
                              .where(t.user_imports.c.domain_id == domain_id)):
            owner[r.user_id] = (r.import_id, r)
        devices = {
            r.number: _Dev(r.id, r.number, r.user_id)
            for r in conn.execute(sa.select(d.c.id, d.c.number, d.c.user_id).where(d.c.domain_id == domain_id))
        }
        limit = self.limits.users_per_domain
        count = len(users)
        seen: set[int] = {users[login].id for login in kept if login in users}
        members: list[int] = []
        changed = False

        def place_device(user_id: int, number: str, old_number: str) -> None:
            dev = devices.get(number)
            if dev is not None:
                if dev.user_id is None:
                    conn.execute(sa.update(d).where(d.c.id == dev.id).values(user_id=user_id))
                    devices[number] = _Dev(dev.id, number, user_id)
                return
            old = devices.get(old_number) if old_number else None
            if old is not None and old.user_id == user_id:
                conn.execute(sa.update(d).where(d.c.id == old.id).values(number=number))
                devices.pop(old_number, None)
                devices[number] = _Dev(old.id, number, user_id)
            else:
                ident = conn.execute(sa.insert(d).values(domain_id=domain_id, user_id=user_id, number=number).returning(d.c.id)).scalar_one()
                devices[number] = _Dev(ident, number, user_id)

        candidates_by_login: dict[str, list[Candidate]] = {}
        for c in candidates:
            candidates_by_login.setdefault(c.login.casefold(), []).append(c)
        # A renamed entry (AD keeps objectGUID when sAMAccountName changes) is the same user.
        by_external = {r.external_id: uid for uid, (iid, r) in owner.items() if iid == import_id and r.external_id}
        for c in candidates:
            existing = users.get(c.login)
            renamed = ""
            if existing is None and c.entry[:1000] in by_external:
                old_user = next((x for x in users.values() if x.id == by_external[c.entry[:1000]]), None)
                if old_user is not None and old_user.login.casefold() not in candidates_by_login:
                    conn.execute(sa.update(u).where(u.c.id == old_user.id).values(login=c.login))
                    users.pop(old_user.login, None)
                    users[c.login] = existing = attrs.evolve(old_user, login=c.login)
                    login_of[old_user.id] = c.login
                    renamed = f"login (was {_shown(old_user.login, 80)})"
            dev = devices.get(c.number)
            if existing is not None:
                own = owner.get(existing.id)
                if own is not None and own[0] != import_id:
                    report.add("ignored", c.entry, c.login, f"user {_shown(c.login, 80)} belongs to user import {own[1].name!r}")
                    continue
                seen.add(existing.id)
                if dev is not None and dev.user_id not in (None, existing.id):
                    report.add("ignored", c.entry, c.login, f"number {c.number} is the device of user {_shown(login_of.get(dev.user_id, '?'), 80)}")
                    continue
                link = own[1] if own is not None else None
                values: dict[str, str | bool] = dict(c.values)
                if c.disabled is not None:
                    values["enabled"] = not c.disabled
                elif link is not None and link.disabled:
                    values["enabled"] = True  # the import disabled it; the entry is back
                diff = {k: v for k, v in values.items() if getattr(existing, k) != v}
                has_device = dev is not None and dev.user_id == existing.id
                if diff:
                    conn.execute(sa.update(u).where(u.c.id == existing.id).values(**diff))
                if not has_device:
                    place_device(existing.id, c.number, link.number if link is not None else "")
                if link is not None and (link.number != c.number or link.external_id != c.entry[:1000] or link.disabled):
                    conn.execute(
                        sa.update(links).where(links.c.user_id == existing.id).values(number=c.number, external_id=c.entry[:1000], disabled=False)
                    )
                if diff or not has_device or renamed:
                    changed = True
                    why = ", ".join(([renamed] if renamed else []) + sorted(diff) + ([] if has_device else [f"device {c.number}"]))
                    report.add("updated", c.entry, c.login, why)
                else:
                    report.unchanged += 1
                members.append(existing.id)
                continue
            if sync == "update":
                report.add("ignored", c.entry, c.login, "no TWP user has this login; sync type update only updates existing users")
                continue
            if dev is not None and dev.user_id is not None:
                report.add("ignored", c.entry, c.login, f"number {c.number} is the device of user {_shown(login_of.get(dev.user_id, '?'), 80)}")
                continue
            if limit and count >= limit:
                report.add(
                    "ignored", c.entry, c.login, f"domain {domain_id} already has {count} users, the limit is {limit} (limits.users_per_domain)"
                )
                continue
            enabled = not c.disabled if c.disabled is not None else True
            user_id = conn.execute(
                sa.insert(u).values(domain_id=domain_id, login=c.login, **c.values, enabled=enabled).returning(u.c.id)
            ).scalar_one()
            count += 1
            users[c.login] = _User(user_id, c.login, c.values["first_name"], c.values["last_name"], c.values["email"], c.values["mobile"], enabled)
            login_of[user_id] = c.login
            conn.execute(sa.insert(links).values(user_id=user_id, import_id=import_id, external_id=c.entry[:1000], number=c.number))
            place_device(user_id, c.number, "")
            seen.add(user_id)
            members.append(user_id)
            changed = True
            report.add("created", c.entry, c.login, f"device {c.number}")

        # Users this import created whose entry left the source.
        gone = [(uid, r) for uid, (iid, r) in owner.items() if iid == import_id and uid not in seen]
        if not report.records and gone and sync in ("full", "insert_update_disable"):
            # An empty answer is far more often a wrong base DN or filter than a company without staff.
            raise UserImportError(409, "empty_source", f"the source gave no entry at all: this {sync} run would "
                               f"{'delete' if sync == 'full' else 'disable'} the {len(gone)} users this import created; "
                               "check base_dn and filter (or the PBX link), or delete those users by hand")
        if sync == "full" and gone:
            ids = [uid for uid, _ in gone]
            for uid, r in gone:
                report.add("deleted", r.external_id, login_of.get(uid), "no longer in the source (sync type full)")
            for chunk in range(0, len(ids), 500):
                conn.execute(sa.delete(u).where(u.c.id.in_(ids[chunk:chunk + 500])))
            rights.purge_dangling(conn)
            changed = True
        elif sync == "insert_update_disable":
            for uid, r in gone:
                user = users.get(login_of.get(uid, ""))
                if user is not None and user.enabled:
                    conn.execute(sa.update(u).where(u.c.id == uid).values(enabled=False))
                    conn.execute(sa.update(links).where(links.c.user_id == uid).values(disabled=True))
                    report.add("disabled", r.external_id, login_of.get(uid), "no longer in the source (sync type insert_update_disable)")
                    changed = True

        if row.get("group_ids") and members:
            changed = self._join_groups(conn, row, members, login_of, report) or changed
        try:
            # Users enabled again take their seats back: the run must not exceed a quota either.
            rights.enforce_quotas(conn, row["company_id"])
        except rights.RightsError as exc:
            raise UserImportError(409, "quota_exceeded", f"{exc}; the accounts this run enables need those seats") from None
        return changed

    @staticmethod
    def _join_groups(conn: sa.Connection, row: dict[str, Any], members: list[int], login_of: dict[int, str], report: RunReport) -> bool:
        """Put the imported users in the import's groups without exceeding a seat quota (guide 7.4.1)."""
        gm = t.group_members
        company = row["company_id"]
        groups = [
            g
            for g in row["group_ids"]
            if conn.execute(sa.select(t.groups.c.id).where(t.groups.c.id == g, t.groups.c.domain_id == row["domain_id"])).first()
        ]
        wanted: list[tuple[int, int]] = []
        for gid in groups:
            already = set(conn.execute(sa.select(gm.c.user_id).where(gm.c.group_id == gid)).scalars())
            wanted += [(gid, uid) for uid in members if uid not in already]
        if not wanted:
            return False
        try:
            with conn.begin_nested():
                for chunk in range(0, len(wanted), 500):
                    conn.execute(sa.insert(gm), [{"group_id": g, "user_id": u_} for g, u_ in wanted[chunk:chunk + 500]])
                rights.enforce_quotas(conn, company)
            return True
        except rights.RightsError:
            pass
        added = 0
        for gid, uid in wanted:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(gm).values(group_id=gid, user_id=uid))
                    rights.enforce_quotas(conn, company)
                added += 1
            except rights.RightsError as exc:
                report.note("note", f"user:{login_of.get(uid, uid)}", login_of.get(uid), f"not added to group {gid}: {exc}")
        return added > 0

    # -- run records ---------------------------------------------------------------------
    @staticmethod
    def _insert_run(conn: sa.Connection, report: RunReport) -> int:
        return conn.execute(sa.insert(t.user_import_runs).values(
            import_id=report.import_id, trigger=report.trigger, dry_run=report.dry_run, status="running",
            started_at=dt.datetime.fromtimestamp(report.started_at, dt.UTC)).returning(t.user_import_runs.c.id)).scalar_one()

    @staticmethod
    def _finish_run(conn: sa.Connection, report: RunReport) -> None:
        conn.execute(sa.update(t.user_import_runs).where(t.user_import_runs.c.id == report.id).values(
            status=report.status, finished_at=dt.datetime.fromtimestamp(report.finished_at or time.time(), dt.UTC),
            records=report.records, created=report.created, updated=report.updated, unchanged=report.unchanged,
            disabled=report.disabled, deleted=report.deleted, ignored=report.ignored, entries=report.entries or None, error=report.error))

    async def history(self, import_id: int, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        def run(conn: sa.Connection) -> dict[str, Any]:
            r = t.user_import_runs
            total = conn.execute(sa.select(sa.func.count()).select_from(r).where(r.c.import_id == import_id)).scalar_one()
            rows = conn.execute(sa.select(r).where(r.c.import_id == import_id).order_by(r.c.id.desc()).limit(limit).offset(offset)).all()
            return {"items": [run_json(x) for x in rows], "total": total, "limit": limit, "offset": offset}

        return await self._db().run(run)

    # -- the schedule ------------------------------------------------------------------
    async def due(self, now: float | None = None) -> list[tuple[int, str]]:
        """Imports whose scheduled run is due: ``(id, "interval" | "daily")``."""
        now = time.time() if now is None else now

        def run(conn: sa.Connection) -> list[tuple[int, str]]:
            i, r = t.user_imports, t.user_import_runs
            last = {x.import_id: x.started for x in conn.execute(
                sa.select(r.c.import_id, sa.func.max(r.c.started_at).label("started")).where(r.c.trigger.in_(("interval", "daily")))
                .group_by(r.c.import_id))}
            out = []
            for row in conn.execute(
                sa.select(i.c.id, i.c.schedule, i.c.every, i.c.at, i.c.created_at).where(i.c.enabled.is_(True), i.c.schedule != "manual")
            ):
                base = _ts(last.get(row.id)) or _ts(row.created_at) or now
                if row.schedule == "interval" and row.every and base + row.every <= now:
                    out.append((row.id, "interval"))
                elif row.schedule == "daily" and row.at and next_daily(row.at, base + 1) <= now:
                    out.append((row.id, "daily"))
            return out

        return await self._db().run(run)

    async def _scheduler(self) -> None:
        while True:
            try:
                for import_id, trigger in await self.due():
                    if not self.is_running(import_id):
                        task = asyncio.get_running_loop().create_task(self._scheduled(import_id, trigger))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for due user imports failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick)
            except TimeoutError:
                pass

    async def _scheduled(self, import_id: int, trigger: str) -> None:
        await run_once(self.jobs, f"user-import:{import_id}", lambda: self.run(import_id, trigger), expected=UserImportError,
                       log=log, skipped=f"scheduled run of user import {import_id} skipped: %s")


@attrs.frozen
class _Dev:
    id: int
    number: str
    user_id: int | None


@attrs.frozen
class _User:
    id: int
    login: str
    first_name: str
    last_name: str
    email: str
    mobile: str
    enabled: bool


def _ts(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return 0.0


def run_json(r: Any) -> dict[str, Any]:
    def iso(v: Any) -> str | None:
        return None if v is None else (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).isoformat()

    entries = r.entries or []
    total = r.created + r.updated + r.disabled + r.deleted + r.ignored
    return {"id": r.id, "import_id": r.import_id, "trigger": r.trigger, "dry_run": r.dry_run, "status": r.status,
            "started_at": iso(r.started_at), "finished_at": iso(r.finished_at), "records": r.records, "created": r.created,
            "updated": r.updated, "unchanged": r.unchanged, "disabled": r.disabled, "deleted": r.deleted, "ignored": r.ignored,
            "entries": entries, "entries_truncated": max(0, total - sum(1 for e in entries if e.get("action") != "note")), "error": r.error}
