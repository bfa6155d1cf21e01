"""``TeamworkService``: chat, the event journal and their retention, over the store and the event bus."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twpcore.clock import next_daily
from twpcore.dialing import DialingPlans
from twpcore.events import Event, EventBus
from twpcore.parameters import ParameterRegistry
from twpcore.principals import Principal
from twpcore.store import Store
from twpcore.teamwork import chat, journal, retention
from twpcore.teamwork.access import TeamworkError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TeamworkService:
    def __init__(self, parameters: ParameterRegistry, events: EventBus, dialing_plans: DialingPlans):
        self.parameters = parameters
        self.events = events
        """``chat.message``, ``chat.read`` and ``notification.received`` go out here, to the users concerned only."""
        self.dialing_plans = dialing_plans
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``)."""
        self._task: asyncio.Task | None = None

    def _db(self) -> Store:
        if self.store is None:
            raise TeamworkError(503, "not_ready", "the server is starting: its store is not open yet; retry in a moment")
        return self.store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._db().run(fn, *args)

    @staticmethod
    def _user(who: Principal) -> int:
        if who.is_admin:
            raise TeamworkError(403, "forbidden", "chat, notes and notifications belong to users; log in as a user", None)
        return who.id

    # -- chat (user guide 2.6) -------------------------------------------------------------
    async def send(self, who: Principal, to: int, text: str) -> dict[str, Any]:
        message, company_id = await self._run(chat.send, self.parameters, self._user(who), to, text)
        self.events.publish(Event("chat.message", message, company_id, None, frozenset({message["from"]["id"], message["to"]["id"]})))
        return message

    async def history(self, who: Principal, other: int, before: int | None, limit: int) -> dict[str, Any]:
        return await self._db().read(chat.history, self._user(who), other, before, limit)

    async def unread(self, who: Principal, limit: int) -> dict[str, Any]:
        return await self._db().read(chat.unread, self._user(who), limit)

    async def conversations(self, who: Principal) -> dict[str, Any]:
        return await self._db().read(chat.conversations, self._user(who))

    async def mark_read(self, who: Principal, other: int, up_to: int | None) -> dict[str, Any]:
        receipt = await self._run(chat.mark_read, self._user(who), other, up_to)
        company_id = receipt.pop("company_id")
        if receipt["read"]:
            self.events.publish(Event("chat.read", dict(receipt), company_id, None, frozenset({receipt["by"], receipt["with"]})))
        return receipt

    # -- the event journal (user guide 4.1) ------------------------------------------------
    async def post(self, who: Principal, body: dict[str, Any]) -> dict[str, Any]:
        item, company_id, recipients = await self._run(journal.post, self.parameters, self.dialing_plans, self._user(who), body)
        if recipients:
            self.events.publish(Event("notification.received", item, company_id, None, recipients))
        return item

    async def delete(self, who: Principal, ident: int) -> None:
        await self._run(journal.delete, self._user(who), ident)

    async def received(self, who: Principal, before: int | None, limit: int) -> dict[str, Any]:
        return await self._db().read(journal.received, self._user(who), before, limit)

    async def general(self, who: Principal, limit: int) -> dict[str, Any]:
        return await self._db().read(journal.sent_general, self._user(who), limit)

    async def journal(self, who: Principal, subject: dict[str, Any], calls: bool, limit: int) -> dict[str, Any]:
        return await self._db().read(journal.journal, self.dialing_plans, self._user(who), subject, calls, limit)

    # -- retention ----------------------------------------------------------------------
    async def purge(self, now: float | None = None) -> dict[str, int]:
        """Apply the retention now (``now`` may be given to look ahead); returns what was deleted."""
        counts = await self._run(retention.purge, self.parameters, time.time() if now is None else now)
        if any(counts.values()):
            log.info("teamwork purge: %(chat_messages)d instant messages and %(journal_notes)d notes or notifications deleted", counts)
        return counts

    async def _purger(self) -> None:
        while True:
            try:
                hhmm = await self._run(retention.cleaning_hour, self.parameters)
                await asyncio.sleep(max(1.0, next_daily(hhmm, time.time()) - time.time()))
                await self.purge()
            except asyncio.CancelledError:
                raise
            except Exception:  # try again in an hour
                log.exception("teamwork purge failed")
                await asyncio.sleep(3600)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._purger())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
