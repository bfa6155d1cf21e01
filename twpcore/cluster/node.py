"""One node of a TWP cluster: PBX link ownership, events through Redis, jobs run once.

Built by the kernel only when ``[cluster] redis`` is set.  Every ``lease_ttl / 6`` seconds
the node says it is alive, extends the leases it holds, gives back the links an
administrator moved away or that exceed its fair share, and takes free links: at once while
it holds fewer than its share (links / live nodes, rounded up), after half a time to live
otherwise, so a link never stays without an owner (a node that just joined waits one time
to live first, so that nodes starting together share the links).  A PBX link is started only on the node
holding its lease; elsewhere its instance is ``disabled`` with a reason naming the owner.
Starting a link is the telephony service's usual path: the driver reports ``link_up``, the
service monitors the devices again and reconciles calls with snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from twpcore.cluster.caches import Directories, follow_caches
from twpcore.cluster.leases import Held, Leases, LeaseValue
from twpcore.cluster.status import Keys, alive_nodes, connect, read_status
from twpcore.cluster.streams import StreamTransport
from twpcore.config import ClusterConfig
from twpcore.dialing import DialingPlans
from twpcore.events import EventBus
from twpcore.instances import InstanceManager
from twpcore.kinds import InstanceState, Kind
from twpcore.telephony.service import TelephonyService

log = logging.getLogger(__name__)
STANDBY = "standby: PBX link served by another cluster node"


class ClusterNode:
    def __init__(self, config: ClusterConfig, events: EventBus, instances: InstanceManager, telephony: TelephonyService,
                 http_url: str | None = None, redis: Any = None, *, dialing_plans: DialingPlans | None = None,
                 directories: Directories | None = None):
        assert config.redis is not None and config.node is not None  # the config checks both
        self.config = config
        self.node = config.node
        self.ttl = float(config.lease_ttl)
        self.tick = self.ttl / 6
        self.events = events
        """Where the other nodes' events are published (``StreamTransport``)."""
        self.instances = instances
        """PBX link instances: started here only while this node holds their lease."""
        self.telephony = telephony
        """Told when a link leaves this node (``release_link``)."""
        self.http_url = http_url
        self.dialing_plans = dialing_plans if dialing_plans is not None else DialingPlans()
        """Forgets a domain's plan when another node changed the domain (``caches.follow_caches``)."""
        self.directories = directories
        """Reloads a directory another node changed or synced."""
        self.redis = redis if redis is not None else connect(config.redis)
        self.keys = Keys(config.prefix)
        self.leases = Leases(self.redis, config.prefix, self.node, self.ttl)
        self.transport = StreamTransport(self.redis, config.prefix, self.node, events, self.fence_of)
        self.owned: dict[str, Held] = {}
        self.holders: dict[str, LeaseValue | None] = {}
        self.alive: list[str] = []
        self.redis_ok = False
        self.last_error: str | None = None
        self.takeovers = 0
        self._free_since: dict[str, float] = {}
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._last_rebalance = 0.0
        self._joined = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self.started = time.time()
        self.links: list[str] = []
        """The PBX links this node may serve (every configured link whose options are valid)."""

    def serving(self, link: str) -> bool:
        """Whether this node may act on the link now: it holds the lease and its time to live has not run out locally."""
        held = self.owned.get(link)
        return held is not None and time.monotonic() < held.deadline

    def fence_of(self, link: str) -> int:
        held = self.owned.get(link)
        return held.value.token if held is not None else 0

    # -- life cycle ----------------------------------------------------------------
    async def start(self) -> None:
        """Put every PBX link on standby, then follow the cluster; call before the instances start."""
        for (kind, name), inst in self.instances.instances.items():
            if kind == Kind.PBX_DRIVER and inst.obj is not None and inst.state == InstanceState.CONFIGURED:
                inst.set(InstanceState.DISABLED, STANDBY)
                self.links.append(name)
                if name in self.telephony.links:
                    self.telephony.links[name].last_error = "standby: waiting for this link's lease (cluster)"
        self.transport.start()
        self.telephony.serving = self.serving
        self._joined = time.monotonic()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="cluster-node")
        self._follower = loop.create_task(follow_caches(self.events, self.dialing_plans, self.directories), name="cluster-caches")

    async def stop(self) -> None:
        for task in (self._task, self._follower):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._follower = None
        for task in list(self._busy.values()):
            await asyncio.gather(task, return_exceptions=True)
        for name in list(self.owned):
            await self._drop(name, "this node is stopping", release=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.zrem(self.keys.nodes, self.node), 1)
        await self.transport.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    async def _run(self) -> None:
        names = sorted(self.links)
        while True:
            try:
                await asyncio.wait_for(self._step(names), self.ttl / 2)
                if not self.redis_ok:
                    log.info("cluster: node %s reaches Redis", self.node)
                self.redis_ok, self.last_error = True, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away or slow: fence ourselves off when our leases run out
                if self.redis_ok or self.last_error is None:
                    log.warning("cluster: node %s cannot reach Redis: %s", self.node, exc)
                self.redis_ok, self.last_error = False, f"{type(exc).__name__}: {exc}"
                now = time.monotonic()
                for name, held in list(self.owned.items()):
                    if now >= held.deadline:
                        self._spawn(name, self._drop(name, "this node lost Redis: its lease ran out", release=False))
            await asyncio.sleep(self.tick)

    async def _step(self, names: list[str]) -> None:
        # Extending the leases comes first and all at once: on a busy node every other request waits behind it.
        owned = list(self.owned.items())
        extended = await asyncio.gather(*(self.leases.extend(held) for _, held in owned))
        for (name, _), ok in zip(owned, extended, strict=True):
            if not ok and name in self.owned:
                self._spawn(name, self._drop(name, "its lease was lost (expired or taken over)", release=False))
        now_ms = int(time.time() * 1000)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "http": self.http_url, "started": round(self.started, 3)}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.nodes, {self.node: now_ms})
            pipe.set(self.keys.node(self.node), json.dumps(info), px=int(self.ttl * 1000) * 20)
            if names:
                pipe.sadd(self.keys.links, *names)
            pipe.zremrangebyscore(self.keys.nodes, "-inf", now_ms - 3_600_000)  # forget nodes gone for an hour
            await pipe.execute()
        self.alive = await alive_nodes(self.redis, self.keys, self.ttl)
        self.holders = await self.leases.read("link", names)
        moves = dict(zip(names, await self.redis.mget([self.keys.move(n) for n in names]), strict=True)) if names else {}
        moves = {n: (m.decode() if isinstance(m, bytes) else m) for n, m in moves.items() if m}
        mine = [n for n in self.owned if n not in self._busy]
        for name in mine:
            target = moves.get(name)
            if target and target != self.node and target in self.alive:
                log.info("cluster: PBX link %s moves to node %s as an administrator asked", name, target)
                self._spawn(name, self._drop(name, f"moved to node {target} by an administrator", release=True))
        share = math.ceil(len(names) / max(1, len(self.alive)))
        counts = dict.fromkeys(self.alive, 0)
        for value in self.holders.values():
            if value is not None:
                counts[value.node] = counts.get(value.node, 0) + 1
        now = time.monotonic()
        if (len(self.owned) > share and any(c < share and n != self.node for n, c in counts.items() if n in self.alive)
                and now - self._last_rebalance > 2 * self.ttl and not moves):
            name = sorted(self.owned, key=lambda n: self.owned[n].value.since)[-1]
            if name not in self._busy:
                self._last_rebalance = now
                log.info("cluster: node %s holds %d links for a share of %d; it gives back %s", self.node, len(self.owned), share, name)
                self._spawn(name, self._drop(name, "given back to spread the links evenly", release=True))
        if now - self._joined < self.ttl:
            return  # one lease time to see the nodes starting with this one, so that they share the free links
        for name, value in self.holders.items():
            if value is not None or name in self.owned or name in self._busy:
                self._free_since.pop(name, None)
                continue
            target = moves.get(name)
            if target and target != self.node and target in self.alive:
                continue
            first = self._free_since.setdefault(name, now)
            if target == self.node or len(self.owned) < share or now - first >= self.ttl / 2:
                taken = await self.leases.acquire("link", name)
                if taken is not None:
                    self.owned[name] = taken
                    self.holders[name] = taken.value
                    self._free_since.pop(name, None)
                    if target == self.node:
                        await self.redis.delete(self.keys.move(name))
                    self._spawn(name, self._start_link(name, taken))

    def _spawn(self, name: str, coro: Any) -> None:
        if name in self._busy:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=f"cluster-link-{name}")
        self._busy[name] = task
        task.add_done_callback(functools.partial(self._done, name))

    def _done(self, name: str, _task: asyncio.Task[None]) -> None:
        self._busy.pop(name, None)

    async def _start_link(self, name: str, held: Held) -> None:
        inst = self.instances.instances[(Kind.PBX_DRIVER, name)]
        self.takeovers += 1
        log.info("cluster: node %s took PBX link %s (fencing token %d); starting it", self.node, name, held.value.token)
        if name in self.telephony.links:
            self.telephony.links[name].last_error = None
        inst.set(InstanceState.CONFIGURED)
        try:
            await self.instances.start_all()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store is away: give the link back, another node may start it
            log.warning("cluster: PBX link %s could not start on node %s (%s); lease given back", name, self.node, exc)
            inst.set(InstanceState.DISABLED, STANDBY)
            self.owned.pop(name, None)
            with contextlib.suppress(Exception):
                await self.leases.release(held)

    async def _drop(self, name: str, why: str, *, release: bool) -> None:
        held = self.owned.pop(name, None)
        if held is None:
            return
        log.warning("cluster: node %s stops PBX link %s: %s", self.node, name, why)
        self.telephony.release_link(name, f"standby: {why}")
        inst = self.instances.instances.get((Kind.PBX_DRIVER, name))
        if inst is not None and inst.obj is not None:
            if inst.task is not None and not inst.task.done():
                inst.task.cancel()
            try:
                await asyncio.wait_for(inst.obj.close(), 10)
            except Exception as exc:  # noqa: BLE001 - a driver failing to close must not keep the link here
                log.warning("cluster: closing PBX link %s failed: %s", name, exc)
            inst.set(InstanceState.DISABLED, STANDBY)
        self.telephony.release_link(name, f"standby: {why}")
        if release:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leases.release(held), self.ttl / 2)

    # -- jobs ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def once(self, job: str) -> AsyncIterator[bool]:
        """Run a job on one node at a time: yields True when this node holds the job's lease, False otherwise."""
        try:
            held = await asyncio.wait_for(self.leases.acquire("job", job), self.ttl / 2)
        except Exception as exc:  # noqa: BLE001 - Redis away: the job waits, it must not run twice
            log.warning("cluster: job %s not started on node %s: Redis unreachable (%s)", job, self.node, exc)
            yield False
            return
        if held is None:
            log.debug("cluster: job %s runs on another node; skipped here", job)
            yield False
            return
        keeper = asyncio.get_running_loop().create_task(self._keep(held), name=f"cluster-job-{job}")
        try:
            yield True
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leases.release(held), self.ttl / 2)

    async def _keep(self, held: Held) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                if not await asyncio.wait_for(self.leases.extend(held), self.ttl / 2):
                    log.error("cluster: job %s lost its lease on node %s while running", held.name, self.node)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying until the deadline
                log.warning("cluster: job %s lease not extended: %s", held.name, exc)

    # -- operations ------------------------------------------------------------------
    async def request_move(self, link: str, node: str) -> None:
        """Ask the owner of ``link`` to hand it to ``node`` (a live node); it does within a tick."""
        await self.redis.set(self.keys.move(link), node, px=int(self.ttl * 10_000))

    async def status(self) -> dict[str, Any]:
        return {"node": self.node, **await read_status(self.redis, self.keys, self.ttl)}

    def health(self) -> dict[str, Any]:
        now = time.time()
        return {
            "node": self.node, "redis": "ok" if self.redis_ok else "unreachable", "last_error": self.last_error,
            "nodes": self.alive,
            "links": {name: ({"node": v.node, "token": v.token, "lease_age": round(now - v.since, 1)} if v else None)
                      for name, v in sorted(self.holders.items())},
            "owned": sorted(self.owned), "takeovers": self.takeovers, "events": self.transport.health(),
        }
