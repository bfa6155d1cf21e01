"""Canonical keys per second: the fast reader against a full phonenumbers parse (issue 13, goal 300,000/s).

Run ``.venv/bin/python benchmarks/bench_keys.py`` (``--write`` also replaces the
``bench_keys`` section of ``docs/benchmarks.md``).  For ten countries (FR, DE, GB, US, CH,
BE, IT, ES, NL, SE) the script builds distinct numbers from each country's example
numbers with their last digits drawn at random, written in the forms directories hold:
national with spaces, dots, dashes, slashes or an area code in parentheses, ``+`` and
the country code, ``+cc (0)``, the international prefix, a foreign number, a number
behind the PBX's external prefix, an extension.  Each is keyed by its own country's
standard dialing plan with ``DialingPlan.canonical_keys`` (the fast reader) and with
``DialingPlan._reference_canonical_keys`` (every reading parsed by phonenumbers); the
two must agree on every number before anything is timed.  A run keys every number once;
the figure is the median of ``--runs`` runs, as numbers per second of wall-clock time and
per second of this process's CPU time (the machine may be shared: the CPU figure is what
one core does, the wall figure what this process got).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import phonenumbers
from common import machine, machine_info, write_section
from phonenumbers import PhoneNumberType

import twpcore.numberkeys as numberkeys
from twpcore.dialplan import DialingPlan

REGIONS = ("FR", "DE", "GB", "US", "CH", "BE", "IT", "ES", "NL", "SE")
GOAL = 300_000


def spaced(nsn: str, separator: str = " ") -> str:
    return separator.join(nsn[i : i + 3] for i in range(0, len(nsn), 3))


def written_forms(plan: DialingPlan, rng: random.Random) -> list[Callable[[str], str]]:
    """The ways a national significant number of the plan's country is written in directories."""
    settings = plan.settings
    trunk, code = settings.national_prefix, settings.local_country_prefix
    return [
        lambda nsn: spaced(trunk + nsn),
        lambda nsn: spaced(trunk + nsn, "."),
        lambda nsn: spaced(trunk + nsn, "-"),
        lambda nsn: f"{trunk}{nsn[:2]}/{nsn[2:]}",
        lambda nsn: f"({trunk}{nsn[:2]}) {spaced(nsn[2:])}",
        lambda nsn: f"+{code} {spaced(nsn)}",
        lambda nsn: f"+{code} (0){spaced(nsn)}" if trunk == "0" else f"+{code}{nsn}",
        lambda nsn: f"{settings.international_prefix} {code} {spaced(nsn)}",
        lambda nsn: f"{settings.external_prefix}{trunk}{nsn}",  # as a PBX presents a caller
        lambda nsn: f"{spaced(trunk + nsn)} ext. {rng.randrange(10, 999)}",
    ]


def build_numbers(per_region: int, seed: int = 13) -> list[tuple[DialingPlan, str]]:
    """``per_region`` distinct written numbers for each region, with the region's plan, shuffled."""
    rng = random.Random(seed)
    out: list[tuple[DialingPlan, str]] = []
    foreign = [phonenumbers.example_number_for_type(r, PhoneNumberType.FIXED_LINE) for r in REGIONS]
    for region in REGIONS:
        plan = DialingPlan.default(region)
        forms = written_forms(plan, rng)
        examples = [
            phonenumbers.national_significant_number(example)
            for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE)
            if (example := phonenumbers.example_number_for_type(region, kind)) is not None
        ]
        seen: set[str] = set()
        while len(seen) < per_region:
            nsn = rng.choice(examples)
            tail = min(5, len(nsn) - 2)
            nsn = nsn[:-tail] + "".join(rng.choice("0123456789") for _ in range(tail))
            if rng.random() < 0.1:
                other = rng.choice(foreign)
                assert other is not None
                other_nsn = phonenumbers.national_significant_number(other)
                text = f"+{other.country_code} {spaced(other_nsn[:-4] + str(rng.randrange(1000, 9999)))}"
            else:
                text = rng.choice(forms)(nsn)
            seen.add(text)
        out.extend((plan, text) for text in sorted(seen))
    rng.shuffle(out)
    return out


def rate(numbers: list[tuple[DialingPlan, str]], reference: bool) -> tuple[float, float]:
    """(numbers per wall-clock second, numbers per CPU second) for one pass over ``numbers``."""
    calls = [(plan._reference_canonical_keys if reference else plan.canonical_keys, text) for plan, text in numbers]
    wall, cpu = time.perf_counter(), time.process_time()
    for keys, text in calls:
        keys(text)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(calls) / wall, len(calls) / max(cpu, 1e-9)


def spread(median: float, runs: list[tuple[float, float]], index: int) -> str:
    values = [run[index] for run in runs]
    return f"{median:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-region", type=int, default=5_000, help="distinct numbers per country (default 5,000)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of the fast reader (default 7; the reference gets 3)")
    ap.add_argument("--write", action="store_true", help="replace the bench_keys section of docs/benchmarks.md")
    args = ap.parse_args()

    numbers = build_numbers(args.per_region)
    # Correctness first: the fast keys are the reference keys, and say how often the reader
    # had to hand a reading to phonenumbers.
    handed: list[str] = []
    reference_e164 = numberkeys.reference_e164

    def counting(digits: str, region: str, international_prefix: str) -> tuple[str | None, bool]:
        handed.append(digits)
        return reference_e164(digits, region, international_prefix)

    numberkeys.reference_e164 = counting
    try:
        for plan, text in numbers:
            fast, slow = plan.canonical_keys(text), plan._reference_canonical_keys(text)
            if fast != slow:
                print(f"MISMATCH {plan.settings.region} {text!r}: fast {fast} reference {slow}", file=sys.stderr)
                return 1
    finally:
        numberkeys.reference_e164 = reference_e164

    load_before = uptime()
    rate(numbers[:2000], reference=False)  # warm up: compiled patterns, caches
    fast_runs = [rate(numbers, reference=False) for _ in range(args.runs)]
    sample = numbers[: max(2000, len(numbers) // 10)]
    reference_runs = [rate(sample, reference=True) for _ in range(3)]
    load_after = uptime()

    fast_wall = statistics.median(r[0] for r in fast_runs)
    fast_cpu = statistics.median(r[1] for r in fast_runs)
    ref_wall = statistics.median(r[0] for r in reference_runs)
    ref_cpu = statistics.median(r[1] for r in reference_runs)
    info = machine_info()
    met = "met" if fast_cpu >= GOAL else "missed"
    lines = [
        f"Command: `.venv/bin/python benchmarks/bench_keys.py` ({len(numbers):,} distinct numbers of "
        f"{len(REGIONS)} countries in the common written forms, each keyed by its country's standard plan; "
        f"fast: median of {args.runs} runs over all of them, reference: median of 3 runs over {len(sample):,}).",
        "",
        "| date | measure | fast reader (`canonical_keys`), median (min-max) | full phonenumbers parse (reference), median (min-max) | speed-up |",
        "|---|---|---|---|---|",
        f"| {info['date']} | numbers/s, wall clock | {spread(fast_wall, fast_runs, 0)} | {spread(ref_wall, reference_runs, 0)} "
        f"| {fast_wall / ref_wall:.1f}× |",
        f"| {info['date']} | numbers/s, CPU time of the process | {spread(fast_cpu, fast_runs, 1)} "
        f"| {spread(ref_cpu, reference_runs, 1)} | {fast_cpu / ref_cpu:.1f}× |",
        "",
        f"Goal ≥ {GOAL:,} numbers/s on one core: {met} by CPU time ({fast_cpu:,.0f}/s). "
        f"Readings handed to phonenumbers by the fast reader: {len(handed)} of {len(numbers):,} numbers; "
        "fast and reference keys were equal for every number.",
        "",
        f"Machine: {machine()}. Load (`uptime`) before: `{load_before}`; after: `{load_after}`. "
        "The machine is shared with other work: wall-clock figures fall when it is busy.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("bench_keys", text, "Canonical keys (bench_keys.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
