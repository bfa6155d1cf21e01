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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

if TYPE_CHECKING:
    from twpcore.principals import Principal

log = logging.getLogger(__name__)
_ids = itertools.count(1)

OBSERVED_CATEGORIES = frozenset({"call", "device", "presence"})
"""Event categories delivered to plugin observer hooks."""
OBSERVER_TIMEOUT = 5.0
"""Seconds one plugin observer may take over one event."""


EVENT_SCHEMA_VERSION = 1
"""Version of the event JSON shape (``"v"`` in every event sent on the WebSocket or by webhooks).

Adding a field keeps the version; renaming or removing one, or changing its meaning, bumps it."""


@attrs.frozen
class Event:
    """Something that happened, with who may see it.

    ``Event(type, data, ...)`` builds the frozen class of the type's category:
    ``Event("call.delivered", ...)`` is a ``CallEvent``, ``Event("admin.user.created", ...)``
    an ``AdminEvent``; a category without its own class stays an ``Event``.
    """

    type: str
    """Dotted type: ``call.delivered``, ``device.forwarding``, ``admin.user.created``..."""
    data: dict[str, Any] = attrs.field(factory=dict)
    """The payload sent to clients."""
    company_id: int | None = None
    """The company it belongs to; ``None`` for server-wide events (super users only)."""
    domain_id: int | None = None
    """The domain it belongs to, when it belongs to one."""
    user_ids: frozenset[int] = frozenset()
    """Users allowed to see it (the device owner, supervisors with rights...)."""
    id: int = attrs.field(factory=lambda: next(_ids))
    """A number that grows with each event of this server process."""
    at: float = attrs.field(factory=time.time)
    """When it happened (Unix time)."""
    origin: str | None = None
    """The cluster node that published it when it came from another node (``[cluster]``); ``None``: published by this process."""

    CATEGORY: ClassVar[str] = ""
    """The category (first part of ``type``) this class stands for; ``""`` for any other."""

    def __new__(cls, type: str, *args: Any, **kwargs: Any) -> Event:  # `type` shadows the builtin: it is the field's name
        if cls is Event:
            cls = EVENT_CLASSES.get(type.split(".", 1)[0], Event)
        return super().__new__(cls)

    @property
    def category(self) -> str:
        """The first part of ``type``: ``call``, ``device``, ``presence``, ``admin``, ``directory``..."""
        return self.type.split(".", 1)[0]

    def as_json(self) -> dict[str, Any]:
        """The event's one JSON shape, on the WebSocket and in webhook bodies (version ``EVENT_SCHEMA_VERSION``)."""
        return {"v": EVENT_SCHEMA_VERSION, "id": self.id, "type": self.type, "at": self.at, "company_id": self.company_id,
                "domain_id": self.domain_id, "data": self.data}

    def _text(self, name: str) -> str | None:
        value = self.data.get(name)
        return None if value is None else str(value)


@attrs.frozen
class CallEvent(Event):
    """A call event of a monitored device: ``call.originated``, ``call.delivered``, ``call.cleared``..."""

    CATEGORY: ClassVar[str] = "call"

    @property
    def device(self) -> str | None:
        """The monitored device the event is about."""
        return self._text("device")

    @property
    def call_id(self) -> str | None:
        """The PBX's call identifier of the device's connection."""
        return self._text("call_id")


@attrs.frozen
class DeviceEvent(Event):
    """A device event: forwarding or do-not-disturb changed, monitoring started or lost, voicemail."""

    CATEGORY: ClassVar[str] = "device"

    @property
    def device(self) -> str | None:
        """The device the event is about."""
        return self._text("device")


@attrs.frozen
class PresenceEvent(Event):
    """A change of a device's telephony presence (``presence.changed``: idle, ringing, busy...)."""

    CATEGORY: ClassVar[str] = "presence"

    @property
    def device(self) -> str | None:
        """The device whose presence changed."""
        return self._text("device")

    @property
    def presence(self) -> str | None:
        """The new presence: ``idle``, ``ringing``, ``busy``..."""
        return self._text("presence")


@attrs.frozen
class AdminEvent(Event):
    """An administration change: ``admin.<resource>.created`` / ``updated`` / ``deleted`` / ``imported``."""

    CATEGORY: ClassVar[str] = "admin"


@attrs.frozen
class DirectoryEvent(Event):
    """A directory event: ``directory.synced`` with the sync report."""

    CATEGORY: ClassVar[str] = "directory"


@attrs.frozen
class LinkEvent(Event):
    """A PBX link went up or down: ``link.up``, ``link.down``."""

    CATEGORY: ClassVar[str] = "link"


@attrs.frozen
class SmsEvent(Event):
    """An SMS changed status: ``sms.sent``, ``sms.delivered``, ``sms.failed``..."""

    CATEGORY: ClassVar[str] = "sms"


@attrs.frozen
class SystemEvent(Event):
    """A message of the server itself, such as ``system.resync`` to a subscriber that fell behind."""

    CATEGORY: ClassVar[str] = "system"


@attrs.frozen
class ChatEvent(Event):
    """An instant message (``chat.message``) or its read receipt (``chat.read``); private, like every ``PRIVATE_CATEGORIES`` event."""

    CATEGORY: ClassVar[str] = "chat"


@attrs.frozen
class NotificationEvent(Event):
    """A notification of the event journal reached its recipients (``notification.received``)."""

    CATEGORY: ClassVar[str] = "notification"


@attrs.frozen
class AlerterEvent(Event):
    """The Alerter screen pop of a ringing call (``alerter.card``) and its end (``alerter.closed``)."""

    CATEGORY: ClassVar[str] = "alerter"


@attrs.frozen
class UserPresenceEvent(Event):
    """A user's TWP presence changed (``user_presence.changed``: state, message, source); the company's users receive it."""

    CATEGORY: ClassVar[str] = "user_presence"


PRIVATE_CATEGORIES = frozenset({"chat", "notification", "alerter"})
"""Categories seen only by the users the event names, never by the company's administrators (private messages)."""

EVENT_CLASSES: dict[str, type[Event]] = {c.CATEGORY: c for c in (CallEvent, DeviceEvent, PresenceEvent, AdminEvent, DirectoryEvent,
                                                                  LinkEvent, SmsEvent, SystemEvent, ChatEvent, NotificationEvent,
                                                                  AlerterEvent, UserPresenceEvent)}
"""The class of each event category."""


def visible_to(principal: Principal, event: Event) -> bool:
    """May this principal (``twpcore.auth.Principal``) receive the event?"""
    if principal.is_admin:
        return event.category not in PRIVATE_CATEGORIES and principal.manages(event.company_id)
    return principal.id in event.user_ids


@attrs.define(eq=False)
class Subscription:
    """A subscriber's queue; ``lagging`` is set when it fell behind and was told to resync."""

    accepts: Callable[[Event], bool]
    queue: asyncio.Queue[Event]
    name: str = "subscriber"
    dropped: int = 0
    lagging: bool = False

    async def get(self) -> Event:
        event = await self.queue.get()
        if event.type == "system.resync":
            self.lagging = False
        return event


class EventTransport(Protocol):
    """Carries this process's events to the other nodes of a cluster (``twpcore.cluster.streams``); ``send`` never blocks."""

    def send(self, event: Event) -> None: ...


class EventBus:
    def __init__(self, queue_size: int = 1000):
        self.queue_size = queue_size
        self.subscriptions: list[Subscription] = []
        self.published = 0
        self.transport: EventTransport | None = None
        """Set in a cluster only: events published here (``origin`` None) are also sent to the other nodes."""

    def subscribe(
        self, accepts: Callable[[Event], bool] = lambda e: True, *, name: str = "subscriber", queue_size: int | None = None
    ) -> Subscription:
        sub = Subscription(accepts, asyncio.Queue(queue_size or self.queue_size), name)
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)

    def publish(self, event: Event) -> None:
        self.published += 1
        if self.transport is not None and event.origin is None:
            self.transport.send(event)
        for sub in list(self.subscriptions):
            try:
                if not sub.accepts(event):
                    continue
            except Exception:  # one subscriber's broken filter must not stop the others
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
                sub.queue.put_nowait(
                    Event(
                        "system.resync",
                        {"reason": "you fell behind; fetch a fresh snapshot", "dropped": sub.dropped},
                        event.company_id,
                        event.domain_id,
                        event.user_ids,
                    )
                )
                log.warning("event subscriber %s fell behind; told to resync", sub.name)


def subscribe_observers(bus: EventBus) -> Subscription:
    """The plugin observers' subscription; take it before anything publishes so no event is missed."""
    return bus.subscribe(lambda e: e.category in OBSERVED_CATEGORIES, name="plugin observers", queue_size=10000)


async def run_observers(sub: Subscription, bus: EventBus, hooks: Any) -> None:
    """Deliver call, device and presence events to plugin observer hooks (``twpcore.plugins.Hooks.observe``), in order.

    An async observer still running after ``OBSERVER_TIMEOUT`` seconds is cancelled and
    counted as an error of its plugin, so one slow plugin cannot starve the others.
    """
    try:
        while True:
            event = await sub.get()
            if event.category in OBSERVED_CATEGORIES:
                await hooks.observe(event, OBSERVER_TIMEOUT)
            elif event.type == "system.resync":
                log.warning("plugin observers fell behind: %s events were not delivered to plugins", event.data.get("dropped"))
    finally:
        bus.unsubscribe(sub)
