"""Presence fan-out: one user's TWP presence change reaching 10,000 watching clients.

Run ``python benchmarks/bench_presence.py`` (``--write`` updates docs/benchmarks.md).  The
kernel's event bus gets 10,000 subscribers, each with the filter the events WebSocket uses
(``visible_to`` of a user principal of the same company), and one task per subscriber that
reads its queue and encodes the event as the WebSocket handler does (``event.as_json()``
then ``json.dumps``).  ``PresenceService.publish`` sends one ``user_presence.changed`` event
addressed to the company's 10,000 users.  Timed: the publish call (filters and queue puts),
and from publish until the 10,000th subscriber has its encoded message.  Not included: the
socket writes (aiohttp and the kernel's TCP stack) and the clients.  Median of 7 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine_info, spread, write_section

from twpcore.events import EventBus, visible_to
from twpcore.parameters import ParameterRegistry
from twpcore.presence.service import Presence, PresenceService
from twpcore.principals import Principal

WATCHERS = 10_000
RUNS = 7


async def measure(watchers: int) -> tuple[list[float], list[float], list[float]]:
    bus = EventBus()
    service = PresenceService(bus, ParameterRegistry(), telephony=None, store=lambda: None)
    service.users = dict.fromkeys(range(1, watchers + 1), (1, 1))
    service.company_users = {1: frozenset(service.users)}
    received = 0
    done = asyncio.Event()

    async def client(principal: Principal) -> None:
        nonlocal received
        sub = bus.subscribe(lambda e, p=principal: e.type == "system.resync" or visible_to(p, e), name=f"ws {principal.id}")
        while True:
            event = await sub.get()
            json.dumps(event.as_json())
            received += 1
            if received == watchers:
                done.set()

    tasks = [asyncio.create_task(client(Principal("user", uid, f"u{uid}", companies=frozenset({1}), domain_id=1)))
             for uid in range(1, watchers + 1)]
    await asyncio.sleep(0.1)  # every client subscribed and waiting
    publish, delivered, cpu = [], [], []
    for run in range(RUNS):
        received = 0
        done.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        service.publish(1, Presence("absent", f"run {run}", "user", time.time()))
        t1 = time.perf_counter()
        await done.wait()
        t2 = time.perf_counter()
        cpu.append((time.process_time() - c0) * 1000)
        publish.append((t1 - t0) * 1000)
        delivered.append((t2 - t0) * 1000)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return publish, delivered, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    parser.add_argument("--watchers", type=int, default=WATCHERS)
    args = parser.parse_args()
    publish, delivered, cpu = asyncio.run(measure(args.watchers))
    m = machine_info()
    text = "\n".join([
        f"Command: `python benchmarks/bench_presence.py --write`; {args.watchers:,} watching clients, median, min and max of {RUNS} changes"
        ".",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, {m['python']}, {m['os']}; load average {m['load']} "
        f"(1 min, other work on the host); {m['date']}.",
        "",
        "| measure | median | min | max |",
        "|---|---|---|---|",
        f"| `publish` of one presence change (10,000 filters, 10,000 queue puts) | {spread(publish, 'ms')}",
        f"| publish until the last of the 10,000 clients has the encoded message | {spread(delivered, 'ms')}",
        f"| ... CPU time of the process for it | {spread(cpu, 'ms')}",
        "",
        "Wall clock counts the time the process waited for a core (load average above the 2 cores); the CPU time is the work. "
        "Not included: writing to 10,000 sockets. The bus filters every subscriber for every event, so each event of the "
        "server costs a pass over all connected clients whoever it is for; the figure above is that pass plus the encoding.",
    ])
    print(text)
    if args.write:
        write_section("bench_presence", text, "Presence fan-out to 10,000 watchers (issue 18)")


if __name__ == "__main__":
    main()
