"""Jobs that must run on one node at a time: directory syncs, users imports, retention, backups, the SMS outbox.

A service running such a job asks its ``Jobs`` first::

    async with self.jobs.once(f"directory-sync:{directory_id}") as mine:
        if not mine:
            return          # another node runs it now
        ...

``run_once`` is that pattern for a scheduled job whose expected failures are logged, not raised.

One process (no ``[cluster]``) has ``LOCAL_JOBS``, which always says yes; a cluster node
hands its ``ClusterNode``, which says yes only while this node holds the job's lease in Redis.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol


class Jobs(Protocol):
    """Decides whether this process runs a job now."""

    def once(self, job: str) -> contextlib.AbstractAsyncContextManager[bool]: ...


class LocalJobs:
    """One process: every job runs here."""

    @contextlib.asynccontextmanager
    async def once(self, job: str) -> AsyncIterator[bool]:
        yield True


LOCAL_JOBS = LocalJobs()


async def run_once(jobs: Jobs, job: str, work: Callable[[], Awaitable[Any]], *, expected: type[Exception], log: logging.Logger,
                   skipped: str) -> None:
    """Run ``work()`` when ``jobs`` gives this process ``job``; an ``expected`` error (one with a ``detail``) is logged
    at info as ``skipped`` (a %-format taking that detail), not raised: a scheduled job is tried again at its next time."""
    async with jobs.once(job) as mine:  # one node of a cluster runs it (docs/cluster.md)
        if not mine:
            return
        try:
            await work()
        except expected as exc:
            log.info(skipped, getattr(exc, "detail", exc))
