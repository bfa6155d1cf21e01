"""Cluster fault benchmark (issue 20): three nodes, steady call traffic, the owner of a PBX link killed again and again.

One command: ``.venv/bin/python benchmarks/bench_cluster_failover.py`` (``--rate 200 --minutes 5
--kill-every 30`` are the defaults; ``--write`` updates docs/benchmarks.md).

Set-up, all on loopback: a real PostgreSQL and a real ``redis-server`` (the test kit's
``PostgresServer`` and ``RedisServer``), the CSTA simulator in this process with
``--devices`` devices, three PBX links to it (MX-One driver, one third of the devices each)
and three ``twp serve`` nodes (``twpcore.testing.cluster.ClusterRig``, lease time to live
``--ttl``).  Node ``a`` is never killed: an admin WebSocket on it receives every event.
Every ``--kill-every`` seconds the owner of a link served by ``b`` or ``c`` is killed with
SIGKILL and started again at once (it rejoins and gets a link back when the links are
spread again).

Traffic: calls from unique outside numbers to idle devices, answered after 0.1 s and hung
up after ``--hold`` s; each call is three events at the called device (delivered,
established, cleared), so ``--rate`` events/s is ``rate / 3`` calls/s.

Measured:
- takeover: SIGKILL to another node holding the link's lease, and to the link connected there;
- events lost or duplicated at the WebSocket of node ``a`` (delivered/established/cleared of each call);
- call-log rows lost or duplicated (one row per call expected, by device and caller);
- latency of ``call.cleared`` from the simulator's hang-up to the WebSocket on node ``a``, for
  calls of links another node served (through Redis) and of node ``a``'s own links.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine, machine_info, write_section

from twp_csta.sim import PbxSimulator
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.testing.cluster import ClusterRig
from twpcore.testing.servers import PostgresServer, RedisServer

LINKS = ("l1", "l2", "l3")


def add_devices(url: str, numbers: list[str]) -> None:
    """Users with a device each in the demo's Paris domain (the demo has 201-203)."""
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            domain = conn.execute(sa.select(t.domains.c.id).where(t.domains.c.name == "Paris")).scalar_one()
            have = set(conn.execute(sa.select(t.devices.c.number).where(t.devices.c.domain_id == domain)).scalars())
            for number in numbers:
                if number in have:
                    continue
                uid = conn.execute(sa.insert(t.users).values(domain_id=domain, login=f"u{number}", first_name="U", last_name=number)
                                   .returning(t.users.c.id)).scalar_one()
                conn.execute(sa.insert(t.devices).values(domain_id=domain, user_id=uid, number=number, protocol="CSTA"))
    finally:
        store.close()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run(args: argparse.Namespace) -> str:
    info = machine_info()
    numbers = [str(n) for n in range(201, 201 + args.devices)]
    with PostgresServer() as pg, RedisServer() as redis_server, tempfile.TemporaryDirectory(prefix="twp-bench-cluster-") as scratch:
        tmp = args.keep or scratch
        db = "bench_" + uuid.uuid4().hex[:8]
        url = pg.create_database(db)
        async with PbxSimulator(devices=(f"201-{200 + args.devices}",)) as sim:
            capacity = -(-args.devices // len(LINKS))
            links = {name: {"driver": "mxone", "company": "Demo", "domain": "Paris", "host": "127.0.0.1", "port": sim.port,
                            "capacity": capacity} for name in LINKS}
            async with ClusterRig(Path(tmp), url, redis_server.url, links, lease_ttl=args.ttl) as rig:
                rig.prepare_store()
                add_devices(url, numbers)
                t0 = time.monotonic()
                await asyncio.gather(*(rig.start(n) for n in "abc"))
                print(f"three nodes ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)

                async def owners() -> dict[str, str | None]:
                    return {k: v["node"] for k, v in (await rig.owners("a")).items()}

                while True:  # the links spread, one per node, and every device monitored
                    monitored = 0
                    for node in "abc":
                        monitored += sum(r["monitored"] for r in (await rig.get(node, "/api/v1/links"))["items"] if r["connected"])
                    if sorted(map(str, (await owners()).values())) == ["a", "b", "c"] and monitored >= args.devices:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2)

                ws = await rig.websocket("a")
                seen: collections.Counter[tuple[str, str, str]] = collections.Counter()
                received: dict[tuple[str, str], float] = {}
                link_of: dict[tuple[str, str], str] = {}

                async def reader() -> None:
                    async for msg in ws:
                        ev = msg.json()
                        call = ev.get("data", {}).get("call") or {}
                        if ev["type"] in ("call.delivered", "call.established", "call.cleared") and call.get("remote"):
                            key = (ev["data"]["device"], str(call["remote"]))
                            seen[(*key, ev["type"])] += 1
                            if ev["type"] == "call.cleared":
                                received.setdefault(key, time.time())
                                link_of[key] = ev["data"].get("link") or ""

                read_task = asyncio.create_task(reader())
                idle = collections.deque(numbers)
                hung_up: dict[tuple[str, str], float] = {}
                a_links: dict[float, set[str]] = {}
                calls: list[tuple[str, str]] = []
                counter = 0
                stop_at = time.monotonic() + args.minutes * 60
                takeovers: list[tuple[float, float | None]] = []
                restarts_failed: list[str] = []

                async def one_call(device: str, caller: str) -> None:
                    try:
                        await sim.incoming_call(caller, device)
                        await asyncio.sleep(0.1)
                        sim.answer(device)
                        await asyncio.sleep(args.hold)
                        sim.hang_up(caller)
                        hung_up[(device, caller)] = time.time()
                    except Exception as exc:  # noqa: BLE001 - a call the simulator refused is reported, not fatal
                        print(f"call {caller} -> {device}: {exc}", file=sys.stderr)
                    finally:
                        await asyncio.sleep(0.3)
                        idle.append(device)

                async def traffic() -> None:
                    nonlocal counter
                    interval = 3.0 / args.rate
                    next_at = time.monotonic()
                    while time.monotonic() < stop_at:
                        if idle:
                            counter += 1
                            device, caller = idle.popleft(), f"07{counter:08d}"
                            calls.append((device, caller))
                            asyncio.get_running_loop().create_task(one_call(device, caller))
                        next_at += interval
                        await asyncio.sleep(max(0.0, next_at - time.monotonic()))

                async def own_links() -> None:
                    while time.monotonic() < stop_at + 10:
                        try:
                            a_links[time.time()] = {k for k, v in (await owners()).items() if v == "a"}
                        except Exception:  # noqa: BLE001 - Redis read failed once: next second
                            pass
                        await asyncio.sleep(1)

                async def killer() -> None:
                    victim_index = 0
                    while time.monotonic() + args.kill_every < stop_at:
                        await asyncio.sleep(args.kill_every)
                        current = await owners()
                        candidates = [(link, node) for link, node in sorted(current.items()) if node in ("b", "c")]
                        if not candidates:
                            continue
                        link, node = candidates[victim_index % len(candidates)]
                        victim_index += 1
                        rig.kill(node)
                        killed = time.monotonic()
                        lease_at = connected_at = None
                        while time.monotonic() - killed < 30:
                            try:
                                holder = (await owners()).get(link)
                                if lease_at is None and holder not in (None, node):
                                    lease_at = time.monotonic() - killed
                                if lease_at is not None and holder is not None:
                                    rows = (await rig.get(holder, "/api/v1/links"))["items"]
                                    if any(r["name"] == link and r["connected"] for r in rows):
                                        connected_at = time.monotonic() - killed
                                        break
                            except Exception:  # noqa: BLE001 - a node just starting may not answer yet
                                pass
                            await asyncio.sleep(0.05)
                        takeovers.append((lease_at or float("nan"), connected_at))
                        print(f"killed {node} (link {link}): lease taken after {lease_at} s, link up after {connected_at} s",
                              file=sys.stderr)
                        await rig.procs[node].wait()
                        asyncio.get_running_loop().create_task(restart(node))

                async def restart(node: str) -> None:
                    try:
                        await rig.start(node, timeout=120)
                    except Exception as exc:  # noqa: BLE001 - reported; the run goes on with two nodes
                        restarts_failed.append(node)
                        print(f"restart of node {node} failed: {str(exc).splitlines()[0]}", file=sys.stderr)

                await asyncio.gather(traffic(), killer(), own_links())
                await asyncio.sleep(args.hold + 5)
                read_task.cancel()

                with psycopg.connect(pg.conninfo(db)) as conn:
                    rows = collections.Counter(conn.execute("SELECT device, remote_number FROM call_logs").fetchall())
                logs = "".join(rig.log(n) for n in "abc")
                lease_lost = logs.count("its lease was lost")
                ws_resyncs = rig.log("a").count("fell behind; told to resync")
    done = [c for c in calls if c in hung_up]
    types = ("call.delivered", "call.established", "call.cleared")
    expected = len(done) * 3
    lost_events = sum(1 for c in done for ty in types if seen[(*c, ty)] == 0)
    dup_events = sum(n - 1 for n in seen.values() if n > 1)
    lost_rows = sum(1 for c in done if rows[c] == 0)
    dup_rows = sum(n - 1 for n in rows.values() if n > 1)

    def own(key: tuple[str, str]) -> bool:
        at = received[key]
        near = min(a_links, key=lambda ts: abs(ts - at)) if a_links else None
        return near is not None and link_of.get(key, "") in a_links[near]

    latencies = {"through Redis (another node's link)": [], "node a's own link": []}
    for key, at in received.items():
        if key in hung_up:
            latencies["node a's own link" if own(key) else "through Redis (another node's link)"].append((at - hung_up[key]) * 1000)
    lease = [x for x, _ in takeovers if x == x]
    connected = [y for _, y in takeovers if y is not None]
    lines = [
        f"Measured {info['date']} on {machine()}; load average {info['load']} at start.",
        f"`bench_cluster_failover.py --rate {args.rate} --minutes {args.minutes} --kill-every {args.kill_every} --devices {args.devices} "
        f"--ttl {args.ttl} --hold {args.hold}`: {len(done)} calls ({expected} call events expected at the WebSocket), "
        f"{len(takeovers)} SIGKILLs of a link owner.",
        "",
        "| measure | median | max | n |",
        "|---|---|---|---|",
        f"| takeover: SIGKILL → lease held by another node (s) | {statistics.median(lease):.2f} | {max(lease):.2f} | {len(lease)} |" if lease
        else "| takeover: SIGKILL → lease held by another node (s) | - | - | 0 |",
        f"| takeover: SIGKILL → link connected on the new node (s) | {statistics.median(connected):.2f} | {max(connected):.2f} | {len(connected)} |"
        if connected else "| takeover: SIGKILL → link connected on the new node (s) | - | - | 0 |",
    ]
    for name, values in latencies.items():
        if values:
            lines.append(f"| call.cleared latency, {name} (ms) | {statistics.median(values):.1f} | {max(values):.1f} (p99 {pct(values, 0.99):.1f}) "
                         f"| {len(values)} |")
    lines += [
        "",
        f"- Events at node a's WebSocket: **{lost_events} lost**, **{dup_events} duplicated** of {expected}.",
        f"- Call-log rows: **{lost_rows} lost**, **{dup_rows} duplicated** of {len(done)} calls.",
        f"- Takeovers with the link not connected within 30 s: {sum(1 for _, y in takeovers if y is None)}; "
        f"restarts of a killed node that did not become ready within 120 s: {len(restarts_failed)}.",
        f"- Leases lost by a living node (its lease ran out before it could extend it, a sign of an overloaded node): {lease_lost}; "
        f"the WebSocket client of node a told to resync because it fell behind: {ws_resyncs} times.",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rate", type=int, default=200, help="call events per second (3 per call)")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--kill-every", type=float, default=30.0, help="seconds between two SIGKILLs of a link owner")
    p.add_argument("--devices", type=int, default=150)
    p.add_argument("--hold", type=float, default=1.5, help="seconds a call stays answered")
    p.add_argument("--ttl", type=float, default=3.0, help="[cluster] lease_ttl of the nodes (s)")
    p.add_argument("--keep", help="write the nodes' configs and logs to this directory (kept) instead of a temporary one")
    p.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    args = p.parse_args()
    os.environ.setdefault("TWP_LOAD_PLUGINS", "mxone")
    report = asyncio.run(run(args))
    print(report)
    if args.write:
        write_section("bench_cluster_failover", report, "Cluster failover (bench_cluster_failover.py)")


if __name__ == "__main__":
    main()
