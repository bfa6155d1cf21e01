"""Forward-rule evaluation per incoming call: a user with 50 advanced rules (goal: under 1 ms per call).

Run ``python benchmarks/bench_rules.py`` (``--write`` updates docs/benchmarks.md).  The 50
rules mix every condition of user guide 5.1.4 (presence, date range, days, hours in a time
zone, origin, included and excluded numbers and contacts, lists of 100 contacts); none
fires for the measured call, so all 50 are evaluated: the worst case.  What is timed is
``twpcore.rules.model.decide`` on compiled rules, as ``RulesService`` runs it on each call
(the rules are compiled once and cached; the store is not touched on the call path).  The
same call with ``explain=True`` (every condition with its reason, the explain endpoint) is
measured too.  Figures: median of 7 runs of 0.5 s each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine_info, spread, write_section

from twpcore.rules.model import CallFacts, check_conditions, compile_rule, decide

RUNS = 7
RUN_SECONDS = 0.5
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def build_rules(count: int = 50) -> list:
    rules = []
    members = {1000 + i: list(range(i * 100, i * 100 + 100)) for i in range(10)}
    for i in range(count):
        cond = check_conditions({
            "presence": [["absent"], ["busy", "absent"], ["offline"], ["calendar", "absent"]][i % 4],
            "date_from": "2013-06-03T07:45:00+02:00", "date_to": "2030-06-28T19:15:00+02:00",
            "days": DAYS[i % 3: i % 3 + 4], "hours": {"from": "08:00", "to": "18:00"}, "timezone": "Europe/Paris",
            "origin": ["external", "internal", "all"][i % 3],
            "include": {"numbers": [f"06{i:08d}", f"+3361{i:07d}"], "contacts": [i + 1], "lists": [1000 + i % 10]},
            "exclude": {"numbers": [f"01{i:08d}"]},
        })
        row = {"id": i + 1, "name": f"rule {i}", "kind": "advanced", "forward": ["immediate", "no_answer", "busy"][i % 3],
               "target": "5020", "imposed": False, "conditions": cond}
        rules.append(compile_rule(row, members))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update the section of docs/benchmarks.md")
    args = parser.parse_args()
    rules = build_rules()
    # Tuesday 10:00 in Paris, absent, an external caller on no list: each rule fails only at its include filter.
    facts = CallFacts(at=dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC), presence="absent", caller="0699999999", internal=False,
                      busy=False, contact_id=99_999)
    assert decide(rules, facts).rule is None

    def timed(explain: bool, batch: int) -> tuple[list[float], list[float]]:
        """Microseconds per call, wall clock and CPU time of this process, one figure per run."""
        wall, cpu = [], []
        for _ in range(RUNS):
            done, w0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - w0 < RUN_SECONDS:
                for _ in range(batch):
                    decide(rules, facts, explain=explain)
                done += batch
            wall.append((time.perf_counter() - w0) * 1e6 / done)
            cpu.append((time.process_time() - c0) * 1e6 / done)
        return wall, cpu

    per_call, per_call_cpu = timed(False, 100)
    per_explain, per_explain_cpu = timed(True, 20)
    m = machine_info()
    text = "\n".join([
        "Command: `python benchmarks/bench_rules.py --write`; median, min and max of 7 runs of 0.5 s.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, {m['python']}, {m['os']}; load average {m['load']} "
        f"(1 min, other work on the host); {m['date']}.",
        "",
        "| measure | median | min | max |",
        "|---|---|---|---|",
        f"| 50 advanced rules evaluated for one call, none fires (worst case) | {spread(per_call, 'µs')}",
        f"| ... CPU time of the process for it | {spread(per_call_cpu, 'µs')}",
        f"| the same with `explain` (every condition and its reason) | {spread(per_explain, 'µs')}",
        f"| ... CPU time of the process for it | {spread(per_explain_cpu, 'µs')}",
        "",
        "Wall clock counts the time the process waited for a core: with a load average far above the 2 cores, it is "
        "several times the CPU time; the CPU time is what one call costs.",
        "Goal (issue 18): under 1 ms per call. Not included: the reverse lookup (done once per call for the call event anyway), "
        "the cached rules being read again from the store every 10 s (`CACHE_SECONDS`), the deflect request to the PBX.",
    ])
    print(text)
    if args.write:
        write_section("bench_rules", text, "Forward rules: 50 rules evaluated per call (issue 18)")


if __name__ == "__main__":
    main()
