"""HTTP endpoints: boss / secretary, interception, phone queues and voicemail (issue 19)."""

from __future__ import annotations

from twpcore.http.core import Route


def reception_routes() -> list[Route]:
    return []
