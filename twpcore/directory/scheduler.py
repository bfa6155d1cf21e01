"""Directory scheduling (guide 8.2.1): daily and high-frequency syncs, retries, syncs of other processes.

:class:`Scheduling` is a part of ``DirectoryService`` (``service.py``): it runs the service's
deferred tasks (``_soon``), computes when each directory syncs next from its settings and the
``timeSynchronizationDirectories`` parameter, and notices syncs another process finished
(``twp directory sync``, another node) in ``directory_syncs``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import typing
from typing import Any

import sqlalchemy as sa

from twpcore.clock import next_daily
from twpcore.cluster.jobs import LOCAL_JOBS, Jobs, run_once
from twpcore.directory.errors import DirectoryError
from twpcore.store import schema as t

log = logging.getLogger("twpcore.directory.service")

SCHEDULED = ("daily", "interval")
"""The triggers of scheduled syncs."""


class Scheduling:
    """Deferred tasks and the sync schedule of the directory service."""

    jobs: Jobs = LOCAL_JOBS
    """Whether this process runs a scheduled sync now: always alone, one node at a time in a cluster (``Kernel`` sets it)."""

    if typing.TYPE_CHECKING:
        parameters: Any
        rows: dict[int, dict[str, Any]]
        tick: float
        _next: dict[int, tuple[float | None, float | None]]
        _last_start: dict[int, float]
        _wake: asyncio.Event
        _pending: dict[str, asyncio.Task[Any]]
        _active: dict[str, asyncio.Task[Any]]
        _again: dict[str, tuple[float, Any]]
        _stopping: bool
        _running: set[asyncio.Task[Any]]
        _seen_sync: int
        _own_syncs: set[int]
        read: Any
        sync: Any
        changed: Any
        connector_type: Any
        is_running: Any

    def _soon(self, key: str, delay: float, make: Any) -> None:
        """Run ``make()`` (a coroutine) after ``delay`` seconds, once per key.

        A newer request under the same key replaces one still waiting; a request made while
        ``make()`` of that key runs is kept and runs once it finished: a running sync is
        never cancelled (that would release its lock while its last write still ran in a
        thread, and leave its report saying the server was stopping).  The coroutine is
        only created when it is about to run, so a replaced request leaves no coroutine
        that was never awaited.
        """
        if self._stopping:
            return
        old = self._pending.get(key)
        if old is not None and not old.done():
            if self._active.get(key) is old:
                self._again[key] = (delay, make)
                return
            old.cancel()

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                self._active[key] = task
                await make()
            except DirectoryError as exc:
                log.info("%s: %s", key, exc.detail)
            except Exception:
                log.exception("directory task %s failed", key)
            finally:
                if self._pending.get(key) is task:
                    self._pending.pop(key, None)
                if self._active.get(key) is task:
                    self._active.pop(key, None)
                    again = self._again.pop(key, None)
                    if again is not None:
                        self._soon(key, *again)

        task = asyncio.get_running_loop().create_task(later())
        self._pending[key] = task

    async def _load_schedule(self) -> None:
        def run(conn: sa.Connection) -> tuple[dict[int, str], dict[int, float]]:
            times = (
                {
                    d: self.parameters.domain_value(conn, d, "timeSynchronizationDirectories").value
                    for d in {r["domain_id"] for r in self.rows.values()}
                }
                if "timeSynchronizationDirectories" in self.parameters.definitions
                else {}
            )
            s = t.directory_syncs
            last = {
                r.directory_id: r.started
                for r in conn.execute(
                    sa.select(s.c.directory_id, sa.func.max(s.c.started_at).label("started"))
                    .where(s.c.trigger.in_(SCHEDULED))
                    .group_by(s.c.directory_id)
                )
            }
            return times, {k: _ts(v) for k, v in last.items() if v is not None}

        times, last = await self.read(run)
        now = time.time()
        nxt = {}
        for did, row in self.rows.items():
            cls = self.connector_type(row["connector"])
            if row["type"] == "draft" or cls is None or "sync" not in cls.capabilities:
                continue
            daily = None
            if row["sync_daily"]:
                hhmm = row.get("sync_time") or times.get(row["domain_id"], "02:00")
                daily = next_daily(hhmm, now)
            every = None
            if row.get("sync_every"):
                base = max(self._last_start.get(did, 0.0), last.get(did, 0.0)) or _ts(row.get("created_at")) or now
                every = base + row["sync_every"]
            nxt[did] = (daily, every)
        self._next = nxt

    async def _external_syncs(self) -> None:
        """Pick up syncs another process finished (``twp directory sync``, another node): reload those directories."""
        def run(conn: sa.Connection) -> list[tuple[int, int]]:
            s = t.directory_syncs
            return [(r.id, r.directory_id) for r in conn.execute(
                sa.select(s.c.id, s.c.directory_id).where(s.c.id > self._seen_sync, s.c.status != "running").order_by(s.c.id))]

        for sync_id, directory_id in await self.read(run):
            self._seen_sync = max(self._seen_sync, sync_id)
            if sync_id in self._own_syncs:
                self._own_syncs.discard(sync_id)
            elif directory_id in self.rows:
                log.info("directory %s was synchronized by another process: reloading it", self.rows[directory_id]["name"])
                await self.changed(directory_id)

    async def _scheduler(self) -> None:
        while True:
            try:
                await self._external_syncs()
            except Exception:
                log.exception("looking for syncs of other processes failed")
            now = time.time()
            soonest = now + self.tick
            for did, (daily, every) in list(self._next.items()):
                due = None
                if daily is not None and daily <= now:
                    due = "daily"
                    daily = next_daily(self.rows[did].get("sync_time") or dt.datetime.fromtimestamp(daily).strftime("%H:%M"), now + 1)
                if every is not None and every <= now:
                    due = due or "interval"
                    every = now + (self.rows[did].get("sync_every") or 60)
                self._next[did] = (daily, every)
                if due and not self.is_running(did):
                    task = asyncio.get_running_loop().create_task(self._scheduled(did, due))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                for when in (daily, every):
                    if when is not None:
                        soonest = min(soonest, when)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.05, soonest - time.time()))
            except TimeoutError:
                pass

    async def _scheduled(self, directory_id: int, trigger: str) -> None:
        await run_once(self.jobs, f"directory-sync:{directory_id}", lambda: self.sync(directory_id, trigger), expected=DirectoryError,
                       log=log, skipped=f"scheduled sync of directory {directory_id} skipped: %s")



def _ts(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    return 0.0
