"""HTTP endpoints: the cluster's status and moving a PBX link to another node (issue 20, docs/cluster.md).

Super users only: the cluster is the operator's, not a company's.  A server without
``[cluster]`` answers ``{"enabled": false}`` to the status and 409 to a move.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from twpcore.http.core import KERNEL, ApiError, Route, bad_request, principal, read_json, store_of
from twpcore.http.resources import audit


def _super_user(request: web.Request) -> Any:
    who = principal(request)
    if not who.super_user:
        raise ApiError(403, "forbidden", "only super users see and operate the cluster; ask the operator")
    return who


async def cluster_status(request: web.Request) -> web.Response:
    _super_user(request)
    node = request.app[KERNEL].cluster
    if node is None:
        return web.json_response({"enabled": False, "node": None, "nodes": [], "links": [], "jobs": []})
    try:
        status = await asyncio.wait_for(node.status(), 5)
    except Exception as exc:  # noqa: BLE001 - Redis away: say so, with what this node knows
        raise ApiError(503, "redis_unreachable", f"node {node.node} cannot read the cluster's state from Redis ({type(exc).__name__}); "
                       "check that Redis runs and [cluster] redis points at it") from None
    return web.json_response({"enabled": True, **status})


async def move_link(request: web.Request) -> web.Response:
    who = _super_user(request)
    kernel = request.app[KERNEL]
    node = kernel.cluster
    name = request.match_info["name"]
    body = await read_json(request)  # checked against the route's schema first: a bad body is a 400 whatever the cluster
    if node is None:
        raise ApiError(409, "not_clustered", "this server runs alone: there is no other node to move a link to; "
                       "set [cluster] redis and node on each node (docs/cluster.md)")
    if name not in node.links:
        raise ApiError(404, "not_found", f"PBX link {name} is not served by the cluster; GET /api/v1/cluster lists the links")
    target = body.get("node")
    if not isinstance(target, str) or target not in node.alive:
        raise bad_request(f"node: expected the name of a live node ({', '.join(node.alive) or 'none'}), got {target!r}", "node")
    try:
        await asyncio.wait_for(node.request_move(name, target), 5)
    except Exception as exc:  # noqa: BLE001 - Redis away
        raise ApiError(503, "redis_unreachable", f"the move of PBX link {name} could not be recorded in Redis ({type(exc).__name__}); "
                       "retry when Redis is back") from None
    link = kernel.telephony.links.get(name)
    await store_of(request).run(audit, who, "cluster.move", "pbx_link", name, link.company_id if link else None,
                                request.remote or "", {"node": target})
    return web.json_response({"link": name, "move_to": target}, status=202)


def cluster_routes() -> list[Route]:
    body = {"type": "object", "additionalProperties": False, "required": ["node"],
            "properties": {"node": {"type": "string", "description": "the live node that should serve the link"}}}
    return [
        Route("GET", "/api/v1/cluster", cluster_status, "admin", "Cluster nodes, the PBX links each serves with lease ages, running jobs",
              "system", errors=(503,)),
        Route("POST", "/api/v1/cluster/links/{name}/move", move_link, "admin", "Move a PBX link to another live node (docs/cluster.md)",
              "system", body=body, status=202, errors=(409, 503)),
    ]
