"""Events on every node: the event bus's transport to a Redis stream.

Each node publishes on its own in-process bus as before; the bus hands every event it
publishes itself (``Event.origin`` is None) to ``StreamTransport.send``, which queues it
without blocking.  A writer task appends the queued events, in order, to one stream
(``XADD <prefix>:events MAXLEN ~ N``); a reader task follows the stream from where this
node left it (``XREAD BLOCK`` from its last id, kept in memory) and publishes the other
nodes' events on the local bus with ``origin`` set, so each event reaches every node's
WebSocket clients and observers once, in the order its node published it (a call's events
all come from the node owning its link, hence in order).

Loss model: events queued while Redis is unreachable wait in memory (``max_queued``; past
that the oldest are dropped and counted); a reader that cannot reach Redis, or finds that
the stream was trimmed past its position, tells every local subscriber ``system.resync``.
Events of a PBX link carry the fencing token of the lease under which they were sent; a
reader drops those whose token is lower than the highest it has seen for that link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twpcore.events import Event, EventBus

log = logging.getLogger(__name__)
LINK_CATEGORIES = frozenset({"call", "device", "presence", "link"})
"""Categories whose events come from a PBX link, and carry its fencing token."""


class StreamTransport:
    """Sends this node's events to the stream and publishes the other nodes' events locally."""

    def __init__(self, redis: Any, prefix: str, node: str, bus: EventBus, fence_of: Callable[[str], int],
                 maxlen: int = 100_000, max_queued: int = 100_000):
        self.redis = redis
        self.key = f"{prefix}:events"
        self.node = node
        self.bus = bus
        self.fence_of = fence_of
        """The fencing token under which this node holds a link's lease (0 when it does not)."""
        self.maxlen = maxlen
        self.max_queued = max_queued
        self.queued: deque[tuple[str, str, str]] = deque()
        self.sent = 0
        self.received = 0
        self.dropped = 0
        """Events of this node never written (the queue overflowed while Redis was away)."""
        self.fenced = 0
        """Events of another node refused: their link's token was older than one already seen."""
        self.resyncs = 0
        self.connected = False
        self.last_error: str | None = None
        self.last_id = "$"
        self.highest: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- sending -------------------------------------------------------------------
    def send(self, event: Event) -> None:
        if event.category == "system":  # a node's own messages to its own subscribers
            return
        link = str(event.data.get("link") or "") if event.category in LINK_CATEGORIES else ""
        body = json.dumps({"type": event.type, "data": event.data, "company_id": event.company_id, "domain_id": event.domain_id,
                           "user_ids": sorted(event.user_ids), "at": event.at}, default=str)
        self.queued.append((body, link, str(self.fence_of(link)) if link else "0"))
        if len(self.queued) > self.max_queued:
            self.queued.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.error("cluster events: %d event(s) of this node dropped, Redis has not accepted writes for a while (%s)",
                          self.dropped, self.last_error)
        self._wake.set()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queued:
                batch = [self.queued[i] for i in range(min(500, len(self.queued)))]
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for body, link, fence in batch:
                            pipe.xadd(self.key, {"n": self.node, "e": body, "l": link, "f": fence}, maxlen=self.maxlen, approximate=True)
                        await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis away: keep the events, try again
                    self._failed(exc)
                    await asyncio.sleep(0.5)
                    continue
                for _ in batch:
                    self.queued.popleft()
                self.sent += len(batch)

    # -- receiving -----------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            try:
                if self.last_id == "$":
                    info = await self.redis.xinfo_stream(self.key) if await self.redis.exists(self.key) else None
                    self.last_id = _text(info["last-generated-id"]) if info else "0-0"
                reply = await self.redis.xread({self.key: self.last_id}, count=1000, block=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: our clients may miss other nodes' events
                if self.connected or self.last_error is None:
                    self._failed(exc)
                    self.resync(f"this node lost Redis ({exc}); events of other nodes may be missing")
                await asyncio.sleep(0.5)
                continue
            if not self.connected:
                self.connected = True
                log.info("cluster events: reading the stream %s again from %s", self.key, self.last_id)
                await self._check_gap()
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    self.last_id = _text(entry_id)
                    self._deliver(fields)
            if reply and len(reply[0][1]) >= 1000:
                await self._check_gap()

    async def _check_gap(self) -> None:
        """Resync when the stream was trimmed past this node's position (it fell too far behind)."""
        try:
            info = await self.redis.xinfo_stream(self.key) if await self.redis.exists(self.key) else None
        except Exception:  # noqa: BLE001 - checked again on the next reconnection
            return
        first = info.get("first-entry") if info else None
        if first and _older(self.last_id, _text(first[0])):
            self.resync(f"this node fell behind the event stream (at {self.last_id}, oldest kept {_text(first[0])})")

    def _deliver(self, fields: dict[Any, Any]) -> None:
        f = {_text(k): _text(v) for k, v in fields.items()}
        if f.get("n") == self.node:
            return
        link, fence = f.get("l") or "", int(f.get("f") or 0)
        if link:
            if fence < self.highest.get(link, 0):
                self.fenced += 1
                return
            self.highest[link] = fence
        try:
            raw = json.loads(f["e"])
            event = Event(raw["type"], raw["data"], raw["company_id"], raw["domain_id"], frozenset(raw["user_ids"]), at=raw["at"],
                          origin=f.get("n") or "?")
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cluster events: an entry of the stream could not be read (%s); skipped", exc)
            return
        self.received += 1
        self.bus.publish(event)

    def resync(self, reason: str) -> None:
        """Tell every local subscriber (WebSocket clients, services) to fetch a fresh snapshot."""
        self.resyncs += 1
        log.warning("cluster events: %s; subscribers told to resync", reason)
        self.bus.publish(Event("system.resync", {"reason": reason, "dropped": None}))

    def _failed(self, exc: BaseException) -> None:
        if self.connected or self.last_error is None:
            log.warning("cluster events: Redis unreachable: %s", exc)
        self.connected = False
        self.last_error = f"{type(exc).__name__}: {exc}"

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer(), name="cluster-events-writer"),
                       loop.create_task(self._reader(), name="cluster-events-reader")]
        self.bus.transport = self

    async def stop(self, flush_for: float = 2.0) -> None:
        self.bus.transport = None
        deadline = time.monotonic() + flush_for
        while self.queued and self.connected and time.monotonic() < deadline:  # noqa: ASYNC110 - the writer empties it; a short wait at shutdown
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def health(self) -> dict[str, Any]:
        return {"connected": self.connected, "sent": self.sent, "received": self.received, "queued": len(self.queued),
                "dropped": self.dropped, "fenced": self.fenced, "resyncs": self.resyncs, "last_error": self.last_error}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _older(a: str, b: str) -> bool:
    """Stream id ``a`` comes strictly before ``b``, and the entries between them are gone."""
    ma, sa_ = (int(x) for x in a.split("-"))
    mb, sb = (int(x) for x in b.split("-"))
    return (ma, sa_) < (mb, sb) and a != "0-0"
