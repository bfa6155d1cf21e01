"""Dialing plan throughput: numbers per second through a 20-rule plan on one core.

Run ``python benchmarks/bench_dialplan.py`` (add ``--markdown`` for a row of
``docs/benchmarks.md``).  The plan is France's standard rules (9) plus 11 site rules of
every syntax: prefixes, the guide's regular expression, PBX patterns.  The numbers are
10,000 distinct ones in the forms a gateway sees: E.164, spaced international, national,
``+33 (0)``, ``0033``, foreign, internal, facility codes, numbers caught by site rules.
Each run transforms them for about a second; the figure is the median of 5 runs.  No
cache is involved: every call does the whole transformation, steps included.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine_info

from twpcore.dialplan import DialingPlan, Rule

SITE_RULES = (
    Rule(1, "3611", "03611"),
    Rule(2, "118", "[-ExternalPrefix-]118"),
    Rule(3, "[67]XXXXXXXX", "[-ExternalPrefix-]0$0", "pbx"),
    Rule(4, "9.", "$1", "pbx"),
    Rule(5, "8ZXXX", "$1", "pbx"),
    Rule(30, r"[(\+|[-InternationalPrefix-])?([^\)]+)\([^\]]+\)]", "[-ExternalPrefix-][-InternationalPrefix-]$2"),
    Rule(31, r"[(1[0-9])$]", "[-ExternalPrefix-]$1"),
    Rule(32, r"[(3[0-9]{3})$]", "[-ExternalPrefix-]$1"),
    Rule(33, "0800", "[-ExternalPrefix-]0800"),
    Rule(34, "1XX", "[-ExternalPrefix-]$0", "pbx"),
    Rule(35, "[-InternationalPrefix-]41", "[-ExternalPrefix-][-InternationalPrefix-]41"),
)


def build_plan() -> DialingPlan:
    standard = DialingPlan.default("FR")
    plan = DialingPlan(standard.settings, standard.rules + SITE_RULES)
    assert len(plan.rules) == 20, len(plan.rules)
    return plan


def build_numbers(count: int = 10_000, seed: int = 5) -> list[str]:
    rng = random.Random(seed)

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    def spaced(nsn: str) -> str:
        return " ".join([nsn[0]] + [nsn[i : i + 2] for i in range(1, len(nsn), 2)])

    forms = [
        lambda: "+33" + rng.choice("123456789") + digits(8),
        lambda: "+33 " + spaced(rng.choice("1234567") + digits(8)),
        lambda: "0" + rng.choice("12345679") + digits(8),
        lambda: "0" + spaced(rng.choice("12345") + digits(8)),
        lambda: "+33 (0)" + rng.choice("1234") + digits(8),
        lambda: "0033" + rng.choice("1234567") + digits(8),
        lambda: "+44 20 " + digits(4) + " " + digits(4),
        lambda: "+1 " + rng.choice("2345") + digits(2) + "-555-" + digits(4),
        lambda: "+42(0)" + digits(9),
        lambda: digits(4),
        lambda: rng.choice(["*21*", "#31#", "*8", "#"]) + digits(rng.randint(0, 10)) + rng.choice(["", "#"]),
        lambda: rng.choice("67") + digits(8),
        lambda: "9" + "0" + rng.choice("1234") + digits(8),
        lambda: "3" + digits(3),
        lambda: "0041" + digits(9),
    ]
    numbers: dict[str, None] = {}
    while len(numbers) < count:
        numbers[forms[len(numbers) % len(forms)]()] = None
    return list(numbers)


def run_once(plan: DialingPlan, numbers: list[str], seconds: float, operation: str = "to_dialable") -> float:
    transform = getattr(plan, operation)
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for number in numbers:
            transform(number)
        done += len(numbers)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a table row for docs/benchmarks.md")
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each of the 5 runs")
    args = parser.parse_args(argv)

    plan = build_plan()
    numbers = build_numbers()
    run_once(plan, numbers[:1000], 0.2)  # warm up
    rates = [run_once(plan, numbers, args.seconds) for _ in range(5)]
    median = statistics.median(rates)
    # For scale, not the goal: the reverse transformation, and canonical keys (phonenumbers).
    received = statistics.median(run_once(plan, numbers, args.seconds / 2, "from_received") for _ in range(3))
    keys = statistics.median(run_once(plan, numbers[:2000], args.seconds / 2, "canonical_keys") for _ in range(3))
    info = machine_info()
    if args.markdown:
        where = f"{info['cpu']}, {info['platform']} | {info['python']} |"
        print("| date | benchmark | result | machine | python |")
        print("|---|---|---|---|---|")
        print(
            f"| {info['date']} | dialing plan `to_dialable`, 20 rules, {len(numbers):,} distinct numbers "
            f"| {median:,.0f} numbers/s (median of 5) | {where}"
        )
        print(f"| {info['date']} | dialing plan `from_received` | {received:,.0f} numbers/s (median of 3) | {where}")
        print(f"| {info['date']} | dialing plan `canonical_keys` | {keys:,.0f} numbers/s (median of 3) | {where}")
    else:
        print(f"dialing plan: {len(plan.rules)} rules, {len(numbers):,} distinct numbers, 5 runs of {args.seconds:g} s")
        print(f"to_dialable runs: {', '.join(f'{rate:,.0f}' for rate in rates)} numbers/s")
        print(f"to_dialable median: {median:,.0f} numbers/s on one core")
        print(f"from_received: {received:,.0f} numbers/s; canonical_keys: {keys:,.0f} numbers/s")
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
