"""Jobs that must run on one node at a time: directory syncs, users imports, retention, backups, the SMS outbox.

A service running such a job asks its ``Jobs`` first::

    async with self.jobs.once(f"directory-sync:{directory_id}") as mine:
        if not mine:
            return          # another node runs it now
        ...

One process (no ``[cluster]``) has ``LOCAL_JOBS``, which always says yes; a cluster node
hands its ``ClusterNode``, which says yes only while this node holds the job's lease in Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol


class Jobs(Protocol):
    """Decides whether this process runs a job now."""

    def once(self, job: str) -> contextlib.AbstractAsyncContextManager[bool]: ...


class LocalJobs:
    """One process: every job runs here."""

    @contextlib.asynccontextmanager
    async def once(self, job: str) -> AsyncIterator[bool]:
        yield True


LOCAL_JOBS = LocalJobs()
