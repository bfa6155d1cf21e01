"""LDAP sync throughput: entries per second read by the LDAP connector from a real slapd.

Run ``.venv/bin/python benchmarks/bench_ldap_sync.py`` (``--entries 20000 --runs 5``;
``--write`` updates its section of ``docs/benchmarks.md``).  The kit's ``SlapdServer``
is loaded with N inetOrgPerson entries of 11 attributes (names, two phones, mail,
company, title, a multi-valued mobile on one in ten) behind the Active Directory-like
size limit of 1,000, and the ``ldap`` connector's ``records()`` is consumed end to end:
bind, paged search with pages of 1,000, decoding, ``SourceRecord`` building, hand-over
from the worker thread through the bounded queue to the event loop.  The figure is the
median of the runs.  A last run under ``tracemalloc`` gives the peak Python memory
while streaming (records are counted, not kept, as a streaming consumer would).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine, write_section

from twpcore.kinds import InstanceContext, Kind
from twpcore.schema import structure
from twpcore.testing.servers import SlapdServer

try:
    from twp_ldap import LdapConnector
except ImportError:  # pragma: no cover - the plugin not installed in this venv
    sys.path.insert(0, str(ROOT / "plugins" / "twp-ldap"))
    from twp_ldap import LdapConnector

SUFFIX = "dc=example,dc=com"
GOAL = 5_000


def entries(count: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(count):
        attributes: dict[str, Any] = {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": f"u{i:06d}", "cn": f"Camille Lefebvre {i}", "sn": f"Lefebvre{i:06d}", "givenName": "Camille",
            "displayName": f"Camille Lefebvre {i}", "telephoneNumber": f"+33 1 40 {i:06d}",
            "homePhone": f"+33 2 40 {i:06d}", "mail": f"u{i:06d}@example.com", "o": "Example",
            "title": "Account manager", "employeeNumber": str(100_000 + i),
        }
        if i % 10 == 0:
            attributes["mobile"] = [f"+33 6 00 {i:06d}", f"+33 7 00 {i:06d}"]
        out.append((f"uid=u{i:06d},ou=people,{SUFFIX}", attributes))
    return out


async def consume(connector: LdapConnector) -> int:
    count = 0
    async for _ in connector.records():
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="update the bench_ldap_sync section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if not SlapdServer.available():
        print("slapd is not installed: run `bash scripts/install-system-deps.sh`", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with SlapdServer(suffix=SUFFIX, entries=entries(args.entries)) as server:
        load = time.perf_counter() - started
        config = structure(LdapConnector.Config, {
            "url": server.url, "base_dn": server.people_dn, "bind_dn": server.reader_dn,
            "password": server.reader_password, "page_size": args.page_size,
        })
        connector = LdapConnector(config, InstanceContext("bench", Kind.DIRECTORY_CONNECTOR))
        asyncio.run(consume(connector))  # warm-up: slapd's caches, imports
        rates = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            count = asyncio.run(consume(connector))
            elapsed = time.perf_counter() - t0
            if count != args.entries:
                print(f"read {count} entries, expected {args.entries}", file=sys.stderr)
                return 1
            rates.append(count / elapsed)
        tracemalloc.start()
        asyncio.run(consume(connector))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    median = statistics.median(rates)
    report = "\n".join([
        f"LDAP sync from slapd, {datetime.date.today().isoformat()}, {machine()}",
        "",
        "| entries | page size | runs | entries/s (median) | min | max | peak Python memory while streaming | slapadd load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.entries:,} | {args.page_size:,} | {args.runs} | {median:,.0f} | {min(rates):,.0f} | {max(rates):,.0f} "
        f"| {peak / 2**20:.1f} MiB | {load:.1f} s |",
        "",
        f"Goal: at least {GOAL:,} entries/s — {'met' if median >= GOAL else 'NOT met'}.",
    ])
    print(report)
    if args.write:
        write_section("bench_ldap_sync", report, "LDAP sync (bench_ldap_sync.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
