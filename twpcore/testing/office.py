"""Test-kit helper for features between users (chat, notifications, notes): an "office" of two companies.

    from twpcore.testing.office import office

    o = await office(twp_app)
    await o["ann"]["client"].post("/api/v1/chat/messages", {"to": o["bob"]["id"], "text": "Hi"}, status=201)

Everything is created through the admin API; the users' clients carry tokens issued directly
(no login, no password hashing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

OFFICE_PEOPLE: tuple[tuple[str, ...], ...] = (("ann", "Alpha"), ("bob", "Alpha"), ("zoe", "Bravo"))
"""Who ``office`` creates by default: (login, company[, domain]); the domain is "Paris" when not given."""


async def office(twp_app: Any, people: Iterable[tuple[str, ...]] = OFFICE_PEOPLE, *,
                 user_fields: Callable[[str], dict[str, Any]] = lambda login: {}) -> dict[str, Any]:
    """A started server with companies Alpha and Bravo (each with a domain Paris) and one user per entry of ``people``.

    Returns ``{"server": …, "root": <super admin client>, "Alpha": {"company": id, "domain": Paris's id, <other domain>: id},
    "Bravo": {…}, <login>: {"id": id, "user": <the created user>, "client": <the user's client>}}``.  A domain other
    than Paris is created in its company when a person first names it; ``user_fields(login)`` adds fields to the user.
    """
    server = await twp_app()
    root = await server.admin()
    out: dict[str, Any] = {"server": server, "root": root}
    for company in ("Alpha", "Bravo"):
        c = await root.create("companies", name=company)
        d = await root.create("domains", company_id=c["id"], name="Paris")
        out[company] = {"company": c["id"], "domain": d["id"]}
    for login, company, *domain in people:
        where = out[company]
        name = domain[0] if domain else "Paris"
        if name == "Paris":
            domain_id = where["domain"]
        else:
            if name not in where:
                where[name] = (await root.create("domains", company_id=where["company"], name=name))["id"]
            domain_id = where[name]
        user = await root.create("users", domain_id=domain_id, login=login, **user_fields(login))
        out[login] = {"id": user["id"], "user": user, "client": server.user_client(user["id"])}
    return out
