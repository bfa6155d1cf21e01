"""Telephony at scale: supervise many devices, sustain call events, measure latency and memory.

One command: ``.venv/bin/python benchmarks/bench_telephony.py`` (``--devices 50000 --rate 200
--seconds 30`` are the defaults; ``--write`` updates docs/benchmarks.md).  ``--driver`` picks the
link: ``mxone`` (CSTA XML, J.2, the default) or a CSTA BER driver (``openscape-business``:
HiPath framing and ACSE; ``alcatel-oxo``: ``B``/``P``, ACSE, bare TLV; ``mxone-al``: 2-byte
length), the simulator speaking the same encoding, framing and association.

Set-up, all on loopback: the PBX simulator (``twp_csta.sim``) runs in this
process; a real ``twp serve`` runs in its own process with one MX-One link to it, one
domain holding ``--devices`` users and devices (bulk-inserted before start), so the
kernel's memory is read alone from ``/proc/<pid>/status``.  An admin WebSocket on
``/api/v1/events`` receives every event.

Measured:
- time from server start until every device is monitored (MonitorStart + SnapshotDevice each);
- kernel memory (RSS) before devices and after supervision, per 10,000 devices;
- PBX frame to WebSocket client latency for ``call.delivered`` / ``call.established`` /
  ``call.cleared`` while the simulator sustains ``--rate`` call events per second
  (each simulated call = delivered, established, cleared at the called device);
- make-call request to frame on the wire: ``POST /api/v1/calls`` until the simulator
  reads the MakeCall request.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine, write_section

from twp_csta.sim import PbxSimulator, SimConfig
from twpcore.auth import create_admin, hash_password
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.testing.servers import find_free_port

FIRST = 100000
#: Simulator wire of each driver the benchmark can run (encoding, framing, association).
WIRES: dict[str, dict[str, str]] = {
    "mxone": {"encoding": "xml", "framing": "j2"},
    "openscape-business": {"encoding": "ber", "framing": "hipath", "association": "acse"},
    "alcatel-oxo": {"encoding": "ber", "framing": "tlv", "association": "oxo"},
    "mxone-al": {"encoding": "ber", "framing": "len2", "association": "acse"},
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def populate(url: str, n: int) -> tuple[str, str]:
    """Company, domain, ``n`` users with a device each, an admin and one user with a password."""
    store = Store(url)
    store.upgrade()
    password = "bench-password-1"
    with store.engine.begin() as conn:
        company = conn.execute(sa.insert(t.companies).values(name="Bench").returning(t.companies.c.id)).scalar_one()
        domain = conn.execute(
            sa.insert(t.domains).values(company_id=company, name="Paris", numbering_plan_length=6).returning(t.domains.c.id)
        ).scalar_one()
        pw = hash_password(password)
        batch = 5000
        for start in range(0, n, batch):
            rows = [
                {"domain_id": domain, "login": f"u{FIRST + i}", "password_hash": pw if i == 0 else None} for i in range(start, min(n, start + batch))
            ]
            conn.execute(sa.insert(t.users), rows)
        ids = conn.execute(sa.select(t.users.c.id, t.users.c.login).where(t.users.c.domain_id == domain)).all()
        devices = [{"domain_id": domain, "user_id": uid, "number": login[1:], "protocol": "CSTA"} for uid, login in ids]
        for start in range(0, len(devices), batch):
            conn.execute(sa.insert(t.devices), devices[start:start + batch])
        create_admin(conn, "bench", password, super_user=True)
    store.close()
    return "bench", password


def start_serve(tmp: Path, url: str, port: int, link: str, options: str) -> subprocess.Popen:
    """Write ``tmp/twp.toml`` (the store at ``url``, HTTP on ``port``, one PBX link ``link`` whose table holds the TOML
    lines ``options``) and start ``twp serve`` on it; the server's stderr goes to ``tmp/serve.log``."""
    cfg = tmp / "twp.toml"
    cfg.write_text(f"""
[storage]
url = "{url}"
[http]
port = {port}
websocket_queue = 100000
[logging]
level = "WARNING"
[pbx.links.{link}]
{options.strip()}
""")
    with open(tmp / "serve.log", "w") as serve_log:  # the server keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "serve"], cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=serve_log)


async def wait_http(base: str, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with s.get(base + "/api/v1/health") as r:
                    if r.status in (200, 503):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the server did not answer in time")


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="twp-bench-tel-"))
    sim = PbxSimulator(SimConfig(system_status_interval=None, external_default="ring", **WIRES[args.driver]))  # type: ignore[arg-type]
    await sim.start()
    make_call_seen: dict[str, float] = {}
    original = sim._req_MakeCall

    def spy(link, m):  # the moment the MakeCall frame was read off the wire
        make_call_seen[m.calling_device or m.text("callingDevice") or "?"] = time.perf_counter()
        return original(link, m)

    sim._req_MakeCall = spy  # type: ignore[method-assign]
    url = f"sqlite:///{tmp / 'twp.db'}"
    t0 = time.perf_counter()
    login, password = populate(url, args.devices)
    populate_s = time.perf_counter() - t0
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = start_serve(tmp, url, port, "bench", f"""
driver = "{args.driver}"
host = "127.0.0.1"
port = {sim.port}
company = "Bench"
domain = "Paris"
capacity = {args.devices + 10}
heartbeat_interval = 0
request_timeout = 30
""")
    result: dict = {"devices": args.devices, "populate_s": round(populate_s, 1)}
    try:
        await wait_http(base)
        result["rss_ready_mib"] = round(rss_kib(proc.pid) / 1024, 1)
        numbers = [str(FIRST + i) for i in range(args.devices)]
        await sim.wait_until(lambda: all(sim.monitored(n) for n in numbers[-100:]) and all(sim.monitored(n) for n in numbers[::997]),
                             timeout=1800, what="every device monitored")
        result["supervise_s"] = round(time.perf_counter() - started, 1)
        await asyncio.sleep(2)
        rss = rss_kib(proc.pid) / 1024
        result["rss_supervised_mib"] = round(rss, 1)
        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/api/v1/auth/admin-login", json={"login": login, "password": password}) as r:
                admin_token = (await r.json())["token"]
            async with s.post(base + "/api/v1/auth/login", json={"login": f"u{FIRST}", "password": password}) as r:
                user_token = (await r.json())["token"]
            # Kernel memory for the device set alone: compare with an empty server of the same build.
            ws = await s.ws_connect(base + f"/api/v1/events?access_token={admin_token}", max_msg_size=0)
            await ws.receive_json()
            pending: dict[tuple[str, str], collections.deque] = collections.defaultdict(collections.deque)
            latencies: dict[str, list[float]] = collections.defaultdict(list)
            received = 0

            async def reader() -> None:
                nonlocal received
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    now = time.perf_counter()
                    ev = json.loads(msg.data)
                    received += 1
                    data = ev.get("data", {})
                    key = (data.get("device"), ev["type"])
                    q = pending.get(key)
                    if q:
                        latencies[ev["type"]].append((now - q.popleft()) * 1000)

            reading = asyncio.get_running_loop().create_task(reader())
            # Sustained load: each call gives three CSTA events at the called device.
            calls_per_s = args.rate / 3
            interval = 1 / calls_per_s
            active: collections.deque = collections.deque()
            sent_events = 0
            load_start = time.perf_counter()
            i = 1
            next_at = load_start
            while time.perf_counter() - load_start < args.seconds:
                now = time.perf_counter()
                if now < next_at:
                    await asyncio.sleep(next_at - now)
                next_at += interval
                device = numbers[i % len(numbers)]
                i += 1
                pending[(device, "call.delivered")].append(time.perf_counter())
                await sim.incoming_call(f"0{600000000 + i}", device)
                sent_events += 1
                active.append((time.perf_counter() + 0.3, device, "answer"))
                while active and active[0][0] <= time.perf_counter():
                    _, dev, step = active.popleft()
                    if step == "answer":
                        pending[(dev, "call.established")].append(time.perf_counter())
                        sim.answer(dev)
                        active.append((time.perf_counter() + 0.3, dev, "hangup"))
                    else:
                        pending[(dev, "call.cleared")].append(time.perf_counter())
                        sim.hang_up(dev)
                    sent_events += 1
            load_s = time.perf_counter() - load_start
            await asyncio.sleep(3)
            result["events_per_s_sent"] = round(sent_events / load_s, 1)
            result["ws_messages"] = received
            for kind in ("call.delivered", "call.established", "call.cleared"):
                values = latencies[kind]
                result[kind] = {
                    "n": len(values),
                    "p50_ms": round(pct(values, 0.5), 2),
                    "p99_ms": round(pct(values, 0.99), 2),
                    "max_ms": round(max(values), 2) if values else None,
                }
            every = [v for k in latencies for v in latencies[k]]
            result["all_p50_ms"], result["all_p99_ms"] = round(pct(every, 0.5), 2), round(pct(every, 0.99), 2)
            missing = sum(len(q) for q in pending.values())
            result["events_missing"] = missing
            # make-call request to MakeCall frame read by the switch
            mc = []
            headers = {"Authorization": f"Bearer {user_token}"}
            for n in range(args.make_calls):
                make_call_seen.pop(str(FIRST), None)
                t1 = time.perf_counter()
                async with s.post(base + "/api/v1/calls", json={"number": f"2{n:05d}"}, headers=headers) as r:
                    body = await r.json()
                    if r.status != 201:
                        raise SystemExit(f"make call failed: {r.status} {body}")
                seen = make_call_seen.get(str(FIRST))
                if seen:
                    mc.append((seen - t1) * 1000)
                sim.hang_up(str(FIRST))
                await asyncio.sleep(0.05)
            result["make_call_to_wire"] = {"n": len(mc), "p50_ms": round(pct(mc, 0.5), 2), "p99_ms": round(pct(mc, 0.99), 2)}
            reading.cancel()
            await ws.close()
        result["rss_after_load_mib"] = round(rss_kib(proc.pid) / 1024, 1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        await sim.stop()
    return result


async def empty_server_rss() -> float:
    """RSS of a ready server with no device, to isolate what devices cost."""
    tmp = Path(tempfile.mkdtemp(prefix="twp-bench-empty-"))
    port = find_free_port()
    cfg = tmp / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp / "twp.db"}"\n[http]\nport = {port}\n[logging]\nlevel = "WARNING"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "serve"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}")
        await asyncio.sleep(2)
        return rss_kib(proc.pid) / 1024
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def markdown(r: dict, empty: float) -> str:
    per10k = (r["rss_supervised_mib"] - empty) / r["devices"] * 10000
    today = dt.date.today().isoformat()
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| devices supervised on one node (one link, MonitorStart + SnapshotDevice each) "
        f"| {r['devices']:,} in {r['supervise_s']} s from process start |",
        f"| kernel memory: empty server / with {r['devices']:,} supervised devices | {empty:.0f} MiB / {r['rss_supervised_mib']:.0f} MiB |",
        f"| memory per 10,000 supervised devices | {per10k:.1f} MiB |",
        f"| call events sustained (sent by the switch) | {r['events_per_s_sent']} events/s for the run |",
        f"| PBX frame to WebSocket client, all events, p50 / p99 | {r['all_p50_ms']} ms / {r['all_p99_ms']} ms |",
    ]
    for kind in ("call.delivered", "call.established", "call.cleared"):
        k = r[kind]
        rows.append(f"| … `{kind}` (n={k['n']}) p50 / p99 / max | {k['p50_ms']} / {k['p99_ms']} / {k['max_ms']} ms |")
    mc = r["make_call_to_wire"]
    rows.append(f"| make-call request to MakeCall frame read by the switch (n={mc['n']}), p50 / p99 | {mc['p50_ms']} ms / {mc['p99_ms']} ms |")
    rows.append(f"| events expected but never received | {r['events_missing']} |")
    rows.append(f"| load average (1 min) at start | {r['load']} |")
    driver = "" if r["driver"] == "mxone" else f" --driver {r['driver']}"
    wire = ", ".join(f"{k} {v}" for k, v in WIRES[r["driver"]].items())
    return "\n".join([f"Measured {today} on {machine()}; link `{r['driver']}` ({wire}); command: `python benchmarks/bench_telephony.py "
                      f"--devices {r['devices']} --rate {r['rate']} --seconds {r['seconds']}{driver}`.", "", *rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=50000)
    p.add_argument("--rate", type=float, default=200, help="call events per second the switch sends")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--make-calls", type=int, default=200)
    p.add_argument("--driver", choices=sorted(WIRES), default="mxone", help="PBX link driver: mxone (CSTA XML) or a CSTA BER driver")
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    load = round(os.getloadavg()[0], 2)
    empty = asyncio.run(empty_server_rss())
    result = asyncio.run(run(args))
    result.update(rate=args.rate, seconds=args.seconds, driver=args.driver, load=load)
    print(json.dumps(result, indent=2))
    text = markdown(result, empty)
    print(text)
    if args.write:
        if args.driver == "mxone":
            write_section("bench_telephony", text, "Telephony (bench_telephony.py)")
        else:
            write_section("bench_telephony_ber", text, "Telephony over a CSTA BER link (bench_telephony.py --driver ...)")


if __name__ == "__main__":
    main()
