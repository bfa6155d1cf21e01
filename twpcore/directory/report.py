"""The report of one directory sync, as kept in ``directory_syncs`` and answered by the API."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import attrs

MAX_PROBLEMS = 1000
"""Problems kept in a sync report; the count of ignored records is always exact."""


@attrs.define(eq=False)
class SyncReport:
    """The outcome of one sync, as kept in ``directory_syncs`` and answered by the API."""

    directory_id: int
    directory: str
    trigger: str
    started_at: float = attrs.field(factory=time.time)
    id: int | None = None
    status: str = "running"
    records: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    ignored: int = 0
    problems: list[dict[str, str]] = attrs.field(factory=list)
    error: str | None = None
    duration: float | None = None
    user_id: int | None = None

    def problem(self, record_id: str, reason: str) -> None:
        self.ignored += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"record": str(record_id), "reason": reason})

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "directory_id": self.directory_id, "directory": self.directory, "trigger": self.trigger,
            "status": self.status, "started_at": dt.datetime.fromtimestamp(self.started_at, dt.UTC).isoformat(),
            "duration": self.duration, "records": self.records, "created": self.created, "updated": self.updated,
            "deleted": self.deleted, "unchanged": self.unchanged, "ignored": self.ignored, "problems": self.problems,
            "problems_truncated": max(0, self.ignored - len(self.problems)), "error": self.error, "user_id": self.user_id,
        }
