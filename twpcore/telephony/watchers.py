"""Who sees a device's events live besides its owner (guide 7.4.4, 7.4.5).

- Users granted one of the device's intercom groups get its presence and do-not-disturb
  events (``SHARED_CHANGES``), never its call details.
- Users granted a phone queue get the call events of the device with the queue's number
  (guide 9.2.2): calls arriving, waiting and leaving the queue.

The telephony service adds these users to the device's events (one dictionary lookup per
event).  The maps are computed for
the whole server in a few queries (``rights.intercom_watchers``, ``rights.queue_watchers``) at start, and again
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
WATCHED = ("admin.authorization.", "admin.group.", "admin.intercom_group.", "admin.phone_queue.", "admin.user.", "admin.device.",
           "admin.domain.", "admin.company.")
"""Admin event types after which the map is computed again."""


async def refresh(service: Any) -> None:
    def both(conn: Any) -> tuple[dict, dict]:
        return rights.intercom_watchers(conn), rights.queue_watchers(conn)

    assert service.store is not None  # the telephony service starts this task once it has the store
    service.watchers, service.queue_watchers = await service.store.read(both)


async def keep_watchers(service: Any) -> None:
    """Keep ``service.watchers`` in step with the grants (runs as a task of the telephony service)."""
    bus = service.events
    sub = bus.subscribe(lambda e: e.type.startswith(WATCHED) or e.type == "system.resync", name="intercom watchers")
    try:
        while True:
            try:
                await refresh(service)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the previous map and try again at the next change
                log.exception("intercom watchers: refresh failed; presence events keep the previous watchers")
            await sub.get()
            while not sub.queue.empty():
                await sub.get()
    finally:
        bus.unsubscribe(sub)
