"""Who sees a device's presence live besides its owner: users granted one of its intercom groups (guide 7.4.4).

The telephony service adds these users to the presence and do-not-disturb events of the
device (``SHARED_CHANGES``; one dictionary lookup per event).  The map is computed for
the whole server in a few queries (``rights.intercom_watchers``) at start, and again
after any admin change that can alter it: grants, group and intercom group memberships,
users, devices, groups, intercom groups, domains, companies.  A burst of changes (an
import) costs one refresh.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twpcore import rights

log = logging.getLogger(__name__)

SHARED_CHANGES = frozenset({"presence.changed", "device.do_not_disturb"})
"""Event types of a device that its watchers receive; call events (numbers, contacts) stay with the owner."""
WATCHED = ("admin.authorization.", "admin.group.", "admin.intercom_group.", "admin.user.", "admin.device.", "admin.domain.", "admin.company.")
"""Admin event types after which the map is computed again."""


async def refresh(service: Any) -> None:
    service.watchers = await service.kernel.store.run(rights.intercom_watchers)


async def keep_watchers(service: Any) -> None:
    """Keep ``service.watchers`` in step with the grants (runs as a task of the telephony service)."""
    bus = service.kernel.events
    sub = bus.subscribe(lambda e: e.type.startswith(WATCHED) or e.type == "system.resync", name="intercom watchers")
    try:
        while True:
            try:
                await refresh(service)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the previous map and try again at the next change
                log.exception("intercom watchers: refresh failed; presence events keep the previous watchers")
            await sub.get()
            while not sub.queue.empty():
                await sub.get()
    finally:
        bus.unsubscribe(sub)
