"""What the cluster looks like in Redis: nodes, who holds which PBX link and job, pending moves.

Read by every node for its health section and by ``twp cluster status`` (which starts no
server and reads Redis directly), so both show the same thing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from twpcore.cluster.leases import LeaseValue


def connect(url: str) -> Any:
    """An asyncio Redis client for ``url`` (``redis.asyncio``), with time-outs shorter than a lease."""
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, retry_on_timeout=False)


class Keys:
    """The Redis keys of one cluster (``[cluster] prefix``)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes = f"{prefix}:nodes"
        """Sorted set: node name → when it last said it was alive (Unix ms)."""
        self.links = f"{prefix}:links"
        """Set of the PBX link names the nodes serve."""

    def node(self, name: str) -> str:
        return f"{self.prefix}:node:{name}"

    def move(self, link: str) -> str:
        return f"{self.prefix}:move:link:{link}"

    def lease(self, kind: str, name: str) -> str:
        return f"{self.prefix}:lease:{kind}:{name}"


async def alive_nodes(redis: Any, keys: Keys, ttl: float) -> list[str]:
    now_ms = int(time.time() * 1000)
    return sorted(_text(n) for n in await redis.zrangebyscore(keys.nodes, now_ms - int(ttl * 1000), "+inf"))


async def read_status(redis: Any, keys: Keys, ttl: float) -> dict[str, Any]:
    """Nodes (alive or lately seen), each link's holder, token and lease age, running jobs, pending moves."""
    now = time.time()
    seen = await redis.zrange(keys.nodes, 0, -1, withscores=True)
    links = sorted(_text(n) for n in await redis.smembers(keys.links))
    lease_raw = await redis.mget([keys.lease("link", n) for n in links]) if links else []
    move_raw = await redis.mget([keys.move(n) for n in links]) if links else []
    job_keys = [_text(k) async for k in redis.scan_iter(match=keys.lease("job", "*"), count=100)]
    job_raw = await redis.mget(job_keys) if job_keys else []
    holders = dict(zip(links, (LeaseValue.parse(r) for r in lease_raw), strict=True))
    nodes = []
    for name_raw, score in seen:
        name = _text(name_raw)
        info_raw = await redis.get(keys.node(name))
        info = json.loads(info_raw) if info_raw else {}
        nodes.append({"node": name, "alive": now - score / 1000.0 <= ttl, "last_seen_age": round(now - score / 1000.0, 1), **info,
                      "links": [n for n, v in holders.items() if v is not None and v.node == name]})
    link_rows = []
    for name, value, move in zip(links, holders.values(), move_raw, strict=True):
        link_rows.append({"link": name, "node": value.node if value else None, "token": value.token if value else None,
                          "lease_age": round(now - value.since, 1) if value else None, "move_to": _text(move) if move else None})
    jobs = []
    for key, raw in zip(job_keys, job_raw, strict=True):
        value = LeaseValue.parse(raw)
        if value is not None:
            jobs.append({"job": key.split(":lease:job:", 1)[1], "node": value.node, "token": value.token, "age": round(now - value.since, 1)})
    return {"nodes": nodes, "links": link_rows, "jobs": sorted(jobs, key=lambda j: j["job"])}


def format_status(status: dict[str, Any]) -> str:
    """``twp cluster status`` as text."""
    lines = ["NODE          STATE   SEEN  LINKS"]
    for n in status["nodes"]:
        lines.append(f"{n['node']:<13} {'alive' if n['alive'] else 'gone':<7} {n['last_seen_age']:>4}s  {', '.join(n['links']) or '-'}")
    lines += ["", "LINK          NODE          TOKEN  LEASE AGE  MOVE TO"]
    for row in status["links"]:
        age = f"{row['lease_age']}s" if row["lease_age"] is not None else "-"
        lines.append(f"{row['link']:<13} {row['node'] or '(none)':<13} {row['token'] or '-':>5}  {age:>9}  {row['move_to'] or '-'}")
    if status["jobs"]:
        lines += ["", "JOB                           NODE          AGE"]
        lines += [f"{j['job']:<29} {j['node']:<13} {j['age']}s" for j in status["jobs"]]
    return "\n".join(lines)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def command_status(url: str, prefix: str, ttl: float) -> dict[str, Any]:
    """``twp cluster status``: read the cluster's state from Redis (no server started)."""
    redis = connect(url)
    try:
        return await read_status(redis, Keys(prefix), ttl)
    finally:
        await redis.aclose()


async def command_move(url: str, prefix: str, ttl: float, link: str, node: str) -> str | None:
    """``twp cluster move LINK NODE``: ask the link's owner to hand it over; the problem as text, or None."""
    redis = connect(url)
    keys = Keys(prefix)
    try:
        links = {_text(n) for n in await redis.smembers(keys.links)}
        if link not in links:
            return f"PBX link {link!r} is not served by the cluster (links: {', '.join(sorted(links)) or 'none'}); check the name"
        alive = await alive_nodes(redis, keys, ttl)
        if node not in alive:
            return f"node {node!r} is not alive (live nodes: {', '.join(alive) or 'none'}); start it or choose a live node"
        await redis.set(keys.move(link), node, px=int(ttl * 10_000))
        return None
    finally:
        await redis.aclose()
