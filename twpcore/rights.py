"""Authorizations (guide 7.4): who may use which application, directory, calendar, queue...

A grant joins a *subject* (a user, a group, a phone queue or an intercom group) to an
*object*.  The object is written as a reference:

============== ======================== =========================== ===================
object_type    object_ref               meaning                     across domains
============== ======================== =========================== ===================
application    ``Caller``               may run the application     company-wide
directory      ``directory:<id>``       may search the directory    yes (7.4.2)
calendar       ``user:<id>``/``group:`` may see their calendar      yes (7.4.3)
intercom_group ``intercom_group:<id>``  sees the devices' presence  yes (7.4.4)
phone_queue    ``phone_queue:<id>``     sees the queue's calls      no (7.4.5)
call_log       ``user:<id>``/``group:`` sees their call logs        no (7.4.6)
statistics     ``user:<id>``            see below                   no
records        ``user:<id>``            see below                   no
============== ======================== =========================== ===================

Statistics and records go the other way (7.4): the object is the *viewer* user and the
subjects are the users or groups whose statistics that viewer may see.

Companies never share anything.  Each application grant consumes one seat per distinct
enabled user it reaches; a company's quota for an application (when set) cannot be
exceeded by a grant, a group membership or enabling a user.

Where the grants are used: ``check_application_login`` (a login naming an application),
``user_can`` / ``granted_ids`` (directories, intercom groups, phone queues),
``can_view_calendar`` and ``intercom_watchers`` (who receives a device's live presence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from twpcore.store import schema as t

if TYPE_CHECKING:
    from twpcore.principals import Principal

APPLICATIONS = ("Caller", "Alerter", "Stats", "StatsAdmin", "Rules", "SoftPhone", "Toolkit", "Internet", "Mail", "VideoShare", "SmartAttendant")

OBJECT_TYPES: dict[str, dict[str, Any]] = {
    "application": {"refs": (), "shareable": True, "guide": "7.4.1"},
    "directory": {"refs": ("directory",), "shareable": True, "guide": "7.4.2"},
    "calendar": {"refs": ("user", "group"), "shareable": True, "guide": "7.4.3"},
    "intercom_group": {"refs": ("intercom_group",), "shareable": True, "guide": "7.4.4"},
    "phone_queue": {"refs": ("phone_queue",), "shareable": False, "guide": "7.4.5"},
    "call_log": {"refs": ("user", "group"), "shareable": False, "guide": "7.4.6"},
    "statistics": {"refs": ("user",), "shareable": False, "guide": "7.4"},
    "records": {"refs": ("user",), "shareable": False, "guide": "7.4"},
}
SUBJECT_TYPES = ("user", "group", "phone_queue", "intercom_group")
REF_TABLES = {
    "user": t.users, "group": t.groups, "directory": t.directories,
    "intercom_group": t.intercom_groups, "phone_queue": t.phone_queues,
}
PLURAL = {"phone_queue": "phone queues", "call_log": "call logs", "statistics": "statistics", "records": "records"}


class RightsError(Exception):
    """A grant is refused; ``status`` is the HTTP status to answer, ``field`` the faulty field."""

    def __init__(self, message: str, status: int = 422, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


def parse_ref(object_type: str, object_ref: str) -> tuple[str, int | str]:
    """Split ``user:5`` into ("user", 5); an application ref is its name."""
    if object_type not in OBJECT_TYPES:
        raise RightsError(f'object_type "{object_type}" is unknown; use one of {", ".join(OBJECT_TYPES)}', field="object_type")
    if object_type == "application":
        if object_ref not in APPLICATIONS:
            raise RightsError(f'application "{object_ref}" is unknown; use one of {", ".join(APPLICATIONS)}', field="object_ref")
        return "application", object_ref
    kind, _, num = str(object_ref).partition(":")
    allowed = OBJECT_TYPES[object_type]["refs"]
    if kind not in allowed or not (num.isascii() and num.isdigit() and 1 <= int(num) < 2**63):  # ids of the store: signed 64-bit
        forms = " or ".join(f'"{k}:<id>"' for k in allowed)
        raise RightsError(f'object_ref "{object_ref}" does not fit object_type {object_type}; write {forms}', field="object_ref")
    return kind, int(num)


def _row_domain(conn: sa.Connection, kind: str, ident: int, field: str) -> sa.Row[int, int, int, str]:
    table = REF_TABLES[kind]
    row = conn.execute(
        sa.select(table.c.id, table.c.domain_id, t.domains.c.company_id, t.domains.c.name.label("domain_name"))
        .join(t.domains, t.domains.c.id == table.c.domain_id).where(table.c.id == ident)
    ).one_or_none()
    if row is None:
        raise RightsError(f"{kind.replace('_', ' ')} {ident} not found", status=404, field=field)
    return row


def check_grant(conn: sa.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a new grant against guide 7.4; return the row to insert (with derived domains)."""
    object_type = data.get("object_type")
    object_ref = data.get("object_ref")
    subject_type = data.get("subject_type")
    subject_id = data.get("subject_id")
    if subject_type not in SUBJECT_TYPES:
        raise RightsError(f'subject_type "{subject_type}" is unknown; use one of {", ".join(SUBJECT_TYPES)}', field="subject_type")
    if not isinstance(subject_id, int):
        raise RightsError("subject_id must be an integer id", field="subject_id")
    if not isinstance(object_type, str) or not isinstance(object_ref, str):
        raise RightsError("object_type and object_ref are required strings", field="object_ref")
    kind, ident = parse_ref(object_type, object_ref)
    subject = _row_domain(conn, subject_type, subject_id, "subject_id")
    object_domain_id = None
    if kind != "application":
        obj = _row_domain(conn, kind, int(ident), "object_ref")
        if obj.company_id != subject.company_id:
            # Another company's object is invisible: answer as if it did not exist.
            raise RightsError(f"{kind.replace('_', ' ')} {ident} not found", status=404, field="object_ref")
        if not OBJECT_TYPES[object_type]["shareable"] and obj.domain_id != subject.domain_id:
            raise RightsError(
                f"{PLURAL.get(object_type, object_type)} can't be shared between domains (guide {OBJECT_TYPES[object_type]['guide']}): "
                f"the object is in domain {obj.domain_name}, the subject in domain {subject.domain_name}",
                status=422, field="subject_id")
        object_domain_id = obj.domain_id
    return {
        "company_id": subject.company_id,
        "object_type": object_type,
        "object_ref": object_ref if kind == "application" else f"{kind}:{ident}",
        "object_domain_id": object_domain_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "subject_domain_id": subject.domain_id,
    }


def _reached_users(grants: sa.Subquery) -> sa.Subquery:
    """(object_ref, user_id) of the *enabled* users that ``grants`` (object_ref, subject_type, subject_id) reach,
    directly or through a group."""
    gm = t.group_members
    direct = sa.select(grants.c.object_ref, grants.c.subject_id.label("user_id")).where(grants.c.subject_type == "user")
    via_group = (sa.select(grants.c.object_ref, gm.c.user_id)
                 .join(gm, sa.and_(grants.c.subject_type == "group", grants.c.subject_id == gm.c.group_id)))
    reached = sa.union(direct, via_group).subquery()
    return (sa.select(reached.c.object_ref, reached.c.user_id).join(t.users, t.users.c.id == reached.c.user_id)
            .where(t.users.c.enabled.is_(True)).subquery())


def seats_by_application(conn: sa.Connection, company_id: int) -> dict[str, int]:
    """Application → seats used in the company (distinct enabled users granted it); one query."""
    a = t.authorizations
    grants = sa.select(a.c.object_ref, a.c.subject_type, a.c.subject_id).where(
        a.c.company_id == company_id, a.c.object_type == "application").subquery()
    reached = _reached_users(grants)
    rows = conn.execute(sa.select(reached.c.object_ref, sa.func.count(sa.distinct(reached.c.user_id))).group_by(reached.c.object_ref))
    return dict(rows.tuples().all())


def seats_used(conn: sa.Connection, company_id: int, application: str) -> int:
    return seats_by_application(conn, company_id).get(application, 0)


def usage(conn: sa.Connection, company_id: int) -> list[dict[str, Any]]:
    quotas = {r.application: r.seats for r in conn.execute(
        sa.select(t.application_quotas).where(t.application_quotas.c.company_id == company_id))}
    used = seats_by_application(conn, company_id)
    return [{"application": app, "seats": quotas.get(app), "used": used.get(app, 0)} for app in APPLICATIONS]


def enforce_quotas(conn: sa.Connection, company_id: int) -> None:
    """Raise ``RightsError`` (409) if any application of the company uses more seats than its quota."""
    quotas = conn.execute(sa.select(t.application_quotas).where(t.application_quotas.c.company_id == company_id)).all()
    if not quotas:
        return
    company = conn.execute(sa.select(t.companies.c.name).where(t.companies.c.id == company_id)).scalar_one_or_none()
    used = seats_by_application(conn, company_id)
    for row in quotas:
        if used.get(row.application, 0) > row.seats:
            raise RightsError(
                f"application {row.application}: this change needs {used[row.application]} seats but company {company} has a quota of "
                f"{row.seats} (guide 7.4.1); raise the quota or grant fewer users", status=409, field="seats")


def subjects_of_user(conn: sa.Connection, user_id: int) -> list[tuple[str, int]]:
    """The subjects a user acts as: itself and its groups."""
    groups = conn.execute(sa.select(t.group_members.c.group_id).where(t.group_members.c.user_id == user_id)).scalars()
    return [("user", user_id), *(("group", g) for g in groups)]


def _subject_clause(subjects: list[tuple[str, int]]) -> sa.ColumnElement[bool]:
    a = t.authorizations
    return sa.or_(*(sa.and_(a.c.subject_type == k, a.c.subject_id == i) for k, i in subjects))


def user_can(conn: sa.Connection, user_id: int, object_type: str, object_ref: str) -> bool:
    """May this user reach the object?  (Not for statistics/records: see ``can_view_statistics``.)"""
    if object_type in ("statistics", "records"):
        raise ValueError("use can_view_statistics for statistics and records")
    kind, ident = parse_ref(object_type, object_ref)
    refs = [object_ref]
    if kind == "user" and object_type in ("calendar", "call_log"):
        groups = conn.execute(sa.select(t.group_members.c.group_id).where(t.group_members.c.user_id == ident)).scalars()
        refs += [f"group:{g}" for g in groups]
    a = t.authorizations
    hit = conn.execute(
        sa.select(a.c.id).where(a.c.object_type == object_type, a.c.object_ref.in_(refs), _subject_clause(subjects_of_user(conn, user_id))).limit(1)
    ).first()
    if hit is None:
        return False
    if object_type == "application":
        return bool(conn.execute(sa.select(t.users.c.enabled).where(t.users.c.id == user_id)).scalar_one_or_none())
    return True


def can_view_statistics(conn: sa.Connection, viewer_id: int, target_user_id: int, object_type: str = "statistics") -> bool:
    """Guide 7.4's reverse rule: the viewer is the object, the viewed users are the subjects."""
    if viewer_id == target_user_id:
        return True
    a = t.authorizations
    return conn.execute(
        sa.select(a.c.id).where(a.c.object_type == object_type, a.c.object_ref == f"user:{viewer_id}",
                               _subject_clause(subjects_of_user(conn, target_user_id))).limit(1)
    ).first() is not None


def granted_applications(conn: sa.Connection, user_id: int) -> list[str]:
    a = t.authorizations
    enabled = conn.execute(sa.select(t.users.c.enabled).where(t.users.c.id == user_id)).scalar_one_or_none()
    if not enabled:
        return []
    rows = conn.execute(
        sa.select(a.c.object_ref).distinct().where(a.c.object_type == "application", _subject_clause(subjects_of_user(conn, user_id)))
    ).scalars()
    return sorted(rows)


def visible_objects(conn: sa.Connection, user_id: int, object_type: str) -> list[str]:
    """Object refs of one type that the user may reach (directories it may search...)."""
    a = t.authorizations
    return sorted(conn.execute(
        sa.select(a.c.object_ref).distinct().where(a.c.object_type == object_type, _subject_clause(subjects_of_user(conn, user_id)))
    ).scalars())


def check_application_login(conn: sa.Connection, user_id: int, application: str) -> None:
    """Refuse a login that names an application the user may not run (guide 7.4.1).

    Raises ``RightsError``: 422 for an unknown application name, 403 when neither the
    user nor one of its groups is granted the application (or the user is disabled).
    """
    if application not in APPLICATIONS:
        raise RightsError(f'application "{application}" is unknown; use one of {", ".join(APPLICATIONS)}', status=422, field="application")
    if user_can(conn, user_id, "application", application):
        return
    login = conn.execute(sa.select(t.users.c.login).where(t.users.c.id == user_id)).scalar_one_or_none()
    raise RightsError(f"application {application} is not granted to user {login if login is not None else user_id} (guide 7.4.1); "
                      "ask an administrator to grant it to the user or to one of its groups", status=403, field="application")


def granted_ids(conn: sa.Connection, user_id: int, object_type: str) -> list[int]:
    """Ids of the objects of one type (``intercom_group``, ``phone_queue``...) granted to the user or its groups."""
    return sorted({int(ref.partition(":")[2]) for ref in visible_objects(conn, user_id, object_type) if ref.partition(":")[2].isdigit()})


def can_view_calendar(conn: sa.Connection, viewer_id: int, owner_id: int) -> bool:
    """Guide 7.4.3: one's own calendar, or one granted on the owner or on one of the owner's groups."""
    return viewer_id == owner_id or user_can(conn, viewer_id, "calendar", f"user:{owner_id}")


def _enabled_users_granted(conn: sa.Connection, object_type: str) -> dict[int, set[int]]:
    """Object id → enabled users granted it, directly or through a group (for ``<kind>:<id>`` refs)."""
    a = t.authorizations
    grants = sa.select(a.c.object_ref, a.c.subject_type, a.c.subject_id).where(a.c.object_type == object_type).subquery()
    reached = _reached_users(grants)
    users_of: dict[int, set[int]] = {}
    for ref, user in conn.execute(sa.select(reached.c.object_ref, reached.c.user_id)):
        users_of.setdefault(int(ref.partition(":")[2]), set()).add(user)
    return users_of


def intercom_watchers(conn: sa.Connection) -> dict[tuple[int, str], frozenset[int]]:
    """Guide 7.4.4 for live events: (domain id, device number) → users granted an intercom group of the device.

    A few queries for the whole server; the telephony service keeps the result and adds
    these users to the presence events of each device.
    """
    igd, d = t.intercom_group_devices, t.devices
    users_of = _enabled_users_granted(conn, "intercom_group")
    if not users_of:
        return {}
    out: dict[tuple[int, str], set[int]] = {}
    for group, domain_id, number in conn.execute(
            sa.select(igd.c.intercom_group_id, d.c.domain_id, d.c.number).join(d, d.c.id == igd.c.device_id)
            .where(igd.c.intercom_group_id.in_(sorted(users_of)))):
        out.setdefault((domain_id, number), set()).update(users_of[group])
    return {k: frozenset(v) for k, v in out.items()}


def queue_watchers(conn: sa.Connection) -> dict[tuple[int, str], frozenset[int]]:
    """Guide 7.4.5 for live events: (domain id, queue number) → enabled users granted the phone queue.

    The telephony service adds these users to the call events of the device that has the
    queue's number (guide 9.2.2), so granted users see calls arrive and leave the queue.
    """
    q = t.phone_queues
    users_of = _enabled_users_granted(conn, "phone_queue")
    if not users_of:
        return {}
    out: dict[tuple[int, str], set[int]] = {}
    for ident, domain_id, number in conn.execute(sa.select(q.c.id, q.c.domain_id, q.c.number).where(q.c.id.in_(sorted(users_of)), q.c.number != "")):
        out.setdefault((domain_id, number), set()).update(users_of[ident])
    return {k: frozenset(v) for k, v in out.items()}


def purge_dangling(conn: sa.Connection) -> None:
    """Delete what pointed at deleted rows by id alone: grants, parameter values, tokens.

    These columns carry no foreign key (they point at one of several tables), and SQLite
    reuses the highest deleted id, so a leftover would hand a deleted user's rights,
    settings or login token to the next user created, maybe in another company.
    """
    pv, a, tok = t.parameter_values, t.authorizations, t.tokens
    for scope, table in (("domain", t.domains), ("group", t.groups), ("user", t.users)):
        conn.execute(sa.delete(pv).where(pv.c.scope == scope, ~sa.exists().where(table.c.id == pv.c.scope_id)))
    for kind, table in REF_TABLES.items():
        conn.execute(sa.delete(a).where(a.c.subject_type == kind, ~sa.exists().where(table.c.id == a.c.subject_id)))
        ref = sa.literal(f"{kind}:") + sa.cast(table.c.id, sa.String)
        conn.execute(sa.delete(a).where(a.c.object_type != "application", a.c.object_ref.startswith(f"{kind}:"),
                                        ~sa.exists().where(ref == a.c.object_ref)))
    for kind, table in (("user", t.users), ("admin", t.admins)):
        conn.execute(sa.delete(tok).where(tok.c.principal_type == kind, ~sa.exists().where(table.c.id == tok.c.principal_id)))


def visible_row(conn: sa.Connection, who: Principal, table: sa.Table, ident: int, *cols: sa.Column[Any]) -> sa.Row[Any] | None:
    """The row ``ident`` of a domain's ``table`` with its company and domain name, or None when absent or of another company.

    Companies never share anything: a user sees the rows of their own company, an admin those
    of the companies they manage; for the others the row does not exist (404).
    """
    row = conn.execute(sa.select(table.c.id, table.c.domain_id, t.domains.c.company_id, t.domains.c.name.label("domain_name"), *cols)
                       .join(t.domains, t.domains.c.id == table.c.domain_id).where(table.c.id == ident)).one_or_none()
    if row is None or not (who.manages(row.company_id) if who.is_admin else row.company_id in who.companies):
        return None
    return row


def not_granted_text(what: str, guide: str, ask: str) -> str:
    """The 403 text of an object of the user's company that is not granted to them, naming the authorization to ask for."""
    return f"{what} is not granted to you (guide {guide}); ask an administrator for {ask}"
