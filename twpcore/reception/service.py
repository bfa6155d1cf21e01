"""The reception service: voicemail counters, phone queue records, the bosses' calls for secretaries, interception.

- **Voicemail** (guide 9.1.4, 9.1.5): the telephony service hands it every ``message_waiting``
  event of a supervised device (``TelephonyService.on_message_waiting``); the device's
  mailbox counter is stored (``voicemail_boxes``): one more message when the PBX does not
  count, the PBX's count when it does, zero when the mailbox is emptied.  The e-mail alert
  is ``twpcore.mail``'s, fed by the ``device.voicemail`` event the call model publishes.
- **Phone queues** (guide 9.2.2): every call arriving at a queue's device is a row of
  ``phone_queue_calls`` until it leaves: taken by a user through TWP (``taken``),
  distributed or diverted by the PBX (``distributed``), answered at the queue's device
  (``answered``) or hung up while waiting (``abandoned``); the statistics are read from it.
- **Boss / secretary** (guide 9.1.7): a call event of a boss's device is repeated as a
  ``supervision.call`` event to the users who see the boss's calls, with the caller's
  number and the name found in the directories of their intercom group.  Drivers without
  the ``details_at_ringing`` capability (CSTA) give the caller once the call is answered;
  until then the event says ``details: false`` and carries no caller (A5000 VTI-XML gives it
  while the phone rings).
- **Interception**: a directed pickup through the driver of the ringing device's link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from twpcore.directory.fields import display_name
from twpcore.directory.index import reverse as index_reverse
from twpcore.events import Event, EventBus
from twpcore.parameters import ParameterRegistry
from twpcore.reception import rules
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.telephony.events import PbxEvent
from twpcore.telephony.service import Device, TelephonyService

log = logging.getLogger(__name__)

OPEN_STATES = ("queued", "alerting", "initiated")
"""States of a call still waiting at a queue's device."""
ANSWERED = ("connected", "held")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReceptionService:
    def __init__(self, telephony: TelephonyService, events: EventBus, parameters: ParameterRegistry, directories: Any):
        self.telephony = telephony
        """Devices, links, the call model and call control."""
        self.events = events
        """Call events are read here; ``supervision.call`` and ``device.voicemail_count`` events are published here."""
        self.parameters = parameters
        self.directories = directories
        """Reverse lookup of the callers of bosses' calls (``DirectoryService``: ``views``, ``keys``), None for none."""
        self.queues: dict[tuple[int, str], int] = {}
        """(domain id, queue number) → phone queue id."""
        self.secretaries: dict[int, set[int]] = {}
        """Boss user id → users who see its calls."""
        self.taking: dict[tuple[int, str], int] = {}
        """(queue id, call id) → the user whose pickup of a queued call is in flight."""
        self._tasks: list[asyncio.Task] = []
        self._writes: set[asyncio.Task] = set()
        telephony.on_message_waiting = self.on_message_waiting

    @property
    def store(self) -> Store:
        store = self.telephony.store
        if store is None:
            raise RuntimeError("the reception service has no store: the kernel has not started it")
        return store

    async def start(self) -> None:
        await self.refresh()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._follow_calls()))
        self._tasks.append(loop.create_task(self._follow_admin()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._writes, return_exceptions=True)
        self._tasks.clear()

    async def drain(self) -> None:
        """Wait until the store writes already started are done (tests, shutdown)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def refresh(self) -> None:
        def read(conn: sa.Connection) -> tuple[dict[tuple[int, str], int], dict[int, set[int]]]:
            q = t.phone_queues
            queues = {(r.domain_id, r.number): r.id for r in conn.execute(sa.select(q.c.id, q.c.domain_id, q.c.number).where(q.c.number != ""))}
            return queues, rules.supervisors(conn, self.parameters)

        self.queues, self.secretaries = await self.store.read(read)

    async def _follow_admin(self) -> None:
        sub = self.events.subscribe(lambda e: e.type.startswith("admin.") or e.type == "system.resync", name="reception admin")
        try:
            while True:
                await sub.get()
                while not sub.queue.empty():
                    await sub.get()
                try:
                    await self.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep the previous maps; the next change tries again
                    log.exception("reception: refresh after an admin change failed")
        finally:
            self.events.unsubscribe(sub)

    async def _follow_calls(self) -> None:
        sub = self.events.subscribe(lambda e: e.type.startswith("call."), name="reception calls", queue_size=10000)
        try:
            while True:
                event = await sub.get()
                try:
                    await self._on_call(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one odd event must not stop queue records or supervision
                    log.exception("reception: %s event %s not handled", event.type, event.id)
        finally:
            self.events.unsubscribe(sub)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # -- voicemail ---------------------------------------------------------------------
    def on_message_waiting(self, dev: Device, event: PbxEvent) -> None:
        """Called by the telephony service for each ``message_waiting`` event of a supervised device."""
        self._spawn(self._count(dev, event.messages, event.calling))

    async def _count(self, dev: Device, messages: int | None, caller: str | None) -> None:
        def write(conn: sa.Connection) -> int:
            box = t.voicemail_boxes
            old = conn.execute(sa.select(box.c.new_messages).where(box.c.device_id == dev.id)).scalar()
            count = max(0, messages) if messages is not None else (old or 0) + 1
            values = {"new_messages": count, "updated_at": _now(), **({"last_caller": caller} if caller and count else {})}
            if old is None:
                conn.execute(box.insert().values(device_id=dev.id, **values))
            else:
                conn.execute(box.update().where(box.c.device_id == dev.id).values(**values))
            return count

        count = await self.store.run(write)
        users = frozenset({dev.user_id}) if dev.user_id else frozenset()
        self.events.publish(Event("device.voicemail_count", {"device": dev.number, "new_messages": count}, dev.company_id, dev.domain_id, users))

    # -- phone queues and supervision ---------------------------------------------------
    async def _on_call(self, event: Event) -> None:
        if event.domain_id is None or event.origin is not None:
            return  # another node's call: the node that owns the link records it and tells the secretaries
        device = str(event.data.get("device") or "")
        call = event.data.get("call") or {}
        queue = self.queues.get((event.domain_id, device))
        if queue is not None and call.get("call_id"):
            await self.store.run(self._record, queue, event.type, call, event.data.get("cause"))
        dev = self.telephony.devices.get((event.domain_id, device))
        if dev is not None and dev.user_id in self.secretaries and call.get("call_id"):
            await self._supervise(dev, event, call)

    def _record(self, conn: sa.Connection, queue: int, kind: str, call: dict[str, Any], cause: Any) -> None:
        pq = t.phone_queue_calls
        call_id = str(call["call_id"])
        row = conn.execute(sa.select(pq.c.id).where(pq.c.queue_id == queue, pq.c.call_id == call_id, pq.c.left_at.is_(None))
                           .order_by(pq.c.id.desc()).limit(1)).first()
        state = call.get("state")
        if row is None:
            if kind in ("call.queued", "call.delivered") and state in OPEN_STATES:
                started = call.get("started_at")
                arrived = dt.datetime.fromtimestamp(float(started), dt.UTC) if started else _now()
                conn.execute(pq.insert().values(queue_id=queue, call_id=call_id, caller=call.get("remote"), arrived_at=arrived))
            return
        outcome, taker = None, None
        if kind in ("call.diverted", "call.transferred", "call.conferenced"):
            taker = self.taking.pop((queue, call_id), None)
            outcome = "taken" if taker is not None else "distributed"
        elif state in ANSWERED:
            outcome = "answered"
        elif kind in ("call.cleared", "call.failed") or state == "cleared":
            outcome = "abandoned" if cause not in ("link_down", "monitor_lost", "unknown_after_reconnect", "not_monitored") else "lost"
        if outcome is not None:
            conn.execute(pq.update().where(pq.c.id == row.id).values(left_at=_now(), outcome=outcome, taken_by=taker))

    async def _supervise(self, dev: Device, event: Event, call: dict[str, Any]) -> None:
        link = self.telephony.links.get(dev.link) if dev.link else None
        at_ringing = bool(link and "details_at_ringing" in link.driver.capabilities)
        state = call.get("state")
        details = at_ringing or state in ANSWERED or bool(call.get("answered_at"))
        remote = call.get("remote") if details else None
        watchers = sorted(self.secretaries.get(dev.user_id or 0, ()))
        if not watchers:
            return
        names: dict[int, dict[str, Any] | None] = {}
        if remote:
            names = await self.store.read(self._names, watchers, dev, str(remote))
        by_name: dict[str, tuple[dict[str, Any] | None, set[int]]] = {}
        for user in watchers:
            found = names.get(user)
            key = repr(sorted(found.items())) if found else ""
            by_name.setdefault(key, (found, set()))[1].add(user)
        for found, users in by_name.values():
            data = {"boss_user_id": dev.user_id, "device": dev.number, "call_id": call.get("call_id"), "event": event.type,
                    "state": state, "direction": call.get("direction"), "details": details, "caller": remote,
                    "caller_name": found.get("name") if found else None, "contact": found, "started_at": call.get("started_at"),
                    "answered_at": call.get("answered_at"), "to": event.data.get("to")}
            self.events.publish(Event("supervision.call", data, dev.company_id, dev.domain_id, frozenset(users)))

    def _names(self, conn: sa.Connection, watchers: list[int], dev: Device, number: str) -> dict[int, dict[str, Any] | None]:
        out: dict[int, dict[str, Any] | None] = {}
        for user in watchers:
            ids = rules.name_directories(conn, self.parameters, user, dev.id)
            out[user] = self.lookup(conn, ids, dev.domain_id, number)
        return out

    def lookup(self, conn: sa.Connection, directory_ids: list[int], domain_id: int, number: str) -> dict[str, Any] | None:
        """The contact of ``number`` in these directories only (the intercom group's, guide 9.1.7), or None."""
        if not directory_ids or self.directories is None or not number:
            return None
        views = self.directories.views(directory_ids, None, frozenset())
        hit = index_reverse(conn, views, self.directories.keys(domain_id, number), True)
        if hit is None:
            return None
        name = display_name({"last_name": hit.last_name, "first_name": hit.first_name, "company": hit.company}) or None
        return {"contact_id": hit.contact_id, "directory_id": hit.view.directory_id, "directory": hit.view.name, "name": name,
                "company": hit.company}

    # -- interception ------------------------------------------------------------------
    async def pickup(self, ringing: Device, call_id: str, requesting: Device, queue_id: int | None = None, user_id: int | None = None) -> Any:
        """Take ``call_id`` ringing or queued at ``ringing`` to ``requesting`` (``TelephonyError`` when it cannot)."""
        if queue_id is not None and user_id is not None:
            self.taking[(queue_id, call_id)] = user_id
        try:
            return await self.telephony.run(ringing, "directed_pickup", "directed_pickup", call_id, requesting.number)
        except BaseException:
            if queue_id is not None:
                self.taking.pop((queue_id, call_id), None)
            raise
