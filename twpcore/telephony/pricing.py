"""Call cost from price lists in the Wildix CSV format (issue 16; Wildix WMS start guide, "Listes des prix").

A price list belongs to a company and applies to one of its domains, or to every domain
that has no list of its own.  Its rates are the rows of a Wildix price-list CSV: per row a
``dialprefix`` (the longest one matching the dialed number wins), a ``destination``, a
``rate`` per call unit, ``min_duration`` (seconds a call may last without being billed),
the ``billing block`` (the call unit, in seconds), a ``connect_charge``, and the week days
(``start_day``..``stop_day``, 1 = Monday, 7 = Sunday) and times of day (``start_time``..
``stop_time``, seconds after midnight, 0-86400) the row applies to.

The call-log writer (``twpcore.telephony.call_logs``) gives each entry its cost when it
writes it (``price_entries``): an answered outgoing call to an outside number, priced by
the list of its domain at the time it was answered, in the list's time zone.  What the
guide does not say and we chose is listed in ``docs/wildix.md`` ("What is inferred").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.store import schema as t

FIELDS = ("dialprefix", "destination", "rate", "min_duration", "billing_block", "connect_charge", "start_day", "stop_day",
          "start_time", "stop_time")
"""The columns of a Wildix price-list CSV, in the guide's order (its ``billing block`` is written ``billing_block`` here)."""
MAX_RATES = 100_000
MAX_SHOWN_PROBLEMS = 20
DAY_SECONDS = 86400
_PREFIX = re.compile(r"^\+?[0-9]{1,31}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_NAME = re.compile(r"^[^\x00-\x1f]{1,100}$")


class PriceListError(ValueError):
    """A price list that cannot be imported: what is wrong, line by line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_SHOWN_PROBLEMS]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__("; ".join(shown) + more)


@attrs.frozen
class Rate:
    """One row of a price list."""

    line: int
    """The CSV line it came from (1 is the first line of the file)."""
    dialprefix: str
    destination: str
    rate: Decimal
    """Price of one call unit (``billing_block`` seconds)."""
    min_duration: int
    """Seconds a call may last without being billed."""
    billing_block: int
    """The call unit, in seconds."""
    connect_charge: Decimal
    start_day: int = 1
    stop_day: int = 7
    start_time: int = 0
    stop_time: int = DAY_SECONDS

    def covers(self, weekday: int, seconds: int) -> bool:
        """Does this row apply on ``weekday`` (1 = Monday) at ``seconds`` after midnight?

        A band whose start is after its stop wraps (days 6-1: Saturday to Monday; times
        79200-25200: 22:00 to 07:00); equal start and stop times mean the whole day.
        """
        if self.start_day <= self.stop_day:
            day_ok = self.start_day <= weekday <= self.stop_day
        else:
            day_ok = weekday >= self.start_day or weekday <= self.stop_day
        if not day_ok:
            return False
        if self.start_time == self.stop_time:
            return True
        if self.start_time < self.stop_time:
            return self.start_time <= seconds < self.stop_time
        return seconds >= self.start_time or seconds < self.stop_time

    def cost(self, duration: float) -> Decimal:
        """What a call answered for ``duration`` seconds costs: nothing up to ``min_duration``, else the
        connect charge plus every call unit begun."""
        if duration <= self.min_duration or duration <= 0:
            return Decimal(0)
        return self.connect_charge + self.rate * math.ceil(duration / self.billing_block)

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "dialprefix": self.dialprefix, "destination": self.destination, "rate": str(self.rate),
                "min_duration": self.min_duration, "billing_block": self.billing_block, "connect_charge": str(self.connect_charge),
                "start_day": self.start_day, "stop_day": self.stop_day, "start_time": self.start_time, "stop_time": self.stop_time}


@attrs.frozen
class Priced:
    """The cost of one call and the row that priced it."""

    cost: Decimal
    currency: str
    price_list: str
    rate: Rate


@attrs.frozen
class PriceList:
    """A price list ready to price calls: its rates by prefix."""

    id: int
    name: str
    currency: str
    zone: dt.tzinfo
    rates: tuple[Rate, ...]
    by_prefix: dict[str, list[Rate]] = attrs.field(init=False, eq=False)
    longest: int = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index: dict[str, list[Rate]] = {}
        for rate in self.rates:
            index.setdefault(rate.dialprefix, []).append(rate)
        object.__setattr__(self, "by_prefix", index)
        object.__setattr__(self, "longest", max((len(p) for p in index), default=0))

    def match(self, number: str) -> list[Rate]:
        """The rows of the longest prefix of ``number`` in the list (several rows: several time bands)."""
        for size in range(min(len(number), self.longest), 0, -1):
            found = self.by_prefix.get(number[:size])
            if found:
                return found
        return []

    def price(self, numbers: Iterable[str], at: dt.datetime, duration: float) -> Priced | None:
        """The cost of a call to the first of ``numbers`` the list knows, answered at ``at``; None when no row applies."""
        local = at.astimezone(self.zone)
        weekday, seconds = local.isoweekday(), local.hour * 3600 + local.minute * 60 + local.second
        for number in numbers:
            rows = self.match(number)
            if rows:
                row = next((r for r in rows if r.covers(weekday, seconds)), None)
                return None if row is None else Priced(row.cost(duration), self.currency, self.name, row)
        return None


def dialed_forms(number: str, canonical: str = "") -> list[str]:
    """The forms of a called number a prefix is matched against: as dialed (digits, a leading ``+`` kept), then the
    canonical E.164 form with and without its ``+``."""
    forms = []
    digits = re.sub(r"[^0-9]", "", number)
    if digits:
        forms.append(("+" if number.strip().startswith("+") else "") + digits)
    if canonical.startswith("+") and canonical[1:].isdigit():
        forms += [canonical, canonical[1:]]
    return list(dict.fromkeys(forms))


# -- the CSV ---------------------------------------------------------------------------------
def _decimal(text: str) -> Decimal:
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # a French spreadsheet's decimal comma
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


def _cell(values: dict[str, str], name: str) -> str:
    return values.get(name, "").strip()


def _row(line: int, values: dict[str, str], problems: list[str]) -> Rate | None:
    before = len(problems)

    def bad(field: str, value: str, fix: str) -> None:
        problems.append(f"line {line}: {field}: {fix}, got {value[:40]!r}")

    prefix = _cell(values, "dialprefix").replace(" ", "")
    if not _PREFIX.match(prefix):
        bad("dialprefix", prefix, "expected the digits the called number starts with (1-31 digits, an optional leading +), such as 0033")
    destination = _cell(values, "destination")
    if len(destination) > 200 or any(ord(c) < 32 for c in destination):
        bad("destination", destination, "expected a name of at most 200 characters without control characters")

    def money(field: str, default: str | None) -> Decimal:
        text = _cell(values, field) or (default or "")
        try:
            value = _decimal(text)
            if value < 0 or value >= Decimal(10) ** 12:
                raise InvalidOperation(text)
            return value.quantize(Decimal("0.000001"))
        except (InvalidOperation, ValueError):
            bad(field, text, "expected a decimal number, 0 or more, such as 0.05" + ("" if default is None else f" (empty means {default})"))
            return Decimal(0)

    def integer(field: str, lo: int, hi: int, default: int | None, what: str) -> int:
        text = _cell(values, field)
        if not text and default is not None:
            return default
        try:
            value = int(text)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            bad(field, text, f"expected {what}, {lo}-{hi}" + ("" if default is None else f" (empty means {default})"))
            return default if default is not None else lo
        return value

    rate = money("rate", None)
    min_duration = integer("min_duration", 0, DAY_SECONDS, 0, "seconds a call lasts without being billed")
    block = integer("billing_block", 1, DAY_SECONDS, None, "the call unit in seconds")
    connect = money("connect_charge", "0")
    start_day = integer("start_day", 1, 7, 1, "a week day, 1 = Monday ... 7 = Sunday")
    stop_day = integer("stop_day", 1, 7, 7, "a week day, 1 = Monday ... 7 = Sunday")
    start_time = integer("start_time", 0, DAY_SECONDS, 0, "seconds after midnight (25200 = 07:00)")
    stop_time = integer("stop_time", 0, DAY_SECONDS, DAY_SECONDS, "seconds after midnight (25200 = 07:00)")
    if len(problems) > before:
        return None
    return Rate(line, prefix, destination, rate, min_duration, block, connect, start_day, stop_day, start_time, stop_time)


def _header(cells: list[str]) -> list[str] | None:
    names = [c.strip().lower().replace(" ", "_") for c in cells]
    return names if "dialprefix" in names else None


def parse_csv(text: str) -> list[Rate]:
    """The rates of a Wildix price-list CSV; raises ``PriceListError`` naming each bad line, field and fix.

    The columns are the guide's, in its order, or in any order under a header line naming
    them (``billing block`` or ``billing_block``); commas or semicolons separate them.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise PriceListError(["the CSV is empty: expected one line per rate with " + ", ".join(FIELDS)])
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    problems: list[str] = []
    rates: list[Rate] = []
    columns: list[str] = list(FIELDS)
    seen_first = False
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if not seen_first:
                seen_first = True
                header = _header(cells)
                if header is not None:
                    missing = [f for f in FIELDS if f not in header]
                    if missing:
                        problems.append(f"line {line}: header: columns {', '.join(missing)} are missing; "
                                        f"expected {', '.join(FIELDS)} (the Wildix price-list columns)")
                        break
                    columns = header
                    continue
            if len(cells) != len(columns):
                problems.append(f"line {line}: expected {len(columns)} values separated by {delimiter!r} ({', '.join(columns)}), got {len(cells)}")
                continue
            rate = _row(line, dict(zip(columns, cells, strict=True)), problems)
            if rate is not None:
                rates.append(rate)
            if len(rates) > MAX_RATES:
                problems.append(f"line {line}: more than {MAX_RATES} rates; split the list")
                break
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not CSV ({exc}); quote values that hold the separator")
    if not problems and not rates:
        problems.append("the CSV has a header but no rate: add one line per rate")
    if problems:
        raise PriceListError(problems)
    return rates


def check_list_fields(name: str, currency: str, time_zone: str) -> dt.tzinfo:
    """Check a list's own fields; the zone; raises ``PriceListError`` naming the field."""
    problems = []
    if not _NAME.match(name) or not name.strip():
        problems.append(f"name: expected 1-100 characters without control characters, got {name[:40]!r}")
    if not _CURRENCY.match(currency):
        problems.append(f"currency: expected an ISO 4217 code in capitals such as EUR, got {currency[:10]!r}")
    zone: dt.tzinfo = dt.UTC
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" names a directory: IsADirectoryError
        problems.append(f"time_zone: expected an IANA time zone such as Europe/Paris, got {time_zone[:40]!r}")
    if problems:
        raise PriceListError(problems)
    return zone


# -- the store (blocking; run through store.run) ----------------------------------------------------
def _summary(row: Any, rates: int) -> dict[str, Any]:
    return {"id": row.id, "company_id": row.company_id, "domain_id": row.domain_id, "name": row.name, "currency": row.currency,
            "time_zone": row.time_zone, "rates": rates, "created_at": row.created_at.isoformat() if row.created_at else None}


def _counts(conn: sa.Connection, ids: list[int]) -> dict[int, int]:
    r = t.price_list_rates
    rows = conn.execute(sa.select(r.c.price_list_id, sa.func.count()).where(r.c.price_list_id.in_(ids or [-1])).group_by(r.c.price_list_id))
    return {row[0]: row[1] for row in rows}


def save_list(conn: sa.Connection, *, company_id: int, domain_id: int | None, name: str, currency: str, time_zone: str,
              rates: list[Rate]) -> tuple[dict[str, Any], bool]:
    """Store a list, replacing the company's list of the same name; (its summary, whether one was replaced).

    Raises ``LookupError`` naming the other list when the same domain (or the whole company) already has one.
    """
    p = t.price_lists
    scope = p.c.domain_id.is_(None) if domain_id is None else p.c.domain_id == domain_id
    other = conn.execute(sa.select(p.c.name).where(p.c.company_id == company_id, scope, p.c.name != name)).scalar()
    if other is not None:
        where = "the company's domains without a list of their own" if domain_id is None else f"domain {domain_id}"
        raise LookupError(f"price list {other!r} already applies to {where}; import under the name {other!r} to replace it, "
                          "or delete it first")
    replaced = conn.execute(sa.delete(p).where(p.c.company_id == company_id, p.c.name == name)).rowcount or 0
    if replaced:  # SQLite enforces ON DELETE CASCADE only with its foreign keys pragma: say it here too
        conn.execute(sa.delete(t.price_list_rates).where(~t.price_list_rates.c.price_list_id.in_(sa.select(p.c.id))))
    ident = conn.execute(sa.insert(p).values(company_id=company_id, domain_id=domain_id, name=name, currency=currency, time_zone=time_zone,
                                             created_at=dt.datetime.now(dt.UTC)).returning(p.c.id)).scalar_one()
    if rates:
        conn.execute(sa.insert(t.price_list_rates), [{"price_list_id": ident, **attrs.asdict(r)} for r in rates])
    row = conn.execute(sa.select(p).where(p.c.id == ident)).one()
    return _summary(row, len(rates)), bool(replaced)


def list_summaries(conn: sa.Connection, company_ids: Iterable[int] | None, company_id: int | None = None) -> list[dict[str, Any]]:
    """The lists of the given companies (None: all), without their rates."""
    p = t.price_lists
    sel = sa.select(p)
    if company_ids is not None:
        sel = sel.where(p.c.company_id.in_(sorted(company_ids) or [-1]))
    if company_id is not None:
        sel = sel.where(p.c.company_id == company_id)
    rows = conn.execute(sel.order_by(p.c.company_id, p.c.name)).all()
    counts = _counts(conn, [r.id for r in rows])
    return [_summary(r, counts.get(r.id, 0)) for r in rows]


def read_list(conn: sa.Connection, ident: int) -> dict[str, Any] | None:
    """One list with its rates, in file order; None when there is none."""
    p, r = t.price_lists, t.price_list_rates
    row = conn.execute(sa.select(p).where(p.c.id == ident)).one_or_none()
    if row is None:
        return None
    rates = [_rate(x).as_json() for x in conn.execute(sa.select(r).where(r.c.price_list_id == ident).order_by(r.c.line, r.c.id))]
    return {**_summary(row, len(rates)), "items": rates}


def delete_list(conn: sa.Connection, ident: int) -> None:
    conn.execute(sa.delete(t.price_list_rates).where(t.price_list_rates.c.price_list_id == ident))
    conn.execute(sa.delete(t.price_lists).where(t.price_lists.c.id == ident))


def _stored(value: Any) -> Decimal:
    """A money column as read (a float: ``asdecimal=False``) back to the exact decimal of 6 places it was stored with."""
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def _rate(x: Any) -> Rate:
    return Rate(x.line, x.dialprefix, x.destination, _stored(x.rate), x.min_duration, x.billing_block, _stored(x.connect_charge),
                x.start_day, x.stop_day, x.start_time, x.stop_time)


_LOADED: dict[tuple[int, str], PriceList] = {}
"""Lists already read from the store, by (id, creation time): a replaced list has a new id and time."""


def _load(conn: sa.Connection, row: Any) -> PriceList:
    key = (row.id, str(row.created_at))
    found = _LOADED.get(key)
    if found is None:
        r = t.price_list_rates
        rates = tuple(_rate(x) for x in conn.execute(sa.select(r).where(r.c.price_list_id == row.id).order_by(r.c.line, r.c.id)))
        try:
            zone: dt.tzinfo = zoneinfo.ZoneInfo(row.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" names a directory: IsADirectoryError
            zone = dt.UTC
        if len(_LOADED) > 64:
            _LOADED.clear()
        found = _LOADED[key] = PriceList(row.id, row.name, row.currency, zone, rates)
    return found


def price_entries(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Give each call-log row about to be written its ``cost``, ``currency``, ``price_list`` and ``destination``.

    Only answered outgoing calls to outside numbers are priced, by the list of their domain
    (else their company's list for every domain); the others, and calls no rate matches,
    keep ``None``.
    """
    for row in rows:
        row.update(cost=None, currency=None, price_list=None, destination=None)
    wanted = [r for r in rows if r.get("direction") == "outgoing" and not r.get("internal") and r.get("answered_at") is not None]
    if not wanted:
        return
    p = t.price_lists
    companies = sorted({r["company_id"] for r in wanted})
    found_lists = conn.execute(sa.select(p).where(p.c.company_id.in_(companies))).all()
    lists: dict[tuple[int, int | None], Any] = {(x.company_id, x.domain_id): x for x in found_lists}
    for row in wanted:
        found = lists.get((row["company_id"], row["domain_id"])) or lists.get((row["company_id"], None))
        if found is None:
            continue
        answered = row["answered_at"]
        priced = _load(conn, found).price(dialed_forms(row.get("remote_number") or "", row.get("remote_canonical") or ""),
                                          answered if answered.tzinfo else answered.replace(tzinfo=dt.UTC), float(row.get("duration") or 0))
        if priced is not None:
            row.update(cost=priced.cost, currency=priced.currency, price_list=priced.price_list, destination=priced.rate.destination[:200] or None)
