"""Forward rules as values: checking what a user sends, and evaluating a rule against one incoming call.

A rule (admin guide 9.6, user guide 5.1.3-5.1.5) forwards calls ``immediate``, on ``busy``,
on ``no_answer`` (or, for simple rules, switches on ``dnd``) to ``target``.  An advanced rule
also carries conditions, all of which must hold for it to fire:

- ``presence``: the user's TWP presence is one of these states (``calendar``: a busy or away
  calendar event is under way);
- ``date_from`` / ``date_to``: ISO 8601 times with a zone, from included, to excluded;
- ``days`` (``mon`` ... ``sun``) and ``hours`` (``{"from": "08:00", "to": "18:00"}``, to excluded;
  from after to spans midnight), read in ``timezone`` (IANA name, default UTC);
- ``origin``: ``all``, ``internal`` (the caller is a device of the domain) or ``external``;
- ``include`` / ``exclude``: callers by ``numbers``, directory ``contacts`` (ids) and contact
  ``lists`` (ids).  A non-empty include limits the rule to those callers; exclude removes callers.

``compile_rule`` turns a stored row into a ``CompiledRule`` whose ``evaluate`` answers whether
it fires and, for each condition, why: what the explain endpoint shows.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

PRESENCE_STATES = ("online", "busy", "absent", "offline")
"""TWP presence states of user guide 3.1: connecté, occupé, absent, déconnecté."""
RULE_PRESENCES = (*PRESENCE_STATES, "calendar")
KINDS = ("simple", "advanced")
FORWARDS = ("immediate", "busy", "no_answer", "dnd")
"""``dnd`` is for simple rules only: do-not-disturb switched on in the PBX."""
ORIGINS = ("all", "internal", "external")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CONDITION_KEYS = ("presence", "date_from", "date_to", "days", "hours", "timezone", "origin", "include", "exclude")
FILTER_KEYS = ("numbers", "contacts", "lists")
SUFFIX = 9
"""Two numbers of at least this many digits are the same caller when their last ``SUFFIX`` digits agree (0612… and +33612…)."""


class RuleError(ValueError):
    """A rule is not valid; ``field`` names the faulty field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def same_caller(a: str, b: str) -> bool:
    da, db = digits(a), digits(b)
    if not da or not db:
        return False
    return da == db or (len(da) >= SUFFIX and len(db) >= SUFFIX and da[-SUFFIX:] == db[-SUFFIX:])


def _time(text: Any, field: str) -> dt.datetime:
    if not isinstance(text, str):
        raise RuleError(f"{field}: expected an ISO 8601 time such as 2013-06-03T07:45:00+02:00", field)
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise RuleError(f"{field}: {text[:40]!r} is not an ISO 8601 time; write 2013-06-03T07:45:00+02:00", field) from None
    if value.tzinfo is None:
        raise RuleError(f"{field}: {text[:40]!r} has no time zone; add Z or an offset such as +02:00", field)
    return value


def _minutes(text: Any, field: str) -> int:
    m = HHMM.match(text) if isinstance(text, str) else None
    if not m:
        raise RuleError(f"{field}: expected a time HH:MM (24 h), got {str(text)[:20]!r}", field)
    return int(m.group(1)) * 60 + int(m.group(2))


def _ids(value: Any, field: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value) or len(value) > 500:
        raise RuleError(f"{field}: expected a list of at most 500 positive ids", field)
    return value


def check_filter(value: Any, field: str) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RuleError(f"{field}: expected an object with numbers, contacts and lists", field)
    unknown = set(value) - set(FILTER_KEYS)
    if unknown:
        raise RuleError(f"{field}: unknown key {sorted(unknown)[0]!r}; use {', '.join(FILTER_KEYS)}", field)
    out: dict[str, list[Any]] = {}
    numbers = value.get("numbers", [])
    if not isinstance(numbers, list) or len(numbers) > 500 or not all(isinstance(n, str) and NUMBER.match(n.replace(" ", "")) for n in numbers):
        raise RuleError(f"{field}.numbers: expected a list of phone numbers such as \"0612345678\"", field)
    if numbers:
        out["numbers"] = [n.replace(" ", "") for n in numbers]
    for key in ("contacts", "lists"):
        if value.get(key):
            out[key] = _ids(value[key], f"{field}.{key}")
    return out


def check_conditions(data: Any) -> dict[str, Any]:
    """The stored form of an advanced rule's conditions, or a ``RuleError`` naming the field and the fix."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RuleError("conditions: expected an object", "conditions")
    unknown = set(data) - set(CONDITION_KEYS)
    if unknown:
        raise RuleError(f"conditions: unknown condition {sorted(unknown)[0]!r}; use {', '.join(CONDITION_KEYS)}", "conditions")
    out: dict[str, Any] = {}
    presence = data.get("presence")
    if presence:
        if not isinstance(presence, list) or any(p not in RULE_PRESENCES for p in presence):
            raise RuleError(f"conditions.presence: expected a list of {', '.join(RULE_PRESENCES)}, got {str(presence)[:60]}", "conditions")
        out["presence"] = sorted(set(presence), key=RULE_PRESENCES.index)
    start = _time(data["date_from"], "conditions.date_from") if data.get("date_from") is not None else None
    end = _time(data["date_to"], "conditions.date_to") if data.get("date_to") is not None else None
    if start and end and end <= start:
        raise RuleError(f"conditions.date_to ({end.isoformat()}) must be after date_from ({start.isoformat()})", "conditions")
    if start:
        out["date_from"] = start.isoformat()
    if end:
        out["date_to"] = end.isoformat()
    days = data.get("days")
    if days:
        if not isinstance(days, list) or any(d not in DAYS for d in days):
            raise RuleError(f"conditions.days: expected a list of {', '.join(DAYS)}, got {str(days)[:60]}", "conditions")
        out["days"] = sorted(set(days), key=DAYS.index)
    hours = data.get("hours")
    if hours:
        if not isinstance(hours, dict) or set(hours) != {"from", "to"}:
            raise RuleError('conditions.hours: expected {"from": "08:00", "to": "18:00"}', "conditions")
        if _minutes(hours["from"], "conditions.hours.from") == _minutes(hours["to"], "conditions.hours.to"):
            raise RuleError("conditions.hours: from and to are the same time; leave hours out for the whole day", "conditions")
        out["hours"] = {"from": hours["from"], "to": hours["to"]}
    zone = data.get("timezone")
    if zone:
        try:
            zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise RuleError(f"conditions.timezone: {str(zone)[:60]!r} is not an IANA time zone such as Europe/Paris", "conditions") from None
        out["timezone"] = zone
    origin = data.get("origin", "all")
    if origin not in ORIGINS:
        raise RuleError(f"conditions.origin: expected one of {', '.join(ORIGINS)}, got {str(origin)[:30]!r}", "conditions")
    out["origin"] = origin
    for key in ("include", "exclude"):
        flt = check_filter(data.get(key), f"conditions.{key}")
        if flt:
            out[key] = flt
    return out


@attrs.frozen
class CallFacts:
    """What is known of an incoming call when the rules are evaluated."""

    at: dt.datetime
    """When the call arrives (aware)."""
    presence: str
    """The called user's TWP presence (``PRESENCE_STATES``)."""
    caller: str = ""
    internal: bool = False
    busy: bool = False
    """The called device already has another call."""
    contact_id: int | None = None
    """The directory contact the caller was recognised as, if any."""
    in_calendar_event: bool = False
    """A busy or away calendar event of the user is under way."""


@attrs.frozen
class Check:
    condition: str
    ok: bool
    why: str


@attrs.frozen
class CompiledRule:
    """A stored rule made ready for evaluation on the call path (no parsing there)."""

    id: int
    name: str
    kind: str
    forward: str
    target: str
    imposed: bool
    presence: frozenset[str]
    start: dt.datetime | None
    end: dt.datetime | None
    days: frozenset[int]
    hours: tuple[int, int] | None
    zone: dt.tzinfo
    origin: str
    include_numbers: tuple[str, ...]
    include_contacts: frozenset[int]
    exclude_numbers: tuple[str, ...]
    exclude_contacts: frozenset[int]
    include_keys: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    """The included numbers as (all digits, last ``SUFFIX`` digits), for matching without parsing on the call path."""
    exclude_keys: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

    def checks(self, facts: CallFacts) -> list[Check]:
        """Every condition with its outcome and the reason, in the order of the guide's rule window."""
        out: list[Check] = []
        if self.presence:
            state = facts.presence
            ok = state in self.presence or ("calendar" in self.presence and facts.in_calendar_event)
            shown = state + (" (in a calendar event)" if facts.in_calendar_event else "")
            out.append(Check("presence", ok, f"presence is {shown}; the rule wants {' or '.join(sorted(self.presence))}"))
        if self.start is not None or self.end is not None:
            ok = (self.start is None or facts.at >= self.start) and (self.end is None or facts.at < self.end)
            span = f"{self.start.isoformat() if self.start else '…'} to {self.end.isoformat() if self.end else '…'}"
            out.append(Check("dates", ok, f"{facts.at.astimezone(self.zone).isoformat()} is {'within' if ok else 'outside'} {span}"))
        local = facts.at.astimezone(self.zone)
        if self.days:
            ok = local.weekday() in self.days
            wanted = ", ".join(DAYS[d] for d in sorted(self.days))
            out.append(Check("days", ok, f"{DAYS[local.weekday()]} is {'one' if ok else 'not one'} of {wanted}"))
        if self.hours is not None:
            lo, hi = self.hours
            minute = local.hour * 60 + local.minute
            ok = lo <= minute < hi if lo < hi else (minute >= lo or minute < hi)
            out.append(Check("hours", ok, f"{local:%H:%M} ({self.zone}) is {'within' if ok else 'outside'} {lo // 60:02d}:{lo % 60:02d}-"
                                          f"{hi // 60:02d}:{hi % 60:02d}"))
        if self.origin != "all":
            kind = "internal" if facts.internal else "external"
            out.append(Check("origin", kind == self.origin, f"the call is {kind}; the rule takes {self.origin} calls"))
        if self.include_numbers or self.include_contacts:
            hit = self._matches(facts, self.include_numbers, self.include_contacts)
            out.append(Check("include", hit, f"caller {facts.caller or 'unknown'} is {'' if hit else 'not '}among the included callers"))
        if self.exclude_numbers or self.exclude_contacts:
            hit = self._matches(facts, self.exclude_numbers, self.exclude_contacts)
            out.append(Check("exclude", not hit, f"caller {facts.caller or 'unknown'} is {'' if hit else 'not '}among the excluded callers"))
        if self.forward == "busy":
            out.append(Check("busy", facts.busy, "the device " + ("has another call" if facts.busy else "has no other call") +
                             "; the rule forwards on busy"))
        return out

    @staticmethod
    def _matches(facts: CallFacts, numbers: tuple[str, ...], contacts: frozenset[int]) -> bool:
        if facts.contact_id is not None and facts.contact_id in contacts:
            return True
        return bool(facts.caller) and any(same_caller(facts.caller, n) for n in numbers)

    def fires(self, facts: CallFacts, prepared: Prepared | None = None) -> bool:
        """Whether every condition holds: the same tests as ``checks``, without the reasons, stopping at the first that fails."""
        p = prepared or Prepared(facts)
        if self.presence and not (facts.presence in self.presence or ("calendar" in self.presence and facts.in_calendar_event)):
            return False
        if (self.start is not None and facts.at < self.start) or (self.end is not None and facts.at >= self.end):
            return False
        if self.days or self.hours is not None:
            local = p.local(self.zone)
            if self.days and local.weekday() not in self.days:
                return False
            if self.hours is not None:
                lo, hi = self.hours
                minute = local.hour * 60 + local.minute
                if not (lo <= minute < hi if lo < hi else (minute >= lo or minute < hi)):
                    return False
        if self.origin != "all" and (self.origin == "internal") != facts.internal:
            return False
        if (self.include_numbers or self.include_contacts) and not p.among(self.include_keys, self.include_contacts):
            return False
        if (self.exclude_numbers or self.exclude_contacts) and p.among(self.exclude_keys, self.exclude_contacts):
            return False
        return not (self.forward == "busy" and not facts.busy)

    def describe(self) -> str:
        return f"rule {self.name!r} ({self.forward.replace('_', ' ')} to {self.target})"


class Prepared:
    """What every rule reads of one call, computed once per call: the caller's digits, the local time in each zone."""

    __slots__ = ("contact_id", "digits", "facts", "suffix", "zones")

    def __init__(self, facts: CallFacts):
        self.facts = facts
        self.digits = digits(facts.caller)
        self.suffix = self.digits[-SUFFIX:] if len(self.digits) >= SUFFIX else None
        self.contact_id = facts.contact_id
        self.zones: dict[dt.tzinfo, dt.datetime] = {}

    def local(self, zone: dt.tzinfo) -> dt.datetime:
        local = self.zones.get(zone)
        if local is None:
            local = self.zones[zone] = self.facts.at.astimezone(zone)
        return local

    def among(self, keys: tuple[frozenset[str], frozenset[str]], contacts: frozenset[int]) -> bool:
        if self.contact_id is not None and self.contact_id in contacts:
            return True
        return bool(self.digits) and (self.digits in keys[0] or (self.suffix is not None and self.suffix in keys[1]))


def _keys(numbers: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    all_digits = [digits(n) for n in numbers]
    return frozenset(d for d in all_digits if d), frozenset(d[-SUFFIX:] for d in all_digits if len(d) >= SUFFIX)


def compile_rule(row: Mapping[str, Any], list_members: Mapping[int, Iterable[int]] | None = None) -> CompiledRule:
    """A stored rule ready for ``evaluate``; ``list_members`` gives the contact ids of each contact list it names."""
    cond = row.get("conditions") or {}
    zone: dt.tzinfo = zoneinfo.ZoneInfo(cond["timezone"]) if cond.get("timezone") else dt.UTC
    members = list_members or {}

    def contacts(flt: dict[str, Any]) -> frozenset[int]:
        ids = set(flt.get("contacts", []))
        for lst in flt.get("lists", []):
            ids.update(members.get(lst, ()))
        return frozenset(ids)

    inc, exc = cond.get("include", {}), cond.get("exclude", {})
    hours = cond.get("hours")
    return CompiledRule(
        id=row["id"], name=row["name"], kind=row["kind"], forward=row["forward"], target=row["target"], imposed=bool(row.get("imposed")),
        presence=frozenset(cond.get("presence", [])),
        start=dt.datetime.fromisoformat(cond["date_from"]) if cond.get("date_from") else None,
        end=dt.datetime.fromisoformat(cond["date_to"]) if cond.get("date_to") else None,
        days=frozenset(DAYS.index(d) for d in cond.get("days", [])),
        hours=(_minutes(hours["from"], "hours.from"), _minutes(hours["to"], "hours.to")) if hours else None,
        zone=zone, origin=cond.get("origin", "all"),
        include_numbers=tuple(inc.get("numbers", [])), include_contacts=contacts(inc),
        exclude_numbers=tuple(exc.get("numbers", [])), exclude_contacts=contacts(exc),
        include_keys=_keys(inc.get("numbers", [])), exclude_keys=_keys(exc.get("numbers", [])),
    )


@attrs.frozen
class Decision:
    """Which rule fires for a call, and the evaluation of every rule before it."""

    rule: CompiledRule | None
    evaluated: list[tuple[CompiledRule, list[Check]]]

    def as_json(self) -> dict[str, Any]:
        return {
            "fired": None if self.rule is None else {"id": self.rule.id, "name": self.rule.name, "forward": self.rule.forward,
                                                      "target": self.rule.target, "imposed": self.rule.imposed},
            "summary": (f"{self.rule.describe()} fires: every condition holds" if self.rule
                        else "no rule fires: the call rings the device as usual"),
            "rules": [{"id": r.id, "name": r.name, "fires": all(c.ok for c in checks),
                       "checks": [{"condition": c.condition, "ok": c.ok, "why": c.why} for c in checks]} for r, checks in self.evaluated],
        }


def decide(rules: Iterable[CompiledRule], facts: CallFacts, explain: bool = False) -> Decision:
    """The first rule (in order) whose conditions all hold; with ``explain``, the checks of every rule looked at."""
    evaluated: list[tuple[CompiledRule, list[Check]]] = []
    prepared = Prepared(facts)
    for rule in rules:
        if explain:
            checks = rule.checks(facts)
            evaluated.append((rule, checks))
            if all(c.ok for c in checks):
                return Decision(rule, evaluated)
        elif rule.fires(facts, prepared):
            return Decision(rule, evaluated)
    return Decision(None, evaluated)
