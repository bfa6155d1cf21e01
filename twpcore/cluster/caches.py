"""Caches that follow changes made on other nodes (issue 20, item 4).

Most of what a node keeps in memory already follows the admin events of its bus: the
telephony service reloads devices on ``admin.device.*`` and ``admin.domain.*``, the
directory service recomputes visibility (rights, users, groups) on any ``admin.*`` and
dialing plans on ``admin.domain.*``, held-back PBX links start on ``admin.company.*``.
In a cluster those events arrive from the other nodes through the stream, so the same code
follows them.  What a node changes in place without an event is followed here, for events
that came from another node (``Event.origin`` set):

- ``admin.domain.*`` (a dialing plan saved is one): the compiled plan of the domain is forgotten;
- ``admin.directory.*`` and ``directory.synced``: the directory's row, schedule, contact
  counts and reverse-lookup cache are reloaded (``DirectoryService.changed``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from twpcore.dialing import DialingPlans
from twpcore.events import Event, EventBus

log = logging.getLogger(__name__)


class Directories(Protocol):
    async def changed(self, directory_id: int) -> None: ...


def _followed(event: Event) -> bool:
    return event.origin is not None and (event.type.startswith(("admin.domain.", "admin.directory.")) or event.type == "directory.synced")


async def follow_caches(events: EventBus, dialing_plans: DialingPlans, directories: Directories | None) -> None:
    """Forget or reload what another node's change made stale, until cancelled."""
    sub = events.subscribe(_followed, name="cluster caches", queue_size=10_000)
    try:
        while True:
            event = await sub.get()
            try:
                await _apply(event, dialing_plans, directories)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following whatever one reload did
                log.exception("cluster: following %s from node %s failed", event.type, event.origin)
    finally:
        events.unsubscribe(sub)


async def _apply(event: Event, dialing_plans: DialingPlans, directories: Directories | None) -> None:
    data: dict[str, Any] = event.data
    if event.type.startswith("admin.domain."):
        ident = data.get("id", event.domain_id)
        if isinstance(ident, int):
            dialing_plans.forget(ident)
    elif directories is not None:
        ident = data.get("directory_id") if event.type == "directory.synced" else data.get("id")
        if isinstance(ident, int):
            await directories.changed(ident)
