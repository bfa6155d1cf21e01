"""SIP phones at scale: N uaCSTA phones played by SIPp, one ``twp serve`` with a ``snom`` link to them.

One command: ``.venv/bin/python benchmarks/bench_sip_phones.py`` (``--phones 1000 --calls 20``
are the defaults; ``--write`` updates docs/benchmarks.md).

Set-up, all on loopback: one SIPp process (``twp_csta.sim.sipp``, scenario ``uacsta_phone.xml``,
story ``events``, TCP by default, ``--transport udp``) plays every phone: TWP's INVITE opens one dialog per phone (the number is
the request URI's user), ``MonitorStart`` comes in INFO, and 5 s later (by then the WebSocket client
listens; TWP's keep-alive is off, SIPp could not answer it in the middle of its calls) each phone plays
``--calls`` incoming calls, each a ``DeliveredEvent`` and a ``ConnectionClearedEvent`` sent in INFO and
waiting for TWP's 200 before the next.  A real ``twp serve`` runs in its own process with one
``snom`` link (uaCSTA firmware), ``--phones`` users and devices bulk-inserted before start, and an
admin WebSocket on ``/api/v1/events`` receives every event.

Measured:
- sessions: time from server start until every phone's uaCSTA session is open and monitored;
- events per second reaching the WebSocket (``call.delivered`` + ``call.cleared``) while the
  phones play their calls, and how many of the events sent arrived;
- latency from the phone's INFO to the WebSocket client: SIPp writes its clock
  (``gettimeofday``) into the call id of each Delivered event; the client subtracts it from its
  own clock when ``call.delivered`` arrives (same machine, same clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_telephony import FIRST, pct, populate, rss_kib, start_serve, wait_http
from common import machine, machine_info, write_section

from twp_csta.sim.sipp import SippPhones
from twpcore.testing.servers import find_free_port


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="twp-bench-sip-"))
    phones = SippPhones(story="events", transport=args.transport, calls=args.phones, count=args.calls)
    await phones.start()
    url = f"sqlite:///{tmp / 'twp.db'}"
    login, password = populate(url, args.phones)
    port = find_free_port()
    phone_map = ", ".join(f'"{FIRST + i}" = "{phones.address}"' for i in range(args.phones))
    result: dict = {"phones": args.phones, "calls_per_phone": args.calls, "transport": args.transport}
    started = time.perf_counter()
    proc = start_serve(tmp, url, port, "phones", f"""
driver = "snom"
company = "Bench"
domain = "Paris"
host = "127.0.0.1"
port = 0
transport = "{args.transport}"
firmware = "10.1.46.16"
capacity = {args.phones + 10}
keepalive_interval = 0
request_timeout = 30
phones = {{ {phone_map} }}
""")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base)
        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/api/v1/auth/admin-login", json={"login": login, "password": password}) as r:
                token = (await r.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            ws = await s.ws_connect(base + f"/api/v1/events?access_token={token}", max_msg_size=0)
            await ws.receive_json()
            latencies: list[float] = []
            arrivals: list[float] = []
            counts = {"call.delivered": 0, "call.cleared": 0}

            async def reader() -> None:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    now = time.time()
                    event = json.loads(msg.data)
                    kind = event.get("type")
                    if kind not in counts:
                        continue
                    counts[kind] += 1
                    arrivals.append(time.perf_counter())
                    if kind == "call.delivered":
                        parts = str(event["data"]["call"]["call_id"]).split("-")
                        if len(parts) == 4:
                            latencies.append((now - (float(parts[2]) + float(parts[3]) / 1e6)) * 1000)

            reading = asyncio.get_running_loop().create_task(reader())
            expected = args.phones * args.calls * 2
            deadline = time.perf_counter() + args.timeout
            supervised_at = None
            while time.perf_counter() < deadline:
                async with s.get(base + "/api/v1/links", headers=headers) as r:
                    link = next(i for i in (await r.json())["items"] if i["name"] == "phones")
                if supervised_at is None and link.get("current") == args.phones:
                    supervised_at = time.perf_counter()
                    result["sessions"] = link["current"]
                    result["sessions_s"] = round(supervised_at - started, 1)
                if sum(counts.values()) >= expected:
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(1)
            reading.cancel()
            await ws.close()
            result["sessions_open"] = sum(1 for v in link["stats"].get("phones", {}).values() if v == "up")
            result.setdefault("sessions", link.get("current"))
            result["events_expected"], result["events_received"] = expected, sum(counts.values())
            if len(arrivals) > 1:
                span = arrivals[-1] - arrivals[0]
                result["events_per_s"] = round((len(arrivals) - 1) / span, 1) if span > 0 else None
            result["info_to_ws_ms"] = {"n": len(latencies), "p50": round(statistics.median(latencies), 2) if latencies else None,
                                      "p99": round(pct(latencies, 0.99), 2) if latencies else None,
                                      "max": round(max(latencies), 2) if latencies else None}
            kept = ("events", "emit_errors", "csta_errors", "sessions_lost")
            result["sip"] = {k: v for k, v in link["stats"].items() if k.startswith("sip_") or k in kept}
        result["rss_mib"] = round(rss_kib(proc.pid) / 1024, 1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if phones.process is not None and phones.process.returncode is None:
            result["sipp_calls_unfinished"] = True
        await phones.kill()
        result["sipp_errors"] = (phones.workdir / "errors.log").read_text(errors="replace")[:3000] if (phones.workdir / "errors.log").exists() else ""
        await phones.stop()
    return result


def report(result: dict) -> str:
    m = machine_info()
    lat = result["info_to_ws_ms"]
    return "\n".join([
        f"Command: `.venv/bin/python benchmarks/bench_sip_phones.py --phones {result['phones']} --calls {result['calls_per_phone']} "
        f"--transport {result['transport']} --write`. "
        f"Machine: {machine()}; load average {m['load']} at the start; {m['date']}. One SIPp process ({result['transport']}) plays every phone; "
        "one `twp serve` (SQLite) with a `snom` link in uaCSTA mode.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| phones (SIPp dialogs) | {result['phones']} |",
        f"| uaCSTA sessions open and monitored | {result.get('sessions_open')} of {result['phones']}, "
        f"all within {result.get('sessions_s')} s of server start |",
        f"| call events sent by the phones (Delivered + Cleared, in INFO) | {result['events_expected']} |",
        f"| events received on the WebSocket | {result['events_received']} |",
        f"| events per second reaching the WebSocket | {result.get('events_per_s')} |",
        f"| phone INFO → WebSocket, median / p99 / max (ms, n={lat['n']}) | {lat['p50']} / {lat['p99']} / {lat['max']} |",
        f"| SIP counters of the link | {', '.join(f'{k} {v}' for k, v in result['sip'].items())} |",
        f"| server memory after the run (RSS) | {result['rss_mib']} MiB |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20, help="incoming calls each phone plays after MonitorStart")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp", help="SIP transport between TWP and the phones")
    parser.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.write:
        write_section("sip-phones", report(result), "SIP phones over uaCSTA (issue 16)")


if __name__ == "__main__":
    main()
