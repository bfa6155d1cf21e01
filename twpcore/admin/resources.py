"""Admin CRUD for every stored object, described once per resource: the rules and the SQL.

A ``Resource`` names its table, its fields (type, limits, secret, searchable...) and how
a row belongs to a company.  From that one description come the list (paged, filtered,
searchable), read, create, update and delete operations here, their tenancy checks, their
audit-log entries and admin events; the HTTP layer (``twpcore.http.resources``) derives
the routes and their OpenAPI schemas from the same description, reads the request, calls
an operation in the store's thread pool and answers.

Tenancy: a super user sees everything; an admin limited to companies sees only rows of
those companies, and any other row answers 404 as if it did not exist.

The operations receive what they need explicitly: the connection, the caller
(``Principal``) and ``AdminDeps`` (the configuration and the parameter definitions).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import passwords, rights
from twpcore.auth import Principal, hash_password, now, revoke_all
from twpcore.config import Config
from twpcore.events import Event
from twpcore.parameters import ParameterError, ParameterRegistry
from twpcore.routing import ApiError, bad_request, not_found
from twpcore.store import schema as t


@attrs.frozen
class AdminDeps:
    """What the admin services need of the running server, handed over by the caller."""

    config: Config
    """Limits (``limits.*``), password rules (``auth``) and the file they come from (``source``), for error texts."""
    parameters: ParameterRegistry
    """Parameter definitions: values are normalized, secret ones hidden."""


BeforeWrite = Callable[[sa.Connection, AdminDeps, Principal, dict[str, Any], Any], None]

_TEXT = r"[^\x00-\x1f]"
"""A character that validate() accepts in any text field."""
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}


@attrs.frozen
class Field:
    name: str
    type: str = "string"
    required: bool = False
    writable: bool = True
    create_only: bool = False
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    pattern_hint: str = ""
    secret: bool = False
    """Write-only: never returned; the output carries ``<name>_set`` instead."""
    hashed: bool = False
    """Stored as an argon2 hash in ``column``."""
    column: str | None = None
    filter: bool = False
    search: bool = False
    ref: str | None = None
    """Resource name the integer points to (checked for existence and tenancy)."""
    description: str = ""

    def text_pattern(self) -> str:
        """The whole value as validate() checks it: no control character, not blank when required, and ``pattern`` when set.

        Anchored at both ends (``pattern`` is matched in full); the end is ``(?![\\s\\S])``, not ``$``,
        which in Python's re also matches before a final newline.
        """
        if self.pattern:
            body = f"(?:{self.pattern})" + ("" if self.required or self.secret else "?")  # an optional field may be empty
        else:
            body = f"{_TEXT}*[^\\s\\x00-\\x1f]{_TEXT}*" if self.required else f"{_TEXT}*"
        return f"^{body}(?![\\s\\S])"

    @property
    def col(self) -> str:
        return self.column or self.name

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": [self.type, "null"] if self.secret else self.type}
        if self.description:
            s["description"] = self.description
        if self.max_length:
            s["maxLength"] = self.max_length
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        if self.type == "string":
            s["pattern"] = self.text_pattern()
        if self.secret:
            s["writeOnly"] = True
            s["description"] = (self.description + "; " if self.description else "") + "null clears it"
        if self.ref:
            s["x-twp-ref"] = self.ref
        return s


@attrs.frozen
class Resource:
    name: str
    """URL segment and plural name (``users``)."""
    singular: str
    table: sa.Table
    fields: tuple[Field, ...]
    tenancy: str
    """``self`` (companies), ``domain`` (domain_id column), ``company`` (company_id column), ``super`` (server-wide)."""
    unique_hint: str = ""
    creatable: bool = True
    updatable: bool = True
    before_write: BeforeWrite | None = None
    """``fn(conn, deps, principal, values, existing_row_or_None)``: extra checks; may add values."""
    after_write: Callable[[sa.Connection, int], None] | None = None
    """``fn(conn, company_id)`` after insert/update/delete in the same transaction (quota checks)."""
    present: Callable[[dict[str, Any], AdminDeps | None], dict[str, Any]] | None = None
    """``fn(out, deps)``: last touch on an output object (hiding secret parameter values)."""
    refreshes_warnings: bool = False
    """A successful create, update or delete changes the server's warnings (the None auth method): the caller refreshes them."""
    check_input: Callable[[AdminDeps, dict[str, Any], Any], None] | None = None
    """``fn(deps, data, existing_row_or_None)`` on the request body before secrets are hashed (password rules)."""
    principal: str | None = None
    """``user`` or ``admin`` when rows are accounts: a new (or cleared) password revokes the account's tokens."""

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def company_column(self) -> sa.ColumnElement[Any]:
        if self.tenancy == "self":
            return self.table.c.id
        if self.tenancy == "domain":
            return t.domains.c.company_id
        if self.tenancy == "company":
            return self.table.c.company_id
        return sa.literal(None)

    def base_select(self) -> sa.Select[Any]:
        sel = sa.select(self.table, self.company_column().label("_company_id"))
        if self.tenancy == "domain":
            sel = sel.select_from(self.table.join(t.domains, t.domains.c.id == self.table.c.domain_id))
        return sel

    def output_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {"id": {"type": "integer"}}
        for f in self.fields:
            if f.secret:
                props[f"{f.name}_set"] = {"type": "boolean", "description": f"whether {f.name} is set (never shown)"}
            else:
                props[f.name] = f.schema()
        return {"type": "object", "properties": props}

    def input_schema(self, create: bool) -> dict[str, Any]:
        fields = [f for f in self.fields if f.writable]
        props = {f.name: f.schema() for f in fields}
        if not create:
            for f in fields:
                if f.create_only:
                    props[f.name] = {**props[f.name], "readOnly": True,
                                     "description": "set when created; cannot be changed after creation (delete and create again)"}
        s: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
        req = [f.name for f in fields if f.required] if create else []
        if req:
            s["required"] = req
        return s


# -- helpers shared by the admin services -------------------------------------------

def iso_utc(value: dt.datetime) -> str:
    """A stored time as ISO 8601 in UTC; SQLite hands back naive UTC values, PostgreSQL aware ones."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def row_out(res: Resource, row: Any, deps: AdminDeps | None = None) -> dict[str, Any]:
    m = dict(row._mapping)
    out: dict[str, Any] = {"id": m["id"]} if "id" in m else {}
    for f in res.fields:
        if f.secret:
            out[f"{f.name}_set"] = bool(m.get(f.col))
        elif f.col in m:
            out[f.name] = m[f.col]
    if "created_at" in m and m["created_at"] is not None:
        out["created_at"] = iso_utc(m["created_at"])
    if res.tenancy != "super":
        out["company_id"] = m.get("_company_id")
    return res.present(out, deps) if res.present else out


def tenancy_filter(res: Resource, who: Principal) -> sa.ColumnElement[bool] | None:
    if who.super_user:
        return None
    if res.tenancy == "super":
        return sa.false()
    return res.company_column().in_(sorted(who.companies) or [-1])


def company_of(conn: sa.Connection, resource: str, ident: int) -> int | None:
    """The company a referenced row belongs to, or None if it does not exist."""
    res = RESOURCES[resource]
    row = conn.execute(res.base_select().where(res.table.c.id == ident)).one_or_none()
    return None if row is None else row._company_id


def fetch_managed(conn: sa.Connection, res: Resource, who: Principal, ident: int) -> Any:
    """The row, or 404 when it does not exist or belongs to a company the admin does not manage."""
    row = conn.execute(res.base_select().where(res.table.c.id == ident)).one_or_none()
    if row is None or (res.tenancy == "super" and not who.super_user) or (res.tenancy != "super" and not who.manages(row._company_id)):
        raise not_found(res.singular, ident)
    return row


def require_managed(conn: sa.Connection, who: Principal, resource: str, ident: int, field: str) -> int:
    """404 unless the row exists and the admin manages its company; return the company id."""
    company = company_of(conn, resource, ident)
    if company is None or not who.manages(company):
        raise ApiError(404, "not_found", f"{RESOURCES[resource].singular} {ident} not found", field)
    return company


def validate(res: Resource, data: dict[str, Any], *, create: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in data:
        f = res.field(key)
        if f is None or not f.writable:
            allowed = ", ".join(x.name for x in res.fields if x.writable)
            raise bad_request(f"{res.singular}: unknown or read-only field {key!r}; writable fields: {allowed}", key)
        if not create and f.create_only:
            raise bad_request(f"{res.singular}: field {key} cannot be changed after creation; delete and create again", key)
    for f in res.fields:
        if not f.writable or f.name not in data:
            if create and f.required and f.writable:
                raise bad_request(f"{res.singular}: field {f.name} is required", f.name)
            continue
        v = data[f.name]
        if v is None and f.secret:
            values[f.col] = None
            continue
        py = JSON_TYPES[f.type]
        if not isinstance(v, py) or (py is int and isinstance(v, bool)):
            shown = "" if f.secret else " " + repr(v)
            raise bad_request(f"{res.singular}: field {f.name}: expected {f.type}, got {type(v).__name__}{shown}"[:300], f.name)
        if isinstance(v, str):
            if f.max_length and len(v) > f.max_length:
                raise bad_request(f"{res.singular}: field {f.name}: at most {f.max_length} characters, got {len(v)}", f.name)
            if f.required and not v.strip():
                raise bad_request(f"{res.singular}: field {f.name} must not be empty", f.name)
            if any(ord(c) < 32 for c in v):
                raise bad_request(f"{res.singular}: field {f.name} contains control characters", f.name)
            if f.pattern and (v or f.secret or f.required) and not re.fullmatch(f.pattern, v):
                shown = "the value" if f.secret else repr(v)  # never echo a password back
                hint = "; " + f.pattern_hint if f.pattern_hint else ""
                raise bad_request(f"{res.singular}: field {f.name}: {shown} is not valid{hint}"[:400], f.name)
        if isinstance(v, int) and not isinstance(v, bool) and (
                (f.minimum is not None and v < f.minimum) or (f.maximum is not None and v > f.maximum)):
            raise bad_request(f"{res.singular}: field {f.name}: expected {f.minimum}-{f.maximum}, got {v}", f.name)
        values[f.col] = hash_password(v) if f.hashed and isinstance(v, str) else v
    return values


def audit(conn: sa.Connection, who: Principal, action: str, object_type: str, object_id: Any, company_id: int | None, source: str = "",
          detail: dict[str, Any] | None = None) -> None:
    conn.execute(sa.insert(t.audit_log).values(
        at=now(), actor=f"{who.type}:{who.login}", action=action, object_type=object_type,
        object_id=str(object_id), company_id=company_id, source=source[:64], detail=detail))


def admin_event(res: Resource, action: str, obj: dict[str, Any]) -> Event:
    """The ``admin.<singular>.<action>`` event telling subscribers an object changed."""
    return Event(f"admin.{res.singular.replace(' ', '_')}.{action}", {"id": obj.get("id"), "resource": res.name},
                 obj.get("company_id"), obj.get("domain_id"))


def integrity(res: Resource, exc: sa.exc.IntegrityError) -> ApiError:
    text = str(exc.orig).lower()
    if "foreign key" in text:
        return ApiError(409, "conflict", f"{res.singular}: a referenced object does not exist or is still in use")
    return ApiError(409, "conflict", f"{res.singular} conflicts with an existing one: {res.unique_hint or 'a unique value is already taken'}")


# -- operations ---------------------------------------------------------------------------

@attrs.frozen
class ListQuery:
    """What a list request asks for, read from its query string."""

    limit: int
    offset: int
    equals: tuple[tuple[str, Any], ...] = ()
    """(field name, value) pairs of filter fields; booleans compare with IS."""
    by_company: bool = False
    """Only the rows of company ``company_id`` (an empty ``company_id`` matches rows of no company)."""
    company_id: int | None = None
    q: str = ""
    """Case-insensitive text searched in the searchable fields."""


def list_rows(conn: sa.Connection, res: Resource, who: Principal, deps: AdminDeps, query: ListQuery) -> dict[str, Any]:
    """One page of the rows ``who`` may see, with the total."""
    filters: list[sa.ColumnElement[bool]] = []
    for name, value in query.equals:
        field = res.field(name)
        assert field is not None
        column = res.table.c[field.col]
        filters.append(column.is_(value) if isinstance(value, bool) else column == value)
    if query.by_company and res.tenancy != "super":
        filters.append(res.company_column() == query.company_id)
    if query.q:
        like = "%" + query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cols = [res.table.c[f.col] for f in res.fields if f.search]
        if cols:
            filters.append(sa.or_(*(sa.func.lower(c).like(like, escape="\\") for c in cols)))
    tf = tenancy_filter(res, who)
    if tf is not None:
        filters.append(tf)
    sel = res.base_select().where(*filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    order = [res.table.c[c.name] for c in res.table.primary_key.columns]
    rows = conn.execute(sel.order_by(*order).limit(query.limit).offset(query.offset)).all()
    return {"items": [row_out(res, r, deps) for r in rows], "total": total, "limit": query.limit, "offset": query.offset}


def read(conn: sa.Connection, res: Resource, who: Principal, deps: AdminDeps, ident: int) -> dict[str, Any]:
    return row_out(res, fetch_managed(conn, res, who, ident), deps)


def create(conn: sa.Connection, res: Resource, who: Principal, deps: AdminDeps, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Check, insert and audit a new row; its output object."""
    if res.tenancy == "super" and not who.super_user:
        raise ApiError(403, "forbidden", f"only super users may create {res.name}")
    if res.check_input:
        res.check_input(deps, data, None)
    values = validate(res, data, create=True)  # hashes passwords: keep it off the event loop
    for f in res.fields:
        if f.ref and values.get(f.col) is not None:
            require_managed(conn, who, f.ref, values[f.col], f.name)
    if res.before_write:
        res.before_write(conn, deps, who, values, None)
    try:
        with conn.begin_nested():
            ident = conn.execute(sa.insert(res.table).values(**values).returning(res.table.c.id)).scalar_one()
    except sa.exc.IntegrityError as exc:
        raise integrity(res, exc) from None
    row = conn.execute(res.base_select().where(res.table.c.id == ident)).one()
    if res.tenancy != "super" and not who.manages(row._company_id):
        raise ApiError(404, "not_found", f"the {res.singular} would belong to a company you do not manage")
    if res.after_write and row._company_id is not None:
        res.after_write(conn, row._company_id)
    audit(conn, who, "create", res.singular, ident, row._company_id, source)
    return row_out(res, row, deps)


def update(conn: sa.Connection, res: Resource, who: Principal, deps: AdminDeps, ident: int, data: dict[str, Any],
           source: str) -> tuple[dict[str, Any], bool]:
    """Check, change and audit a row; its output object and whether the account's tokens were revoked."""
    row = fetch_managed(conn, res, who, ident)
    if res.check_input:
        res.check_input(deps, data, row)
    values = validate(res, data, create=False)
    for f in res.fields:
        if f.ref and values.get(f.col) is not None:
            require_managed(conn, who, f.ref, values[f.col], f.name)
    if res.before_write:
        res.before_write(conn, deps, who, values, row)
    if values:
        try:
            with conn.begin_nested():
                conn.execute(sa.update(res.table).where(res.table.c.id == ident).values(**values))
        except sa.exc.IntegrityError as exc:
            raise integrity(res, exc) from None
    if res.after_write and row._company_id is not None:
        res.after_write(conn, row._company_id)
    detail: dict[str, Any] = {"fields": sorted(data)}
    if res.principal and any(f.hashed and f.col in values for f in res.fields):
        # As after POST /me/password: whoever knew the old password loses the sessions
        # it opened; an admin changing its own password keeps the token it is using.
        mine = who.type == res.principal and who.id == ident
        detail["revoked"] = revoke_all(conn, res.principal, ident, keep=who.token_id if mine else None)
    audit(conn, who, "update", res.singular, ident, row._company_id, source, detail)
    out = row_out(res, conn.execute(res.base_select().where(res.table.c.id == ident)).one(), deps)
    return out, "revoked" in detail


def delete(conn: sa.Connection, res: Resource, who: Principal, deps: AdminDeps, ident: int, source: str) -> dict[str, Any]:
    """Delete and audit a row (and the grants left pointing at nothing); its last output object."""
    row = fetch_managed(conn, res, who, ident)
    if res.name == "admins" and ident == who.id:
        raise ApiError(409, "conflict", "you cannot delete your own admin account; log in as another super user")
    try:
        with conn.begin_nested():
            conn.execute(sa.delete(res.table).where(res.table.c.id == ident))
    except sa.exc.IntegrityError as exc:
        raise integrity(res, exc) from None
    rights.purge_dangling(conn)
    audit(conn, who, "delete", res.singular, ident, row._company_id, source)
    return row_out(res, row, deps)


# -- the resources ----------------------------------------------------------------

def _company_limits(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    if existing is None:
        if not who.super_user:
            raise ApiError(403, "forbidden", "only super users may create companies")
        n = conn.execute(sa.select(sa.func.count()).select_from(t.companies)).scalar_one()
        limit = deps.config.limits.companies
        if n >= limit:
            raise ApiError(409, "limit_reached", f"this server already has {n} companies, the limit is {limit} "
                           f"(limits.companies in {deps.config.source}); raise it to add more", "name")


def _domain_limits(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    if existing is None:
        n = conn.execute(sa.select(sa.func.count()).select_from(t.domains).where(t.domains.c.company_id == values["company_id"])).scalar_one()
        limit = deps.config.limits.domains_per_company
        if n >= limit:
            raise ApiError(409, "limit_reached", f"company {values['company_id']} already has {n} domains, the limit is {limit} "
                           f"(limits.domains_per_company in {deps.config.source})", "company_id")


def _user_limits(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    limit = deps.config.limits.users_per_domain
    if existing is None and limit:
        n = conn.execute(sa.select(sa.func.count()).select_from(t.users).where(t.users.c.domain_id == values["domain_id"])).scalar_one()
        if n >= limit:
            raise ApiError(409, "limit_reached", f"domain {values['domain_id']} already has {n} users, the limit is {limit} "
                           f"(limits.users_per_domain in {deps.config.source})", "domain_id")


def _user_password(deps: AdminDeps, data: dict[str, Any], existing: Any) -> None:
    if isinstance(data.get("password"), str):
        login = data.get("login", existing.login if existing is not None else "")
        try:
            passwords.check(deps.config.auth, data["password"], login if isinstance(login, str) else "")
        except passwords.PasswordRejected as exc:
            raise ApiError(422, exc.rule, f"user: {exc}", "password") from None


def _device_domain(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    if values.get("user_id") is not None:
        user_domain = conn.execute(sa.select(t.users.c.domain_id).where(t.users.c.id == values["user_id"])).scalar_one()
        domain = values.get("domain_id", existing.domain_id if existing is not None else None)
        if domain is None:
            values["domain_id"] = user_domain
        elif domain != user_domain:
            raise bad_request(f"device: user {values['user_id']} is in domain {user_domain}, not in domain {domain}", "user_id")
    if existing is None and values.get("domain_id") is None:
        raise bad_request("device: give user_id (the owner) or domain_id", "domain_id")


def _admin_companies(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    if existing is None and "password_hash" not in values:
        raise bad_request("admin: field password is required (at least 12 characters)", "password")
    # As DELETE: an admin cannot lock itself out (and the last super user the whole server).
    if existing is not None and existing.id == who.id and who.type == "admin":
        for field in ("enabled", "super_user"):
            if values.get(field) is False and getattr(existing, field):
                raise ApiError(409, "conflict", f"you cannot set {field} to false on your own admin account; log in as another super user", field)


def _quota_check(conn: sa.Connection, company_id: int) -> None:
    try:
        rights.enforce_quotas(conn, company_id)
    except rights.RightsError as exc:
        raise ApiError(exc.status, "quota_exceeded", str(exc), exc.field) from None


NUMBER = r"[0-9*#+][0-9*#+ ]{0,63}"
LOGIN = r"[^\s/\\\x00-\x1f][^/\\\x00-\x1f]{0,199}"
CULTURE = r"[a-z]{2,3}(-[A-Z]{2})?"

RESOURCES: dict[str, Resource] = {}


def _add(res: Resource) -> None:
    RESOURCES[res.name] = res


_add(Resource("companies", "company", t.companies, (
    Field("name", required=True, max_length=200, search=True, filter=True, description="company name shown in contact cards"),
    Field("description", max_length=1000),
), "self", "company names are unique", before_write=_company_limits))
_add(Resource("domains", "domain", t.domains, (
    Field("company_id", "integer", required=True, create_only=True, ref="companies", filter=True),
    Field("name", required=True, max_length=200, search=True, filter=True),
    Field("numbering_plan_length", "integer", minimum=1, maximum=20, description="longest internal number length (guide 3.1)"),
), "company", "domain names are unique within a company", before_write=_domain_limits))
_add(Resource("users", "user", t.users, (
    Field("domain_id", "integer", required=True, create_only=True, ref="domains", filter=True),
    Field("login", required=True, max_length=200, pattern=LOGIN, pattern_hint="no spaces at the start, no slashes", search=True, filter=True,
          description="Windows login or TWP login (guide 3.3.4)"),
    Field("first_name", max_length=200, search=True),
    Field("last_name", max_length=200, search=True),
    Field("email", max_length=320, pattern=r"[^@\s]+@[^@\s]+", pattern_hint="write name@example.com", search=True, filter=True),
    Field("mobile", max_length=64, pattern=r"\+?[0-9 ().-]{2,63}", pattern_hint="digits, spaces, + ( ) . -"),
    Field("culture", max_length=16, pattern=CULTURE, pattern_hint="a culture such as fr-FR, en-US, de-DE"),
    Field("enabled", "boolean", filter=True),
    Field("password", secret=True, hashed=True, column="password_hash", max_length=1024, description="TWS auth method password (stored as argon2)"),
    Field("voicemail_password", secret=True, max_length=64, description="the PBX voicemail password"),
    Field("ip", max_length=64),
), "domain", "logins are unique within a domain", before_write=_user_limits, after_write=_quota_check, check_input=_user_password,
    principal="user"))
_add(Resource("devices", "device", t.devices, (
    Field("domain_id", "integer", create_only=True, ref="domains", filter=True),
    Field("user_id", "integer", ref="users", filter=True),
    Field("number", required=True, max_length=64, pattern=NUMBER, pattern_hint="digits, * # + only", search=True, filter=True),
    Field("protocol", max_length=32, filter=True, description="CSTA, VTIXML, SIP, uaCSTA..."),
    Field("password", secret=True, max_length=128, description="device password (VTI-XML)"),
    Field("ip", max_length=64),
    Field("media_protocol", max_length=32),
    Field("video", "boolean"),
    Field("site", max_length=32, pattern=r"[0-9A-Za-z]+(\.[0-9A-Za-z]+)?", pattern_hint='site.cluster such as "1.1"', filter=True,
          description="site.cluster of the device, for PBX link allocation (guide 4.1)"),
), "domain", "device numbers are unique within a domain", before_write=_device_domain))
_add(Resource("groups", "group", t.groups, (
    Field("domain_id", "integer", required=True, create_only=True, ref="domains", filter=True),
    Field("name", required=True, max_length=200, search=True, filter=True),
    Field("priority", "integer", minimum=0, maximum=1_000_000, description="lower wins when a user's groups set the same parameter"),
    Field("description", max_length=1000),
), "domain", "group names are unique within a domain"))
_add(Resource("intercom_groups", "intercom group", t.intercom_groups, (
    Field("domain_id", "integer", required=True, create_only=True, ref="domains", filter=True),
    Field("name", required=True, max_length=200, search=True, filter=True),
), "domain", "intercom group names are unique within a domain"))
_add(Resource("phone_queues", "phone queue", t.phone_queues, (
    Field("domain_id", "integer", required=True, create_only=True, ref="domains", filter=True),
    Field("name", required=True, max_length=200, search=True, filter=True),
    Field("number", max_length=64, pattern=NUMBER, pattern_hint="digits, * # + only"),
), "domain", "phone queue names are unique within a domain"))
_add(Resource("directories", "directory", t.directories, (
    Field("domain_id", "integer", required=True, create_only=True, ref="domains", filter=True),
    Field("name", required=True, max_length=200, search=True, filter=True),
    Field("connector", required=True, max_length=64, filter=True),
    Field("type", max_length=16, pattern="public|private|draft", pattern_hint="public, private or draft"),
    Field("priority", "integer", minimum=0, maximum=1_000_000),
    Field("options", "object"),
), "domain", "directory names are unique within a domain"))
_add(Resource("admins", "admin", t.admins, (
    Field("login", required=True, max_length=200, pattern=LOGIN, search=True, filter=True),
    Field("password", required=True, secret=True, hashed=True, column="password_hash", max_length=1024, pattern=r"[^\x00-\x1f]{12,}",
          pattern_hint="at least 12 characters"),
    Field("super_user", "boolean", filter=True),
    Field("enabled", "boolean"),
), "super", "admin logins are unique", before_write=_admin_companies, principal="admin"))


def _grant(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    try:
        row = rights.check_grant(conn, values)
    except rights.RightsError as exc:
        raise ApiError(exc.status, "not_found" if exc.status == 404 else "invalid_grant", str(exc), exc.field) from None
    if not who.manages(row["company_id"]):
        raise ApiError(404, "not_found", f"{values['subject_type']} {values['subject_id']} not found", "subject_id")
    values.update(row)


def _parameter_value(conn: sa.Connection, deps: AdminDeps, who: Principal, values: dict[str, Any], existing: Any) -> None:
    name: str = values["name"] if existing is None else existing.name  # create_only: a change never carries it
    try:
        definition = deps.parameters.get(name)
        if "value" in values:
            values["value"] = definition.normalize(values["value"])
    except ParameterError as exc:
        raise ApiError(422, "invalid_parameter", str(exc), exc.field) from None
    if existing is not None:
        return
    scope, scope_id = values["scope"], values.get("scope_id")
    if scope == "default":
        if not who.super_user:
            raise ApiError(403, "forbidden", "only super users may change a parameter's server-wide default")
        values["scope_id"], values["company_id"] = 0, None
        return
    if scope_id is None:
        raise bad_request(f"parameter value: scope_id is required for scope {scope}", "scope_id")
    values["company_id"] = require_managed(conn, who, {"domain": "domains", "group": "groups", "user": "users"}[scope], scope_id, "scope_id")


def _hide_secret_value(out: dict[str, Any], deps: AdminDeps | None) -> dict[str, Any]:
    definition = deps.parameters.definitions.get(out.get("name") or "") if deps is not None else None
    if definition is None or definition.secret:
        out["value"] = "***"
    return out


_add(Resource("authorizations", "authorization", t.authorizations, (
    Field("object_type", required=True, max_length=32, filter=True,
          description="application, directory, calendar, intercom_group, phone_queue, call_log, statistics, records"),
    Field("object_ref", required=True, max_length=200, filter=True, description='application name, or "<kind>:<id>" such as "directory:3", "user:5"'),
    Field("subject_type", required=True, max_length=32, filter=True, description="user, group, phone_queue or intercom_group"),
    Field("subject_id", "integer", required=True, filter=True),
    Field("object_domain_id", "integer", writable=False),
    Field("subject_domain_id", "integer", writable=False, filter=True),
), "company", "this subject already has this right", updatable=False, before_write=_grant, after_write=_quota_check))
_add(Resource("parameter_values", "parameter value", t.parameter_values, (
    Field("name", required=True, create_only=True, max_length=128, filter=True, search=True),
    Field("scope", required=True, create_only=True, pattern="default|domain|group|user", pattern_hint="default, domain, group or user", filter=True),
    Field("scope_id", "integer", create_only=True, filter=True, description="id of the domain, group or user (omit for default)"),
    Field("value", required=True, max_length=4000),
), "company", "this parameter already has a value at this scope; change it with PATCH", before_write=_parameter_value,
    # The None auth method warning (health, log) must follow AuthMethods as admins change it.
    present=_hide_secret_value, refreshes_warnings=True))
