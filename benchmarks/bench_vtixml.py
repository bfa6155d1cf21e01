"""VTI-XML (A5000): codec throughput, and supervising guide 4.2's 950 subscribers over three simulated links.

Run ``python benchmarks/bench_vtixml.py`` (``--write`` also updates its section of
``docs/benchmarks.md``).  Two measures:

* codec: the ``ringing`` event (the one a PBX sends most) and a ``Monitor`` request,
  encoded and decoded per second on one core (7 runs of about 0.5 s, median, min-max);
* supervision: three ``VtiClient`` links log in to a ``VtiXmlSimulator`` laid out as the
  guide's 4.2 table and monitor its 950 subscribers, 500 / 250 / 200 per link, one
  request at a time per link, the links in parallel; wall time from the first log-in to
  the last answer (7 runs, median, min-max).  The kernel is not in this loop: it is the
  protocol's part of a link coming up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import RATE_RUN_SECONDS, RATE_RUNS, machine, machine_info, rate, write_section

from twp_csta.sim import PbxSimulator
from twp_csta.sim.vtixml import VtiXmlSimulator, guide_4_2
from twp_csta.vtixml import VtiClient, decode, encode, message

RUNS = RATE_RUNS
RUN_SECONDS = RATE_RUN_SECONDS


def codec_rows() -> list[tuple[str, str, list[float]]]:
    ringing = message("Event", type="ringing", device="10001", callId="1234", state="alerting", calling="0612345678", called="10001")
    monitor = message("Monitor", id=42, device="10001")
    rows = []
    for name, msg in (("ringing Event", ringing), ("Monitor request", monitor)):
        data = encode(msg)
        rows.append((name, f"encode ({len(data)} bytes)", rate(lambda msg=msg: [encode(msg) for _ in range(100)] and 100)))
        rows.append((name, "decode", rate(lambda data=data: [decode(data) for _ in range(100)] and 100)))
    return rows


async def supervise_once() -> float:
    sites, locations = guide_4_2()
    switch = await PbxSimulator().start()
    vti = await VtiXmlSimulator(switch, sites, locations=locations, password="bench").start()
    by_site = {"link0": [n for n, s in locations.items() if s.startswith("1.")],
               "link1": [n for n, s in locations.items() if s.startswith("2.")],
               "link2": [n for n, s in locations.items() if s[0] in "34"]}
    try:
        start = time.perf_counter()

        async def run(site: str) -> None:
            client = await VtiClient.connect("127.0.0.1", vti.port(site), user="twp", password="bench", keepalive_interval=None)
            for number in by_site[site]:
                await client.request("Monitor", device=number)
            await client.close()

        await asyncio.gather(*(run(s) for s in by_site))
        elapsed = time.perf_counter() - start
        assert sum(len(vti.monitored_on(s)) for s in by_site) == 0  # closed links release their monitors
        return elapsed
    finally:
        await vti.stop()
        await switch.stop()


def report(rows: list[tuple[str, str, list[float]]], times: list[float]) -> str:
    info = machine_info()
    lines = [
        f"Command: `python benchmarks/bench_vtixml.py --write` ({RUNS} runs per line; median with min-max).",
        "",
        f"Measured {info['date']} on {machine()}, load average {info['load']} at start.",
        "",
        "| workload | operation | messages/s (median) | min - max |",
        "|---|---|---|---|",
    ]
    for name, operation, values in rows:
        lines.append(f"| {name} | {operation} | {statistics.median(values):,.0f} | {min(values):,.0f} - {max(values):,.0f} |")
    ms = [t * 1000 for t in times]
    lines += ["", "| supervision | median | min - max |", "|---|---|---|",
              f"| 950 subscribers over the three links of guide 4.2 (log-in + 950 Monitor answers) | {statistics.median(ms):,.0f} ms | "
              f"{min(ms):,.0f} - {max(ms):,.0f} ms |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    args = parser.parse_args()
    rows = codec_rows()
    times = [asyncio.run(supervise_once()) for _ in range(RUNS)]
    text = report(rows, times)
    print(text)
    if args.write:
        write_section("bench_vtixml", text, "VTI-XML, A5000 (bench_vtixml.py)")


if __name__ == "__main__":
    main()
