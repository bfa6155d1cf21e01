"""Test-kit helpers for directory connectors: a domain to put directories in, a granted user, reverse look-ups.

A connector package's tests typically read::

    from twpcore.testing.directories import admin_and_domain, reverse

    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    directory = await admin.post("/api/v1/directories", {"domain_id": domain_id, "connector": "mine", ...}, status=201)
    await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (await reverse(admin, "+33140000042", domain_id=domain_id))["found"] is True
"""

from __future__ import annotations

import datetime as dt
from typing import Any

USER_PASSWORD = "a-long-password-1"
"""The password of the user ``directory_world`` creates."""


async def admin_and_domain(server: Any, *, company: str = "ACME", domain: str = "Paris") -> tuple[Any, int]:
    """A super admin's client and the id of a new domain of a new company."""
    admin, d = await _admin_and_domain(server, company, domain)
    return admin, d["id"]


async def _admin_and_domain(server: Any, company: str, domain: str) -> tuple[Any, dict[str, Any]]:
    admin = await server.admin()
    c = await admin.create("companies", name=company)
    return admin, await admin.create("domains", company_id=c["id"], name=domain)


async def directory_world(twp_app: Any, *, login: str = "alice") -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """A started server, its admin, domain ``Paris`` of company ``ACME`` and a user there (password ``USER_PASSWORD``)."""
    server = await twp_app()
    admin, domain = await _admin_and_domain(server, "ACME", "Paris")
    user = await admin.create("users", domain_id=domain["id"], login=login, password=USER_PASSWORD)
    return server, admin, domain, user


async def granted_directory(admin: Any, domain: dict[str, Any], user: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A new directory of ``domain`` (``fields`` as for ``POST /directories``) that ``user`` is authorized to read."""
    d = await admin.create("directories", domain_id=domain["id"], **fields)
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{d['id']}",
                       subject_type="user", subject_id=user["id"])
    return d


async def reverse(client: Any, number: str, *, domain_id: int | None = None) -> Any:
    """``GET /directories/reverse`` for ``number`` as ``client`` sees it (an admin names the domain)."""
    params = {"number": number}
    if domain_id is not None:
        params["domain_id"] = str(domain_id)
    return await client.get("/api/v1/directories/reverse", params=params)


def calendar_window() -> dict[str, str]:
    """Query ``from``/``to`` of the calendar API covering yesterday to six days ahead (midnight UTC)."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"from": (today - dt.timedelta(days=1)).isoformat(), "to": (today + dt.timedelta(days=6)).isoformat()}


async def calendar_world(twp_app: Any, connector: str, name: str, options: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], dict[str, Any],
                                                                                                    dict[str, Any]]:
    """A started server, its admin, Alice (Email ``alice@acme.example``, whose calendar the connector reads), Bob
    (no Email, granted Alice's calendar), both with password ``USER_PASSWORD``, and a private directory ``name`` of
    ``connector`` with ``options`` plus ``calendar = true``."""
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server)
    alice = await admin.create("users", domain_id=domain_id, login="alice", email="alice@acme.example", password=USER_PASSWORD)
    bob = await admin.create("users", domain_id=domain_id, login="bob", email="", password=USER_PASSWORD)
    await admin.create("authorizations", object_type="calendar", object_ref=f"user:{alice['id']}", subject_type="user", subject_id=bob["id"])
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": name, "connector": connector, "type": "private", "options": {**options, "calendar": True},
    }, status=201)
    return server, admin, alice, bob, directory
