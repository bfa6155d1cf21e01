"""HTTP endpoints: presence, profiles and forward rules (issue 18)."""

from __future__ import annotations

from twpcore.http.core import Route


def presence_routes() -> list[Route]:
    return []
