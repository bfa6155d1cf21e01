"""The in-process event bus.

Publishers (drivers, the admin API, the kernel) call ``bus.publish(event)``, which never
blocks and never waits for a subscriber.  Each subscriber has a bounded queue; one that
falls behind loses its queue and receives a single ``resync`` event telling it to fetch a
fresh snapshot.  Plugin observers (``twp_call_event`` and friends) are one subscriber,
served by their own task, so a slow webhook never delays PBX processing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Callable

import attrs

log = logging.getLogger(__name__)
_ids = itertools.count(1)

CATEGORY_HOOKS = {"call": "twp_call_event", "device": "twp_device_event", "presence": "twp_presence_event"}
OBSERVER_TIMEOUT = 5.0
"""Seconds one plugin observer may take over one event."""


@attrs.frozen
class Event:
    """Something that happened, with who may see it."""

    type: str
    """Dotted type: ``call.delivered``, ``device.forwarding``, ``admin.user.created``..."""
    data: dict[str, Any] = attrs.field(factory=dict)
    """The payload sent to clients."""
    company_id: int | None = None
    """The company it belongs to; ``None`` for server-wide events (super users only)."""
    domain_id: int | None = None
    user_ids: frozenset[int] = frozenset()
    """Users allowed to see it (the device owner, supervisors with rights...)."""
    id: int = attrs.field(factory=lambda: next(_ids))
    at: float = attrs.field(factory=time.time)

    @property
    def category(self) -> str:
        return self.type.split(".", 1)[0]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": self.at, "company_id": self.company_id,
                "domain_id": self.domain_id, "data": self.data}


def visible_to(principal: Any, event: Event) -> bool:
    """May this principal (``twpcore.auth.Principal``) receive the event?"""
    if principal.is_admin:
        return principal.manages(event.company_id)
    return principal.id in event.user_ids


@attrs.define(eq=False)
class Subscription:
    """A subscriber's queue; ``lagging`` is set when it fell behind and was told to resync."""

    accepts: Callable[[Event], bool]
    queue: asyncio.Queue
    name: str = "subscriber"
    dropped: int = 0
    lagging: bool = False

    async def get(self) -> Event:
        event = await self.queue.get()
        if event.type == "system.resync":
            self.lagging = False
        return event


class EventBus:
    def __init__(self, queue_size: int = 1000):
        self.queue_size = queue_size
        self.subscriptions: list[Subscription] = []
        self.published = 0

    def subscribe(self, accepts: Callable[[Event], bool] = lambda e: True, *, name: str = "subscriber", queue_size: int | None = None) -> Subscription:
        sub = Subscription(accepts, asyncio.Queue(queue_size or self.queue_size), name)
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)

    def publish(self, event: Event) -> None:
        self.published += 1
        for sub in list(self.subscriptions):
            try:
                if not sub.accepts(event):
                    continue
            except Exception:  # noqa: BLE001
                log.exception("event filter of %s failed", sub.name)
                continue
            if sub.lagging:
                sub.dropped += 1
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too far behind: drop what it has not read and tell it to start afresh.
                sub.dropped += sub.queue.qsize() + 1
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.lagging = True
                sub.queue.put_nowait(Event("system.resync", {"reason": "you fell behind; fetch a fresh snapshot", "dropped": sub.dropped}, event.company_id, event.domain_id, event.user_ids))
                log.warning("event subscriber %s fell behind; told to resync", sub.name)


def subscribe_observers(bus: EventBus) -> Subscription:
    """The plugin observers' subscription; take it before anything publishes so no event is missed."""
    return bus.subscribe(lambda e: e.category in CATEGORY_HOOKS, name="plugin observers", queue_size=10000)


async def run_observers(sub: Subscription, bus: EventBus, plugins: Any, app: Any) -> None:
    """Deliver call, device and presence events to plugin observer hooks, in order.

    An async observer still running after ``OBSERVER_TIMEOUT`` seconds is cancelled and
    counted as an error of its plugin, so one slow plugin cannot starve the others.
    """
    try:
        while True:
            event = await sub.get()
            hook = CATEGORY_HOOKS.get(event.category)
            if hook:
                await plugins.acall_each(hook, timeout=OBSERVER_TIMEOUT, event=event, app=app)
            elif event.type == "system.resync":
                log.warning("plugin observers fell behind: %s events were not delivered to plugins", event.data.get("dropped"))
    finally:
        bus.unsubscribe(sub)
