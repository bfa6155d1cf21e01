"""Leases in Redis: one holder at a time for a PBX link or a job, with a fencing token.

A lease is one Redis string ``<prefix>:lease:<kind>:<name>`` holding ``node|token|since_ms``
with a time to live (``PX``).  It is taken with ``SET NX PX`` and the token is the next value
of the counter ``<prefix>:fence:<kind>:<name>`` (``INCR``), both in one Lua script so a token
is never spent on a lease that was not taken.  The holder extends it with a check-and-extend
script (``PEXPIRE`` only while the value is still its own) and gives it back with a
check-and-delete.  The token only grows: whoever receives work from a holder (events of a
PBX link, ``twpcore.cluster.streams``) refuses a token lower than the highest it has seen,
so a holder that lost its lease without knowing it (a pause, a partition) is fenced off.
A counter that does not exist (a first lease, or a Redis restarted empty) starts at the
current time in milliseconds, so tokens keep growing across a restart of Redis.

A holder that cannot reach Redis cannot extend: it must consider the lease lost once the
time to live has passed since its last successful extension (``Held.deadline``), which is
never later than the moment Redis frees the key, because the deadline is counted from
before the request was sent.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[3]) end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token .. '|' .. ARGV[3], 'PX', ARGV[2])
return token
"""
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@attrs.frozen
class LeaseValue:
    """What a lease key holds: who holds it, its fencing token and since when."""

    node: str
    token: int
    since: float
    """Unix time the holder took it."""

    @classmethod
    def parse(cls, raw: Any) -> LeaseValue | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            node, token, since_ms = text.rsplit("|", 2)
            return cls(node, int(token), int(since_ms) / 1000.0)
        except ValueError:
            return None

    def text(self) -> str:
        return f"{self.node}|{self.token}|{int(self.since * 1000)}"


@attrs.define(eq=False)
class Held:
    """A lease this node holds."""

    kind: str
    name: str
    value: LeaseValue
    deadline: float
    """``time.monotonic()`` after which the lease must be taken as lost if it was not extended."""


class Leases:
    """Take, extend and give back leases of one kind (``link``, ``job``) for one node."""

    def __init__(self, redis: Any, prefix: str, node: str, ttl: float):
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.ttl = ttl
        self._acquire = redis.register_script(ACQUIRE)
        self._extend = redis.register_script(EXTEND)
        self._release = redis.register_script(RELEASE)

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:lease:{kind}:{name}"

    def fence_key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:fence:{kind}:{name}"

    async def acquire(self, kind: str, name: str) -> Held | None:
        """Take the lease if nobody holds it; ``None`` when someone does."""
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        token = await self._acquire(keys=[self.key(kind, name), self.fence_key(kind, name)], args=[self.node, int(self.ttl * 1000), now_ms])
        if token is None:
            return None
        return Held(kind, name, LeaseValue(self.node, int(token), now_ms / 1000.0), started + self.ttl)

    async def extend(self, held: Held) -> bool:
        """Extend a held lease; False when it is no longer ours (expired, taken over)."""
        started = time.monotonic()
        ok = await self._extend(keys=[self.key(held.kind, held.name)], args=[held.value.text(), int(self.ttl * 1000)])
        if ok:
            held.deadline = started + self.ttl
        return bool(ok)

    async def release(self, held: Held) -> None:
        await self._release(keys=[self.key(held.kind, held.name)], args=[held.value.text()])

    async def read(self, kind: str, names: list[str]) -> dict[str, LeaseValue | None]:
        """Who holds each of ``names`` now."""
        if not names:
            return {}
        raws = await self.redis.mget([self.key(kind, n) for n in names])
        return {n: LeaseValue.parse(r) for n, r in zip(names, raws, strict=True)}
