"""Test-kit helpers for SMS providers: a started server, a tenant allowed to send, waiting for a status.

A provider package's tests typically read::

    from twpcore.testing.sms import start_sms, sms_tenant, wait_sms_status

    server = await start_sms(twp_app, {"main": {"provider": "mine", ...}})
    alice = await sms_tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=202)
    await wait_sms_status(alice, queued["id"], "sent")
"""

from __future__ import annotations

import asyncio
from typing import Any

FAST_SMS = {"sms_poll_interval": "20ms", "sms_retry_delay": "50ms", "sms_retry_max_delay": "200ms", "sms_send_timeout": "5s"}
"""``[plugins.notifications]`` timings short enough for tests."""


async def start_sms(twp_app: Any, providers: dict[str, Any], **options: Any) -> Any:
    """A started server with these ``[sms.providers.*]`` tables and fast outbox timings."""
    return await twp_app(config={"plugins": {"notifications": {**FAST_SMS, **options}}, "sms": {"providers": providers}})


async def sms_tenant(server: Any, *, company: str = "ACME", domain: str = "Paris") -> Any:
    """Company ``ACME``, domain ``Paris`` (matching providers' ``company``/``domain``), user alice allowed to send; alice's client."""
    admin = await server.admin()
    c = await admin.create("companies", name=company)
    d = await admin.create("domains", company_id=c["id"], name=domain)
    await admin.create("users", domain_id=d["id"], login="alice", password="alice-password-1")
    await admin.create("parameter_values", name="AuthorizeSms", scope="domain", scope_id=d["id"], value="Yes")
    return await server.login("alice", "alice-password-1")


async def wait_sms_status(client: Any, ident: int, statuses: str | tuple[str, ...], timeout: float = 5.0) -> dict[str, Any]:
    """Poll ``GET /api/v1/sms/{ident}`` until its status is one of ``statuses``; fail naming the last status."""
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    msg: dict[str, Any] = {}
    for _ in range(int(timeout / 0.02)):
        msg = await client.get(f"/api/v1/sms/{ident}")
        if msg["status"] in statuses:
            return msg
        await asyncio.sleep(0.02)
    raise AssertionError(f"SMS {ident} is {msg.get('status')} ({msg.get('reason')}), expected {statuses}")
