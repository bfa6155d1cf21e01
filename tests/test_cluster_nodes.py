"""Three `twp serve` nodes on a real PostgreSQL and a real Redis, a PBX, and a node killed during calls (issue 20).

The scenario an operator fears: the node serving a PBX link dies (SIGKILL, no goodbye)
while calls are up.  Another node takes the link over, monitors the devices again and
reconciles the calls with snapshots; the calls end normally and each leaves exactly one
call-log entry; an administrator's WebSocket on another node saw it all.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import psycopg

from twp_csta.sim import PbxSimulator
from twpcore.testing.cluster import ClusterRig
from twpcore.testing.waiting import eventually

log = logging.getLogger(__name__)
NODES = ("a", "b", "c")
CALLERS = {"201": "0600000201", "202": "0600000202", "203": "0600000203"}


def until(what, check, timeout=30.0):
    return eventually(check, what, timeout, every=0.1)


class Watcher:
    """The events one WebSocket client receives, in order."""

    def __init__(self, ws):
        self.ws, self.events = ws, []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self):
        async for msg in self.ws:
            self.events.append(msg.json())

    def of(self, device, type_=None):
        return [e for e in self.events if e["data"].get("device") == device and (type_ is None or e["type"] == type_)]


async def test_a_link_survives_the_sigkill_of_its_node_during_calls(tmp_path, postgres_server, redis_server):
    db = "cluster_" + uuid.uuid4().hex[:10]
    store_url = postgres_server.create_database(db)
    async with PbxSimulator(devices=("201-203",)) as sim:
        # Three links to one switch, one device each (capacity 1): three links to spread over three nodes.
        links = {name: {"driver": "mxone", "company": "Demo", "domain": "Paris", "host": "127.0.0.1", "port": sim.port, "capacity": 1}
                 for name in ("l1", "l2", "l3")}
        async with ClusterRig(tmp_path, store_url, redis_server.url, links) as rig:
            t0 = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, rig.prepare_store)  # the demo company and the first admin
            await asyncio.gather(*(rig.start(n) for n in NODES))
            log.warning("three nodes ready after %.1f s", time.monotonic() - t0)

            async def spread():
                owners = await rig.owners("b")
                held = [row["node"] for row in owners.values()]
                return owners if sorted(map(str, held)) == sorted(NODES) else None

            owners = await until("each node serving one link", spread)
            log.warning("links spread after %.1f s", time.monotonic() - t0)
            states = (await rig.get("a", "/api/v1/devices/states"))["items"]
            device = {d["device"]: d for d in states if d["device"] in CALLERS}
            link = device["201"]["provider"]
            domain_id = device["201"]["domain_id"]
            victim = owners[link]["node"]
            old_token = owners[link]["token"]
            observer = next(n for n in NODES if n != victim)
            watcher = Watcher(await rig.websocket(observer))

            # Calls on every device; the observer's WebSocket sees the call of a link another node serves.
            for number, caller in CALLERS.items():
                await sim.incoming_call(caller, number)
            await sim.wait_until(lambda: all(sim.call_of(n) for n in CALLERS), what="calls ringing")
            for number in CALLERS:
                sim.answer(number)
            await until("the observer seeing the three calls established",
                        lambda: asyncio.sleep(0, all(watcher.of(n, "call.established") for n in CALLERS)))
            assert watcher.of("201", "call.established")[-1]["data"]["link"] == link

            # The node serving device 201's link dies.
            await asyncio.sleep(0.5)
            rig.kill(victim)
            killed_at = time.monotonic()

            async def taken_over():
                row = (await rig.owners(observer))[link]
                return row if row["node"] not in (None, victim) else None

            row = await until("another node holding the link", taken_over)
            heir = row["node"]
            assert row["token"] > old_token
            log.warning("link %s of killed node %s taken by node %s after %.2f s", link, victim, heir, time.monotonic() - killed_at)

            # The heir monitored 201 again and found its call with a snapshot: reconciled, not lost.
            async def reconciled():
                calls = await rig.get(heir, f"/api/v1/calls?device=201&domain_id={domain_id}")
                return calls["items"] or None

            items = await until("the call of 201 known to the heir", reconciled)
            assert len(items) == 1 and items[0]["remote"] == CALLERS["201"]

            for caller in CALLERS.values():
                sim.hang_up(caller)
            await until("the observer seeing every call cleared",
                        lambda: asyncio.sleep(0, all(watcher.of(n, "call.cleared") for n in CALLERS)))
            assert (await rig.get(heir, f"/api/v1/calls?device=201&domain_id={domain_id}"))["items"] == []  # no ghost

            def rows():
                with psycopg.connect(postgres_server.conninfo(db)) as conn:
                    return conn.execute("SELECT device, count(*) FROM call_logs GROUP BY device ORDER BY device").fetchall()

            await until("three call-log entries", lambda: asyncio.sleep(0, len(rows()) == 3), timeout=10)
            await asyncio.sleep(1.0)  # anything written twice would be there by now
            assert rows() == [("201", 1), ("202", 1), ("203", 1)]
            assert len(watcher.of("201", "call.cleared")) == 1

            status = await rig.get(heir, "/api/v1/health")
            cluster = status["cluster"]
            assert cluster["node"] == heir and cluster["redis"] == "ok" and victim not in cluster["nodes"]

            # Redis goes away: a node cannot prove it still holds a lease, so once its leases ran out it stops its
            # links (never two nodes on one link), and tells its WebSocket clients that events may be missing.
            survivors = [n for n in NODES if n != victim]
            redis_server.kill()
            await until("system.resync on the observer", lambda: asyncio.sleep(0, any(e["type"] == "system.resync" for e in watcher.events)))

            async def links_connected(node):
                return {row["name"] for row in (await rig.get(node, "/api/v1/links"))["items"] if row["connected"]}

            async def none_connected():
                return not any([await links_connected(n) for n in survivors])

            await until("every link stopped while Redis is down", none_connected, timeout=15)
            assert (await rig.get(observer, "/api/v1/health"))["cluster"]["redis"] == "unreachable"

            # Redis is back (empty, as without persistence): the links are taken again and calls flow to every node.
            redis_server.start_again()

            async def all_connected():
                served = set().union(*[await links_connected(n) for n in survivors])
                return served == set(links)

            await until("every link served again", all_connected, timeout=20)
            await sim.incoming_call(CALLERS["201"], "201")
            await until("the observer seeing the new call", lambda: asyncio.sleep(0, len(watcher.of("201", "call.delivered")) >= 2))
            sim.hang_up(CALLERS["201"])
            watcher.task.cancel()
