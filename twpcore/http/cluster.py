"""HTTP endpoints: the cluster's status (issue 20)."""

from __future__ import annotations

from twpcore.http.core import Route


def cluster_routes() -> list[Route]:
    return []
