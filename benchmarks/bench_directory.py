"""Directory service at scale: sync throughput, search and reverse-lookup latency, memory.

Run ``python benchmarks/bench_directory.py`` (default 1,000,000 contacts across 10
directories, a few minutes) or ``--contacts 100000`` for a quick run; ``--write`` updates
the ``bench_directory`` section of ``docs/benchmarks.md``.

What it does, on a fresh SQLite store in a temporary directory, with a started kernel:

1. **Load**: every directory is filled through the *real sync path*
   (``DirectoryService.sync``: connector records streamed in batches → field mapping with
   options → content hash compared with the store → canonical keys of new numbers with the
   domain's dialing plan → contacts, numbers and search words written in batches →
   published), from an in-process connector generating deterministic contacts (names
   from a syllable generator, companies, e-mails, an office number for all and a mobile
   for half).  Throughput is records per second of that whole path.
2. **Connectors**: the same path from the ``sql`` connector (a SQLite table) and the
   ``files`` connector (a CSV file and an .xlsx file) with ``--source-rows`` rows each.
3. **Search**: ``DirectoryService.search`` as a user granted every directory, as the API
   calls it (rights query, index, cards read from the store), with a mix of queries:
   last-name prefixes of 3-6 letters, "first last", company words, e-mail parts, numbers
   written in several forms.  p50/p99 over ``--queries`` queries.
4. **Reverse lookup**: ``DirectoryService.reverse_now`` (what the telephony service calls
   on a call) for numbers of the data set in random written forms and 10 % unknown
   numbers: *cold* (every number new: one indexed query on the store) and *hot* (the same
   numbers again: answered by the bounded LRU cache); plus the API path ``reverse``.
5. **Canonical keys**: ``DialingPlan.canonical_keys`` of the written forms, numbers/s.
6. **Memory and restart**: process RSS before and after the load; then the kernel is
   stopped and a new one started on the same store: time until a search answers, and RSS.

The load average (``uptime``) is printed with the figures: the machine is shared, figures
taken under load are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs
from common import machine, write_section

from twpcore.app import Kernel
from twpcore.config import Config
from twpcore.hookspecs import hookimpl
from twpcore.kinds import DirectoryConnector, SourceRecord
from twpcore.schema import setting

SYLLABLES = ("ma", "ri", "du", "pon", "le", "fe", "vre", "ber", "nar", "gi", "rou", "lan", "mo", "rel", "ta", "vel", "co", "tin",
             "bou", "chet", "da", "vid", "lau", "ren", "pe", "tit", "gar", "nier", "fa", "bre", "bon", "net", "mi", "chel", "ro", "ger")
FIRST = ("Jean", "Marie", "Pierre", "Anne", "Paul", "Léa", "Louis", "Emma", "Hugo", "Chloé", "Lucas", "Inès", "Jules", "Zoé", "Élodie",
         "Nicolas", "Sophie", "Thomas", "Julie", "Antoine", "Camille", "Marc", "Claire", "Éric", "Sarah", "Olivier", "Laura", "Yves")
FIELDS = {"id": "uid", "last_name": "sn", "first_name": "givenName", "company": "o", "email": "mail", "phone": "telephoneNumber", "mobile": "mobile"}


def last_name(i: int) -> str:
    rng = random.Random(i * 7919)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def company(i: int) -> str:
    rng = random.Random(i * 104729)
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize() + rng.choice((" SA", " SARL", " & Fils", " Conseil", ""))


def contact(d: int, i: int) -> dict[str, Any]:
    n = d * 10_000_000 + i
    rng = random.Random(n)
    last = last_name(rng.randrange(60_000))
    first = rng.choice(FIRST)
    comp = company(rng.randrange(20_000))
    office = f"0{1 + n % 5} {(n // 1_000_000) % 100:02d} {(n // 10_000) % 100:02d} {(n // 100) % 100:02d} {n % 100:02d}"
    rec = {"uid": str(i), "sn": last, "givenName": first, "o": comp, "mail": f"{first.lower()}.{last.lower()}{i}@{comp.split()[0].lower()}.fr",
           "telephoneNumber": office}
    if i % 2 == 0:
        rec["mobile"] = f"06{(n * 37) % 100_000_000:08d}"
    return rec


@attrs.frozen
class GenConfig:
    directory: int = setting(0)
    count: int = setting(1000)


class Generated(DirectoryConnector):
    type_name = "bench"
    Config = GenConfig
    capabilities = frozenset({"sync"})

    async def records(self, user: Any = None):
        for i in range(self.config.count):
            yield SourceRecord(f"uid={i}", contact(self.config.directory, i))


class BenchPlugin:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(Generated)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def written(number: str, rng: random.Random) -> str:
    digits = re.sub(r"\D", "", number)
    national = digits[1:]
    return rng.choice((f"+33 {national[0]} {national[1:3]} {national[3:5]} {national[5:7]} {national[7:]}", f"0033{national}", digits,
                       f"0{digits}", f"+33{national}", f"+33 (0){national}"))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="twp-bench-dir-"))
    db_url = args.db or f"sqlite:///{tmp / 'twp.db'}"
    config = Config.from_dict({"storage": {"url": db_url}}, source="<bench>")
    kernel = Kernel.build(config, extra_plugins=[("bench", BenchPlugin())])
    await kernel.start()
    svc = kernel.directories
    store = kernel.store
    import sqlalchemy as sa

    from twpcore.directory import db  # noqa: F401 - imported for its side effect: the store's tables and helpers are loaded before the timed part
    from twpcore.store import schema as t

    def setup(conn: sa.Connection) -> tuple[int, int, list[int]]:
        cid = conn.execute(sa.insert(t.companies).values(name="Bench").returning(t.companies.c.id)).scalar_one()
        did = conn.execute(sa.insert(t.domains).values(company_id=cid, name="Paris").returning(t.domains.c.id)).scalar_one()
        uid = conn.execute(sa.insert(t.users).values(domain_id=did, login="bench").returning(t.users.c.id)).scalar_one()
        dirs = []
        per = args.contacts // args.directories
        for d in range(args.directories):
            dirs.append(conn.execute(sa.insert(t.directories).values(
                domain_id=did, name=f"Directory {d}", connector="bench", type="public", priority=10 * (d % 5), options={"directory": d, "count": per},
                fields=FIELDS, merge=False, sync_daily=False).returning(t.directories.c.id)).scalar_one())
            conn.execute(sa.insert(t.authorizations).values(company_id=cid, object_type="directory", object_ref=f"directory:{dirs[-1]}",
                                                            object_domain_id=did, subject_type="user", subject_id=uid, subject_domain_id=did))
        return did, uid, dirs

    domain_id, user_id, dirs = await store.run(setup)
    await svc.reload()
    rss0 = rss_mb()
    out: dict[str, Any] = {
        "contacts": args.contacts,
        "directories": args.directories,
        "db": "SQLite" if db_url.startswith("sqlite") else "PostgreSQL",
    }

    t0 = time.perf_counter()
    rates = []
    for did in dirs:
        t1 = time.perf_counter()
        report = await svc.sync(did, "bench")
        assert report.status == "ok", report.error
        rates.append(report.records / (time.perf_counter() - t1))
        print(f"  directory {did}: {report.records} records, {report.created} created in {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    load = time.perf_counter() - t0
    out["load_s"] = load
    out["sync_rate"] = statistics.median(rates)
    out["rss_before"] = rss0
    out["rss_after"] = rss_mb()
    out["indexed"] = svc.index.contacts
    out["load_avg"] = [os.getloadavg()[0]]
    # A re-sync where nothing changed (the daily case).
    t1 = time.perf_counter()
    report = await svc.sync(dirs[0], "bench")
    out["resync_rate"] = report.records / (time.perf_counter() - t1)

    # Connectors: sql (SQLite table), files (CSV, xlsx) through the same sync path.
    rows = [contact(99, i) for i in range(args.source_rows)]
    cols = ["uid", "sn", "givenName", "o", "mail", "telephoneNumber", "mobile"]
    sqlite_path = tmp / "crm.db"
    with sqlite3.connect(sqlite_path) as c:
        c.execute(f"create table contacts ({', '.join(cols)})")
        c.executemany(f"insert into contacts values ({', '.join('?' * len(cols))})", [[r.get(k) for k in cols] for r in rows])
    csv_path = tmp / "contacts.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, cols, delimiter=";")
        w.writeheader()
        w.writerows(rows)
    sources = [("sql", {"url": f"sqlite:///{sqlite_path}", "table": "contacts"}), ("files", {"path": str(csv_path)})]
    try:
        import openpyxl

        xlsx_path = tmp / "contacts.xlsx"
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Contacts")
        sheet.append(cols)
        for r in rows:
            sheet.append([r.get(k) for k in cols])
        book.save(xlsx_path)
        sources.append(("files", {"path": str(xlsx_path)}))
    except ImportError:
        pass
    out["connectors"] = []
    for connector, options in sources:
        if connector not in kernel.plugins.types[next(iter(kernel.plugins.types))] and connector not in {
                n for types in kernel.plugins.types.values() for n in types}:
            continue
        ident = await store.run(lambda c, o=options, n=connector: c.execute(sa.insert(t.directories).values(
            domain_id=domain_id, name=f"{n} {len(out['connectors'])}", connector=n, type="draft", priority=99, options=o, fields=FIELDS,
            sync_daily=False).returning(t.directories.c.id)).scalar_one())
        await store.run(lambda c, i=ident: c.execute(sa.update(t.directories).where(t.directories.c.id == i).values(type="public")))
        await svc.changed(ident)
        t1 = time.perf_counter()
        report = await svc.sync(ident, "bench")
        assert report.status == "ok", report.error
        label = "sql (SQLite table)" if connector == "sql" else f"files ({Path(options['path']).suffix[1:]})"
        out["connectors"].append((label, report.records, report.records / (time.perf_counter() - t1)))
        await store.run(lambda c, i=ident: c.execute(sa.update(t.directories).where(t.directories.c.id == i).values(type="draft")))
        await svc.changed(ident)

    # Search.
    rng = random.Random(1)
    per = args.contacts // args.directories
    queries = []
    for k in range(args.queries):
        c = contact(rng.randrange(args.directories), rng.randrange(per))
        kind = k % 6
        if kind in (0, 1):
            queries.append(c["sn"][: rng.randint(3, 6)])
        elif kind == 2:
            queries.append(f"{c['givenName']} {c['sn']}")
        elif kind == 3:
            queries.append(c["o"].split()[0][: rng.randint(4, 8)])
        elif kind == 4:
            queries.append(c["mail"].split("@")[0])
        else:
            queries.append(written(c["telephoneNumber"], rng))
    for q in queries[:20]:
        await svc.search(user_id, q, 0, 20)
    times, hits = [], 0
    for q in queries:
        t1 = time.perf_counter()
        result = await svc.search(user_id, q, 0, 20)
        times.append((time.perf_counter() - t1) * 1000)
        hits += bool(result["items"])
    out["search"] = (pct(times, 50), pct(times, 99), max(times), hits / len(queries))
    by_kind: dict[str, list[float]] = {}
    for k, ms in enumerate(times):
        by_kind.setdefault(("prefix", "prefix", "first last", "company", "e-mail", "number")[k % 6], []).append(ms)
    out["search_kinds"] = {k: (pct(v, 50), pct(v, 99)) for k, v in by_kind.items()}

    # Reverse lookup in process (telephony path) and through the API path.
    await svc.refresh_visibility()
    numbers = []
    for _ in range(args.queries * 5):
        c = contact(rng.randrange(args.directories), rng.randrange(per))
        numbers.append(written(c["telephoneNumber"] if rng.random() < 0.6 or "mobile" not in c else c["mobile"], rng)
                       if rng.random() < 0.9 else f"04 99 {rng.randrange(10**6):06d}")
    svc.reverse_cache.size = max(svc.reverse_cache.size, 1)
    for label in ("reverse", "reverse_hot"):
        if label == "reverse":
            svc.reverse_cache.clear()
        times, found = [], 0
        for n in numbers:
            t1 = time.perf_counter()
            hit = svc.reverse_now(n, domain_id, user_id)
            times.append((time.perf_counter() - t1) * 1000)
            found += hit is not None
        out[label] = (pct(times, 50), pct(times, 99), max(times), found / len(numbers))
    # The hot pass above only hits the cache for the numbers it still holds (the LRU keeps the last ones).
    hot = numbers[-min(len(numbers), svc.reverse_cache.size // 2):]
    times = []
    for n in hot:
        t1 = time.perf_counter()
        svc.reverse_now(n, domain_id, user_id)
        times.append((time.perf_counter() - t1) * 1000)
    out["reverse_hot"] = (pct(times, 50), pct(times, 99), max(times), out["reverse_hot"][3])
    times = []
    for n in numbers[: args.queries]:
        t1 = time.perf_counter()
        await svc.reverse(n, user_id=user_id)
        times.append((time.perf_counter() - t1) * 1000)
    out["reverse_api"] = (pct(times, 50), pct(times, 99))
    plan = await store.run(kernel.dialing_plans.get, domain_id)
    t1 = time.perf_counter()
    for n in numbers:
        plan.canonical_keys(n)
    out["keys_rate"] = len(numbers) / (time.perf_counter() - t1)
    out["rss_end"] = rss_mb()
    out["load_avg"].append(os.getloadavg()[0])
    await kernel.stop()

    # Restart: a new kernel on the same store, until a directory search answers.
    t1 = time.perf_counter()
    kernel = Kernel.build(config, extra_plugins=[("bench", BenchPlugin())])
    await kernel.start()
    while True:
        try:
            await kernel.directories.search(user_id, queries[0], 0, 20)
            break
        except Exception:  # noqa: BLE001 - 503 while loading
            await asyncio.sleep(0.05)
    out["restart_s"] = time.perf_counter() - t1
    out["rss_restarted"] = rss_mb()
    await kernel.stop()
    return out


def report(out: dict[str, Any]) -> str:
    lines = [
        f"Directory benchmark, {datetime.date.today().isoformat()}, {machine()}; store: {out['db']}; "
        f"load average {out['load_avg'][0]:.1f} after the load, {out['load_avg'][1]:.1f} at the end "
        "(a shared machine: figures taken under load are noisy).",
        "",
        f"{out['contacts']:,} contacts in {out['directories']} directories, loaded through the real sync path "
        f"(connector → mapping → content hash → canonical keys → store in batches → published) in {out['load_s']:.0f} s.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sync throughput, first load (median per directory) | {out['sync_rate']:,.0f} records/s |",
        f"| re-sync, nothing changed | {out['resync_rate']:,.0f} records/s |",
    ]
    for label, n, rate in out["connectors"]:
        lines.append(f"| sync throughput, {label}, {n:,} rows | {rate:,.0f} records/s |")
    s, r, rh, ra = out["search"], out["reverse"], out["reverse_hot"], out["reverse_api"]
    lines += [
        f"| search p50 / p99 / max (`DirectoryService.search`, page of 20 with cards) "
        f"| {s[0]:.2f} / {s[1]:.2f} / {s[2]:.1f} ms ({s[3]:.0%} of queries found something) |",
        *[f"| search p50 / p99, {k} queries | {v[0]:.2f} / {v[1]:.2f} ms |" for k, v in out["search_kinds"].items()],
        f"| reverse lookup p50 / p99 / max in process, cold (`reverse_now`, every number new: a store query) "
        f"| {r[0] * 1000:.0f} / {r[1] * 1000:.0f} / {r[2] * 1000:.0f} µs ({r[3]:.0%} found) |",
        f"| reverse lookup p50 / p99 / max in process, hot (`reverse_now`, numbers in the LRU cache) "
        f"| {rh[0] * 1000:.0f} / {rh[1] * 1000:.0f} / {rh[2] * 1000:.0f} µs |",
        f"| reverse lookup p50 / p99 through the API path (`reverse`, rights + card from the store) | {ra[0]:.2f} / {ra[1]:.2f} ms |",
        f"| canonical keys of the written numbers (`DialingPlan.canonical_keys`) | {out['keys_rate']:,.0f} numbers/s |",
        f"| restart: new kernel on the same store until a directory search answers | {out['restart_s']:.2f} s |",
        f"| process RSS: before load / after load / end of the run / new kernel after restart "
        f"| {out['rss_before']:.0f} / {out['rss_after']:.0f} / {out['rss_end']:.0f} / {out['rss_restarted']:.0f} MiB |",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--directories", type=int, default=10)
    p.add_argument("--source-rows", type=int, default=50_000, help="rows of the sql and files sources")
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--db", help="store URL (default: SQLite in a temporary directory)")
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    text = report(asyncio.run(run(args)))
    print(text)
    if args.write:
        write_section("bench_directory", text, "Directories (bench_directory.py)")


if __name__ == "__main__":
    main()
