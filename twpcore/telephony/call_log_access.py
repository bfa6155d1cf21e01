"""Who may see whose call log, statistics and recordings, and the queries behind them (guide 7.4, 7.4.6, 9.4).

The rules are those of ``twpcore.http.call_logs`` (which reads the request and answers);
this module holds the checks and the SQL, run in the store's thread pool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import rights
from twpcore.auth import Principal
from twpcore.dialing import DialingPlans
from twpcore.store import schema as t
from twpcore.telephony import call_logs as cl

UTC = dt.UTC


def user_row(conn: sa.Connection, user_id: int) -> Any:
    return conn.execute(
        sa.select(t.users.c.id, t.users.c.login, t.users.c.first_name, t.users.c.last_name, t.users.c.domain_id, t.domains.c.company_id)
        .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(t.users.c.id == user_id)).one_or_none()


def visible_company(who: Principal, company_id: int) -> bool:
    return who.manages(company_id) if who.is_admin else company_id in who.companies


def may_see_statistics(conn: sa.Connection, who: Principal, target_id: int) -> str | None:
    """None when ``who`` may see ``target_id``'s statistics, else why not (with the fix)."""
    if who.is_admin:
        return None
    if target_id == who.id:
        if rights.user_can(conn, who.id, "application", "Stats") or rights.user_can(conn, who.id, "application", "StatsAdmin"):
            return None
        return "seeing your statistics needs the Stats application; ask an administrator to grant it to you (guide 9.4.1)"
    if not rights.user_can(conn, who.id, "application", "StatsAdmin"):
        return (f"seeing the statistics of user {target_id} needs the StatsAdmin application; ask an administrator to grant it to you "
                "(guide 9.4.2)")
    if not rights.can_view_statistics(conn, who.id, target_id):
        return (f"you may not see the statistics of user {target_id}; an administrator grants statistics with object user:{who.id} "
                f"to that user or one of its groups (guide 7.4: statistics rights go the other way)")
    return None


def check_user(conn: sa.Connection, who: Principal, user_id: int, object_type: str) -> tuple[Any, str | None]:
    """The user ``user_id`` (None when absent or of another company) and why ``who`` may not see its ``object_type`` (None: allowed)."""
    user = user_row(conn, user_id)
    if user is None or not visible_company(who, user.company_id):
        return None, None
    if who.is_admin or (user.id == who.id and object_type != "statistics"):
        return user, None
    if object_type == "call_log":
        if rights.user_can(conn, who.id, "call_log", f"user:{user.id}"):
            return user, None
        return user, (f"you may not see the call logs of user {user.login}; an administrator grants call_log on user:{user.id} "
                      "or one of its groups to you or one of your groups (guide 7.4.6)")
    if object_type == "records":
        if rights.can_view_statistics(conn, who.id, user.id, "records"):
            return user, None
        return user, (f"you may not see the recordings of user {user.login}; an administrator grants records with object "
                      f"user:{who.id} to that user or one of its groups (guide 7.4: records rights go the other way)")
    return user, may_see_statistics(conn, who, user.id)


@attrs.frozen
class StatsQuery:
    """What a statistics request asks for."""

    start: dt.datetime
    end: dt.datetime
    group_by: str | None
    direction: str | None
    number: str | None
    """One correspondent (user guide 5.3.1), matched as presented or through its canonical keys."""
    zone: dt.tzinfo = UTC
    """Where periods are cut (``tz``): days, hours and weekdays of that time zone."""

    def answer(self, **body: Any) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "group_by": self.group_by,
                "timezone": str(self.zone) if self.zone is not UTC else "UTC", "direction": self.direction, "number": self.number, **body}

    def run(self, conn: sa.Connection, dialing_plans: DialingPlans, user_ids: list[int]) -> dict[str, Any]:
        numbers: set[str] = set()
        if self.number:
            numbers.add(self.number)
            domains = conn.execute(sa.select(t.users.c.domain_id).distinct().where(t.users.c.id.in_(user_ids or [-1]))).scalars()
            for domain_id in domains:
                numbers.update(dialing_plans.get(conn, domain_id).canonical_keys(self.number))
        return cl.statistics(conn, user_ids, self.start, self.end, self.group_by, self.direction, numbers, self.zone)


def own_statistics(conn: sa.Connection, who: Principal, query: StatsQuery, dialing_plans: DialingPlans) -> tuple[str | None, dict[str, Any]]:
    """Why ``who`` may not see their own statistics (None: allowed), and the statistics when allowed."""
    refusal = may_see_statistics(conn, who, who.id)
    return refusal, ({} if refusal else query.run(conn, dialing_plans, [who.id]))


def group_statistics(conn: sa.Connection, who: Principal, group_id: int, query: StatsQuery, dialing_plans: DialingPlans) -> Any:
    """None when the group is absent or of another company; else (group, body), body None when ``who`` may see no member's."""
    group = conn.execute(sa.select(t.groups.c.id, t.groups.c.name, t.domains.c.company_id).join(t.domains, t.domains.c.id == t.groups.c.domain_id)
                         .where(t.groups.c.id == group_id)).one_or_none()
    if group is None or not visible_company(who, group.company_id):
        return None
    members = conn.execute(sa.select(t.users.c.id, t.users.c.login, t.users.c.first_name, t.users.c.last_name)
                           .join(t.group_members, t.group_members.c.user_id == t.users.c.id)
                           .where(t.group_members.c.group_id == group_id).order_by(t.users.c.login, t.users.c.id)).all()
    visible = [m for m in members if may_see_statistics(conn, who, m.id) is None]
    if not visible and not who.is_admin:
        return group, None
    stats = query.run(conn, dialing_plans, [m.id for m in visible])
    items = [{"login": m.login, "name": f"{m.first_name} {m.last_name}".strip() or m.login, **stats["users"][m.id]} for m in visible]
    return group, {"totals": stats["totals"], "items": items}
