"""The evaluation of one rule against one call, without a server: the fast path and the explained one agree."""

from __future__ import annotations

import datetime as dt
import itertools
import random

from twpcore.rules.model import CallFacts, check_conditions, compile_rule, decide, same_caller


def rule(conditions: dict, forward: str = "immediate", ident: int = 1) -> object:
    return compile_rule({"id": ident, "name": f"r{ident}", "kind": "advanced", "forward": forward, "target": "5020",
                         "conditions": check_conditions(conditions)}, {7: [70, 71]})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_hours_across_midnight_and_the_rules_time_zone():
    night = rule({"hours": {"from": "22:00", "to": "06:00"}, "timezone": "Europe/Paris"})
    for when, fires in (("2026-12-07T21:30:00+00:00", True),    # 22:30 in Paris
                        ("2026-12-08T04:59:00+00:00", True),    # 05:59
                        ("2026-12-08T05:00:00+00:00", False),   # 06:00: "to" is excluded
                        ("2026-12-07T20:59:00+00:00", False)):  # 21:59
        assert night.fires(CallFacts(at=at(when), presence="online")) is fires, when


def test_the_same_caller_in_national_and_international_form():
    assert same_caller("0612345678", "+33 6 12 34 56 78")
    assert same_caller("201", "201") and not same_caller("201", "202")
    assert not same_caller("12345678", "912345678")  # under 9 digits: exact only


def test_fires_and_the_explained_checks_always_agree():
    rng = random.Random(18)
    rules = [rule({"presence": p, "days": d, "hours": h, "origin": o, "include": inc, "exclude": exc,
                   "date_from": "2026-01-01T00:00:00+01:00", "date_to": "2027-01-01T00:00:00+01:00", "timezone": "Europe/Paris"},
                  forward=f, ident=i)
             for i, (p, d, h, o, inc, exc, f) in enumerate(itertools.islice(zip(
                 itertools.cycle([["absent"], ["busy", "calendar"], []]), itertools.cycle([["mon", "tue"], [], ["sat"]]),
                 itertools.cycle([{"from": "08:00", "to": "18:00"}, None, {"from": "20:00", "to": "02:00"}]),
                 itertools.cycle(["all", "internal", "external", "all"]),
                 itertools.cycle([{}, {"numbers": ["0612345678"]}, {"lists": [7]}]),
                 itertools.cycle([{}, {}, {"contacts": [71]}, {"numbers": ["201"]}]),
                 itertools.cycle(["immediate", "busy", "no_answer"])), 40))]
    for _ in range(400):
        facts = CallFacts(at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=rng.randrange(0, 525_600)),
                          presence=rng.choice(["online", "busy", "absent", "offline"]), caller=rng.choice(["", "201", "+33612345678", "0140000000"]),
                          internal=rng.random() < 0.5, busy=rng.random() < 0.5, contact_id=rng.choice([None, 70, 71, 5]),
                          in_calendar_event=rng.random() < 0.3)
        for r in rules:
            assert r.fires(facts) == all(c.ok for c in r.checks(facts)), (r, facts)
        assert decide(rules, facts).rule == decide(rules, facts, explain=True).rule
