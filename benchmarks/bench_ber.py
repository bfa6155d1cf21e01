"""CSTA BER codec throughput: messages encoded and decoded per second on one core.

Run ``python benchmarks/bench_ber.py`` (``--write`` also updates its section of
``docs/benchmarks.md``).  Three workloads, each through ``twp_csta.ber.BerCodec`` and,
for comparison, the XML ``Codec`` (edition 5) on the same ``Message`` values:

* ``DeliveredEvent``: the event a PBX sends most (one per ringing device and monitor);
* ``MakeCall``: a request with two device ids;
* the mix: every message of ``twp_csta.ber.samples`` (27 requests, 25 answers, 19
  events, 9 errors), as many of each.

A run encodes (or decodes) the workload for about 0.5 s; the figure is the median of 7
runs, with min and max.  Decoding includes the structural check of the bytes (size and
depth caps) that protects the link from a hostile PBX.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import RATE_RUN_SECONDS, RATE_RUNS, machine, machine_info, rate, write_section

from twp_csta.ber import BerCodec, samples
from twp_csta.xml.codec import Codec, Message

RUNS = RATE_RUNS
RUN_SECONDS = RATE_RUN_SECONDS


def workloads() -> dict[str, list[Message]]:
    events = samples.events()
    delivered = next(m for m in events if m.name == "DeliveredEvent")
    make_call = next(m for m in samples.all_messages() if m.name == "MakeCall")
    return {"DeliveredEvent": [delivered] * 50, "MakeCall": [make_call] * 50, "mix": samples.all_messages()}


def measure() -> list[tuple[str, str, str, list[float]]]:
    ber, xml = BerCodec(), Codec(edition=5)
    ber.encode(samples.all_messages()[0])  # compile the ASN.1 modules before timing
    rows = []
    for name, messages in workloads().items():
        for codec_name, codec in (("BER", ber), ("XML", xml)):
            frames = [codec.encode(m) for m in messages]

            def encode(codec=codec, messages=messages) -> int:
                for message in messages:
                    codec.encode(message)
                return len(messages)

            def decode(codec=codec, frames=frames) -> int:
                for frame in frames:
                    codec.decode(frame)
                return len(frames)

            size = sum(len(f) for f in frames) / len(frames)
            rows.append((name, codec_name, f"encode ({size:.0f} bytes avg)", rate(encode)))
            rows.append((name, codec_name, "decode", rate(decode)))
    return rows


def report(rows: list[tuple[str, str, str, list[float]]]) -> str:
    info = machine_info()
    lines = [
        f"Command: `python benchmarks/bench_ber.py --write` ({RUNS} runs of {RUN_SECONDS} s each per line; "
        "messages per second on one core, median with min-max).",
        "",
        f"Measured {info['date']} on {machine()}, load average {info['load']} at start.",
        "",
        "BER is slower per message than XML: asn1tools codes BER in pure Python, walking the type tree, and a",
        "ROSE APDU is decoded twice (the envelope, then the argument with the operation's type). What matters",
        "for issue 14's goal (500 call events/s on one node) is the DeliveredEvent decode rate: each call event",
        "reaches the driver as one decode per monitor, so the rate below must stay well above 500/s.",
        "",
        "| workload | codec | operation | messages/s (median) | min - max |",
        "|---|---|---|---|---|",
    ]
    for workload, codec, operation, values in rows:
        lines.append(
            f"| {workload} | {codec} | {operation} | {statistics.median(values):,.0f} | "
            f"{min(values):,.0f} - {max(values):,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    args = parser.parse_args()
    text = report(measure())
    print(text)
    if args.write:
        write_section("bench_ber", text, "CSTA BER codec (bench_ber.py)")


if __name__ == "__main__":
    main()
