"""Demo data for `make run`: one company, two domains, a few users, groups and rights.

Users get no password: the demo admin sets one (``PATCH /api/v1/users/{id}``) before a
user can log in.  Nothing here is created when the store already has a company.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from twpcore.store import schema as t

log = logging.getLogger(__name__)

USERS = [
    ("Paris", "alice", "Alice", "Martin", "201", "fr-FR"),
    ("Paris", "bob", "Bob", "Durand", "202", "fr-FR"),
    ("Paris", "carol", "Carol", "Smith", "203", "en-US"),
    ("Nice", "david", "David", "Bernard", "301", "fr-FR"),
]


def seed_if_empty(conn: sa.Connection) -> bool:
    if conn.execute(sa.select(sa.func.count()).select_from(t.companies)).scalar_one():
        return False
    company = conn.execute(
        sa.insert(t.companies).values(name="Demo", description="demo company of `make run`").returning(t.companies.c.id)
    ).scalar_one()
    domains = {}
    for name in ("Paris", "Nice"):
        domains[name] = conn.execute(
            sa.insert(t.domains).values(company_id=company, name=name, numbering_plan_length=3).returning(t.domains.c.id)
        ).scalar_one()
    groups = {d: conn.execute(sa.insert(t.groups).values(domain_id=i, name="All").returning(t.groups.c.id)).scalar_one() for d, i in domains.items()}
    for dom, login, first, last, number, culture in USERS:
        uid = conn.execute(sa.insert(t.users).values(
            domain_id=domains[dom], login=login, first_name=first, last_name=last, email=f"{login}@demo.example",
            culture=culture).returning(t.users.c.id)).scalar_one()
        conn.execute(sa.insert(t.devices).values(domain_id=domains[dom], user_id=uid, number=number, protocol="CSTA"))
        conn.execute(sa.insert(t.group_members).values(group_id=groups[dom], user_id=uid))
    for dom, gid in groups.items():
        conn.execute(sa.insert(t.authorizations).values(
            company_id=company, object_type="application", object_ref="Caller", subject_type="group",
            subject_id=gid, subject_domain_id=domains[dom]))
    log.info("demo data created: company Demo, domains Paris and Nice, %d users", len(USERS))
    return True
