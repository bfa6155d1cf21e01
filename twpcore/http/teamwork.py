"""HTTP endpoints: chat, notes, notifications and the Alerter (issue 19)."""

from __future__ import annotations

from twpcore.http.core import Route


def teamwork_routes() -> list[Route]:
    return []
