"""Call logs, statistics and recordings (guide 7.4, 7.4.6, 9.4, 10.2.1, 10.2.2).

The telephony service hands every batch of call-model changes of a supervised device to
``CallLogRecorder.observe``.  When a call leaves a device that belongs to a user, one entry
is prepared for that user and device: direction, the other party as the PBX presented it
and in canonical form, its name (the reverse lookup the directory service already did
for the call event, or the owner of an internal device), start, answer and end times,
conversation duration and outcome.  Nothing touches the store on the event loop: entries
are queued and written in batches from a background task; a store error is logged, the
batch is retried a few times, then dropped and counted, and call handling never notices.

One row serves both the user's call log (the "journal") and statistics.  A user deleting
an entry, or the ``CallLog-NumberDaysOfStorage`` retention, takes it out of the log
(``in_log``), and so does ``CallLog-NumberMaxOfStorage`` for entries older than a day
beyond the newest of their type; ``Stats-NumberDaysOfStorage`` takes it out of the statistics
(``in_stats``).  The log's rules run daily at ``CallLog-StartCleaningHour``, the statistics'
at ``Stats-StartCleaningHour``; each deletes the rows that are then in neither.

Recordings (the guide's "Records") are metadata rows: which call of which user was
recorded, where the recorder keeps the audio.  No recorder ships with TWP; a plugin that
records calls adds rows with ``CallLogRecorder.add_recording``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Container, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from twpcore.clock import next_daily
from twpcore.cluster.jobs import LOCAL_JOBS, Jobs
from twpcore.dialing import DialingPlans
from twpcore.parameters import ParameterRegistry
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.telephony.pricing import price_entries

log = logging.getLogger(__name__)

OUTCOMES = ("answered", "missed", "unanswered", "busy", "failed", "forwarded", "transferred")
"""How a call ended at a device; see ``docs/call-logs.md``."""
DIRECTIONS = ("incoming", "outgoing", "unknown")
GROUPINGS = ("hour", "day", "month", "year", "weekday")
FILTERS = ("incoming", "outgoing", "internal", "external")
"""Values of the ``direction`` filter: a direction, or the kind of the other party."""
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_DAYS = {"CallLog-NumberDaysOfStorage": 30, "Stats-NumberDaysOfStorage": 365, "CallLog-NumberMaxOfStorage": 30}
UTC = dt.UTC


def _when(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(float(ts), tz=UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def outcome_of(change_type: str, call: dict[str, Any], cause: str | None, failed: str | None, to: str | None) -> tuple[str, str | None]:
    """(outcome, transferred/forwarded-to number) of a call that just left a device."""
    if change_type == "call.transferred":
        return "transferred", to
    answered = call.get("answered_at") is not None
    if change_type == "call.diverted" and not answered:
        return "forwarded", to
    if answered:
        return "answered", None
    failure = failed or (cause if change_type == "call.failed" else None)
    if failure:
        return ("busy" if "busy" in failure.lower() else "failed"), None
    return ("missed" if call.get("direction") != "outgoing" else "unanswered"), None


class CallLogRecorder:
    """Turns ended calls into call-log rows, written in batches off the event loop (``telephony.call_logs``)."""

    jobs: Jobs = LOCAL_JOBS
    """Whether this process runs the daily retention now: always alone, one node at a time in a cluster (``Kernel`` sets it)."""

    def __init__(self, parameters: ParameterRegistry, dialing_plans: DialingPlans, devices: Container[tuple[int, str]]):
        self.parameters = parameters
        """Retention (``CallLog-*``, ``Stats-*``) and cleaning hours are parameters."""
        self.dialing_plans = dialing_plans
        """Numbers are stored in the domain's canonical form."""
        self.devices = devices
        """The supervised devices as (domain id, number): a call with one of them is internal."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): where the entries are written."""
        self.flush_delay = 0.2
        """Seconds entries wait so that one write carries many of them."""
        self.max_pending = 10_000
        """Entries kept in memory while the store fails; older ones are dropped beyond."""
        self.max_attempts = 3
        self.retry_delay = 1.0
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._notes: dict[tuple[int, str, str], dict[str, Any]] = {}
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task] = []

    def health(self) -> dict[str, Any]:
        """Counters for the admin view of ``/api/v1/health``: entries written, waiting, dropped, and the last store error."""
        return {"written": self.written, "pending": len(self._pending), "dropped": self.dropped, "last_error": self.last_error}

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._wake, self._lock = asyncio.Event(), asyncio.Lock()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer(), name="call-log-writer"),
            loop.create_task(self._purger("CallLog-StartCleaningHour", ("log",)), name="call-log-purge"),
            loop.create_task(self._purger("Stats-StartCleaningHour", ("stats",)), name="statistics-purge"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pending and self._lock is not None and self.store is not None:
            await self.flush()

    def _db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the call-log recorder has no store: the telephony service has not started it")
        return self.store

    # -- from the telephony service ------------------------------------------------------
    def observe(self, dev: Any, changes: list[tuple[str, dict[str, Any]]]) -> None:
        """Note the call changes of device ``dev``; queue an entry for each call that left it."""
        try:
            self._observe(dev, changes)
        except Exception:  # the call log must never break call handling
            log.exception("call log: changes of device %s could not be noted", getattr(dev, "number", "?"))

    def _observe(self, dev: Any, changes: list[tuple[str, dict[str, Any]]]) -> None:
        transferred = [d["call"].get("remote") for ty, d in changes
                       if ty == "call.transferred" and isinstance(d.get("call"), dict) and d["call"].get("state") == "cleared"]
        for change_type, data in changes:
            call = data.get("call")
            if not isinstance(call, dict) or not change_type.startswith("call."):
                continue
            key = (dev.domain_id, dev.number, str(call.get("call_id")))
            if call.get("state") != "cleared":
                if change_type == "call.failed":
                    if len(self._notes) > 100_000:
                        self._notes.clear()
                    self._notes.setdefault(key, {})["failed"] = data.get("cause") or "failed"
                continue
            notes = self._notes.pop(key, {})
            if dev.user_id is None:
                continue  # a device nobody owns has no call log
            if data.get("cause") == "call_limit" and not call.get("answered_at"):
                continue  # evicted past [limits] calls_per_device, never answered: a PBX inventing calls fills no call log
            to = data.get("to")
            if change_type == "call.transferred":
                to = next((r for r in transferred if r and r != call.get("remote")), None)
            outcome, outcome_to = outcome_of(change_type, call, data.get("cause"), notes.get("failed"), to)
            ended = time.time()
            answered = call.get("answered_at")
            remote = str(call.get("remote") or "")
            self._queue({
                "company_id": dev.company_id, "domain_id": dev.domain_id, "user_id": dev.user_id, "device": dev.number,
                "call_id": str(call.get("call_id"))[:128], "direction": call.get("direction") or "unknown",
                "internal": (dev.domain_id, remote) in self.devices,
                "remote_number": remote[:64], "remote_name": (call.get("remote_name") or None),
                "started_at": _when(call.get("started_at") or ended), "answered_at": _when(answered), "ended_at": _when(ended),
                "duration": round(max(0.0, ended - float(answered)), 3) if answered else 0.0,
                "outcome": outcome, "outcome_to": (str(outcome_to)[:64] if outcome_to else None),
                "cause": (str(data.get("cause"))[:64] if data.get("cause") else None),
            })

    def _queue(self, entry: dict[str, Any]) -> None:
        self._pending.append((0, entry))
        if len(self._pending) > self.max_pending:
            extra = len(self._pending) - self.max_pending
            del self._pending[:extra]
            self.dropped += extra
            log.error("call log: %d entries dropped, the store has not accepted writes for a while (%s)", extra, self.last_error)
        if self._wake is not None:
            self._wake.set()

    # -- writing -----------------------------------------------------------------------
    async def _writer(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.flush_delay)
            if not await self.flush():
                await asyncio.sleep(self.retry_delay)
                self._wake.set()

    async def flush(self) -> bool:
        """Write the queued entries now; False when the store refused them (they are retried)."""
        assert self._lock is not None
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return True
            try:
                written = await self._db().run(self._write, [entry for _, entry in batch])
            except Exception as exc:  # noqa: BLE001 - logged; call handling goes on
                self.last_error = f"{type(exc).__name__}: {exc}"
                again = [(n + 1, e) for n, e in batch if n + 1 < self.max_attempts]
                lost = len(batch) - len(again)
                self.dropped += lost
                self._pending[:0] = again
                log.error("call log: the store refused %d entries (%s); %s", len(batch), self.last_error,
                          f"{lost} dropped after {self.max_attempts} attempts" if lost else f"retrying in {self.retry_delay:g} s")
                return False
            self.written += written
            self.last_error = None
            return True

    def _write(self, conn: sa.Connection, entries: list[dict[str, Any]]) -> int:
        users = {e["user_id"] for e in entries}
        alive = set(conn.execute(sa.select(t.users.c.id).where(t.users.c.id.in_(sorted(users)))).scalars())
        rows = [dict(e) for e in entries if e["user_id"] in alive]  # a user deleted during the call has no log
        if not rows:
            return 0
        plans: dict[int, Any] = {}
        for row in rows:
            domain_id = row["domain_id"]
            if domain_id not in plans:
                try:
                    plans[domain_id] = self.dialing_plans.get(conn, domain_id)
                except LookupError:
                    plans[domain_id] = None
            plan = plans[domain_id]
            keys = plan.canonical_keys(row["remote_number"]) if plan is not None and row["remote_number"] else ()
            row["remote_canonical"] = keys[0][:80] if keys else ""
            row["internal"] = bool(row["internal"] or (keys and keys[0].startswith("internal:")))
        unnamed = {(r["domain_id"], r["remote_number"]) for r in rows if r["internal"] and not r["remote_name"] and r["remote_number"]}
        if unnamed:
            names = {}
            for domain_id in {d for d, _ in unnamed}:
                numbers = sorted(n for d, n in unnamed if d == domain_id)
                for r in conn.execute(sa.select(t.devices.c.number, t.users.c.first_name, t.users.c.last_name, t.users.c.login)
                                      .join(t.users, t.users.c.id == t.devices.c.user_id)
                                      .where(t.devices.c.domain_id == domain_id, t.devices.c.number.in_(numbers))):
                    names[(domain_id, r.number)] = f"{r.first_name} {r.last_name}".strip() or r.login
            for row in rows:
                row["remote_name"] = row["remote_name"] or names.get((row["domain_id"], row["remote_number"]))
        for row in rows:
            if row["remote_name"]:
                row["remote_name"] = str(row["remote_name"])[:500]
        price_entries(conn, rows)  # the cost from the domain's price list (issue 16)
        conn.execute(sa.insert(t.call_logs), rows)
        return len(rows)

    # -- retention (guide 10.2.1, 10.2.2) --------------------------------------------------
    async def _purger(self, parameter: str, parts: tuple[str, ...]) -> None:
        """Run the ``parts`` of the purge every day at the time of ``parameter`` (its server default value)."""
        while True:
            try:
                hhmm = await self._db().run(self._cleaning_hour, parameter)
                await asyncio.sleep(max(1.0, next_daily(hhmm, time.time()) - time.time()))
                async with self.jobs.once(f"retention:{parameter}") as mine:  # one node of a cluster purges (docs/cluster.md)
                    if mine:
                        await self.purge(parts=parts)
            except asyncio.CancelledError:
                raise
            except Exception:  # try again tomorrow
                log.exception("call log purge (%s) failed", parameter)
                await asyncio.sleep(3600)

    def _cleaning_hour(self, conn: sa.Connection, name: str) -> str:
        pv = t.parameter_values
        value = conn.execute(sa.select(pv.c.value).where(pv.c.name == name, pv.c.scope == "default")).scalar()
        if not value:
            definition = self.parameters.definitions.get(name)
            value = definition.default if definition else "03:00"
        return value

    async def purge(self, now: float | None = None, *, parts: tuple[str, ...] = ("log", "stats")) -> dict[str, int]:
        """Apply the retention of every domain now (``now`` may be given to look ahead); returns the counts.

        ``parts``: ``log`` applies ``CallLog-NumberMaxOfStorage`` and ``CallLog-NumberDaysOfStorage``
        (run at ``CallLog-StartCleaningHour``), ``stats`` applies ``Stats-NumberDaysOfStorage``
        (run at ``Stats-StartCleaningHour``); rows left in neither are deleted either way.
        """
        counts = await self._db().run(self._purge, time.time() if now is None else now, parts)
        if any(counts.values()):
            log.info("call log purge: %(left_log)d entries left the call logs, %(left_stats)d the statistics, %(deleted)d deleted", counts)
        return counts

    def _days(self, conn: sa.Connection, domain_id: int, name: str) -> int:
        try:
            return int(self.parameters.domain_value(conn, domain_id, name).value)
        except (KeyError, ValueError, LookupError):
            return DEFAULT_DAYS[name]

    def _purge(self, conn: sa.Connection, now: float, parts: tuple[str, ...] = ("log", "stats")) -> dict[str, int]:
        c = t.call_logs
        counts = {"left_log": 0, "left_stats": 0, "deleted": 0}
        rules = [rule for part, rule in (("log", ("CallLog-NumberDaysOfStorage", c.c.in_log, "left_log")),
                                         ("stats", ("Stats-NumberDaysOfStorage", c.c.in_stats, "left_stats"))) if part in parts]
        for domain_id in list(conn.execute(sa.select(c.c.domain_id).distinct()).scalars()):
            keep = self._days(conn, domain_id, "CallLog-NumberMaxOfStorage") if "log" in parts else 0
            if keep >= 1:
                # After a day, a user's log keeps the ``keep`` newest calls of each type (incoming, outgoing, missed).
                kind = sa.case((c.c.direction == "outgoing", "outgoing"), (c.c.outcome.in_(("missed", "busy")), "missed"), else_="incoming")
                ranked = (sa.select(c.c.id, c.c.ended_at, sa.func.row_number().over(partition_by=(c.c.user_id, kind),
                                                                                     order_by=(c.c.started_at.desc(), c.c.id.desc())).label("rank"))
                          .where(c.c.domain_id == domain_id, c.c.in_log.is_(True)).subquery())
                beyond = sa.select(ranked.c.id).where(ranked.c.rank > keep, ranked.c.ended_at < _when(now - 86400))
                counts["left_log"] += conn.execute(sa.update(c).where(c.c.id.in_(beyond)).values(in_log=False)).rowcount or 0
            for name, flag, key in rules:
                days = self._days(conn, domain_id, name)
                if days < 1:
                    continue  # 0: kept for ever
                cut = _when(now - days * 86400)
                counts[key] += conn.execute(sa.update(c).where(c.c.domain_id == domain_id, flag.is_(True), c.c.ended_at < cut)
                                            .values({flag.name: False})).rowcount or 0
            counts["deleted"] += (
                conn.execute(sa.delete(c).where(c.c.domain_id == domain_id, c.c.in_log.is_(False), c.c.in_stats.is_(False))).rowcount or 0
            )
        return counts

    # -- recordings ------------------------------------------------------------------------
    async def add_recording(self, *, domain_id: int, device: str, started_at: float, duration: float, source: str, location: str,
                            call_id: str = "", content_type: str = "", size: int | None = None) -> int:
        """Store the metadata of a recording made by a recorder plugin; returns its id.

        The recording belongs to the user of ``device`` in ``domain_id``; ``location`` says
        where the recorder keeps the audio (a URL or a path of its own).  Raises
        ``ValueError`` naming what is wrong when the device is unknown or has no user.
        """
        if not source or not location:
            raise ValueError("a recording needs its source (the recorder's name) and location (where the audio is)")

        def run(conn: sa.Connection) -> int:
            dev = conn.execute(sa.select(t.devices.c.user_id, t.domains.c.company_id).join(t.domains, t.domains.c.id == t.devices.c.domain_id)
                               .where(t.devices.c.domain_id == domain_id, t.devices.c.number == device)).one_or_none()
            if dev is None or dev.user_id is None:
                raise ValueError(f"device {device} of domain {domain_id} " + ("does not exist" if dev is None else "has no user") +
                                 "; a recording is filed under the user of the recorded device")
            log_id = None
            if call_id:
                log_id = conn.execute(sa.select(t.call_logs.c.id).where(
                    t.call_logs.c.domain_id == domain_id, t.call_logs.c.device == device, t.call_logs.c.call_id == call_id)
                    .order_by(t.call_logs.c.id.desc()).limit(1)).scalar()
            return conn.execute(sa.insert(t.recordings).values(
                company_id=dev.company_id, domain_id=domain_id, user_id=dev.user_id, call_log_id=log_id, device=device, call_id=call_id,
                started_at=_when(started_at), duration=float(duration), source=source[:64], location=location[:1000],
                content_type=content_type[:100], size=size).returning(t.recordings.c.id)).scalar_one()

        return await self._db().run(run)


# -- reading (blocking; run through store.run) ------------------------------------------------
def entry_json(r: Any) -> dict[str, Any]:
    started, answered, ended = _aware(r.started_at), _aware(r.answered_at), _aware(r.ended_at)
    return {
        "id": r.id, "user_id": r.user_id, "domain_id": r.domain_id, "device": r.device, "call_id": r.call_id,
        "direction": r.direction, "internal": r.internal, "number": r.remote_number, "canonical_number": r.remote_canonical or None,
        "name": r.remote_name, "started_at": started.isoformat() if started else None,
        "answered_at": answered.isoformat() if answered else None, "ended_at": ended.isoformat() if ended else None,
        "duration": r.duration, "outcome": r.outcome, "outcome_to": r.outcome_to, "cause": r.cause,
        "cost": float(r.cost) if r.cost is not None else None, "currency": r.currency, "price_list": r.price_list, "destination": r.destination,
    }


def _with_direction(sel: sa.Select, direction: str | None) -> sa.Select:
    c = t.call_logs
    if direction in ("incoming", "outgoing"):
        return sel.where(c.c.direction == direction)
    if direction == "internal":
        return sel.where(c.c.internal.is_(True))
    if direction == "external":
        return sel.where(c.c.internal.is_(False))
    return sel


def list_entries(conn: sa.Connection, user_id: int, *, direction: str | None = None, missed: bool = False, start: dt.datetime | None = None,
                 end: dt.datetime | None = None, q: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """A user's call log, newest first, with the API's filters."""
    c = t.call_logs
    sel = _with_direction(sa.select(c).where(c.c.user_id == user_id, c.c.in_log.is_(True)), direction)
    if missed:
        sel = sel.where(c.c.direction == "incoming", c.c.outcome.in_(("missed", "busy")))
    if start is not None:
        sel = sel.where(c.c.started_at >= start)
    if end is not None:
        sel = sel.where(c.c.started_at < end)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sel = sel.where(sa.or_(c.c.remote_number.ilike(like, escape="\\"), c.c.remote_canonical.ilike(like, escape="\\"),
                               c.c.remote_name.ilike(like, escape="\\")))
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    rows = conn.execute(sel.order_by(c.c.started_at.desc(), c.c.id.desc()).limit(limit).offset(offset)).all()
    return {"items": [entry_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def hide_entry(conn: sa.Connection, user_id: int, entry_id: int) -> bool:
    """Take one entry out of the user's call log (statistics keep counting it)."""
    c = t.call_logs
    return bool(conn.execute(sa.update(c).where(c.c.id == entry_id, c.c.user_id == user_id, c.c.in_log.is_(True)).values(in_log=False)).rowcount)


def _period(when: dt.datetime, group_by: str, zone: dt.tzinfo = UTC) -> str:
    when = when.astimezone(zone)
    if group_by == "hour":
        offset = when.strftime("%z")
        return when.strftime("%Y-%m-%dT%H:00") + ("Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}")
    if group_by == "day":
        return when.strftime("%Y-%m-%d")
    if group_by == "month":
        return when.strftime("%Y-%m")
    if group_by == "year":
        return when.strftime("%Y")
    return WEEKDAYS[when.weekday()]  # not strftime: the names must not follow the server's locale


def summarize(rows: Iterable[Any]) -> dict[str, Any]:
    """Counters of a set of call-log rows: what the statistics show (see ``docs/call-logs.md``)."""
    out: dict[str, Any] = {"calls": 0, "incoming": 0, "outgoing": 0, "internal": 0, "external": 0, "answered": 0, "missed": 0, "total_duration": 0.0}
    answer_waits: list[float] = []
    for r in rows:
        out["calls"] += 1
        if r.direction in ("incoming", "outgoing"):
            out[r.direction] += 1
        out["internal" if r.internal else "external"] += 1
        if r.answered_at is not None:
            out["answered"] += 1
            out["total_duration"] += r.duration
            if r.direction == "incoming":
                answer_waits.append(max(0.0, (_aware(r.answered_at) - _aware(r.started_at)).total_seconds()))  # type: ignore[operator]
        elif r.direction == "incoming" and r.outcome in ("missed", "busy"):
            out["missed"] += 1
    out["total_duration"] = round(out["total_duration"], 3)
    out["mean_duration"] = round(out["total_duration"] / out["answered"], 3) if out["answered"] else None
    out["mean_time_to_answer"] = round(sum(answer_waits) / len(answer_waits), 3) if answer_waits else None
    return out


def _stat_rows(conn: sa.Connection, user_ids: list[int], start: dt.datetime, end: dt.datetime, direction: str | None,
               numbers: Iterable[str]) -> Sequence[Any]:
    c = t.call_logs
    sel = (sa.select(c.c.user_id, c.c.direction, c.c.internal, c.c.started_at, c.c.answered_at, c.c.duration, c.c.outcome)
           .where(c.c.user_id.in_(user_ids or [-1]), c.c.in_stats.is_(True), c.c.started_at >= start, c.c.started_at < end))
    sel = _with_direction(sel, direction)
    numbers = sorted(set(numbers))
    if numbers:
        sel = sel.where(sa.or_(c.c.remote_number.in_(numbers), c.c.remote_canonical.in_(numbers)))
    return conn.execute(sel.order_by(c.c.started_at, c.c.id)).all()


def _buckets(rows: list[Any], group_by: str, zone: dt.tzinfo = UTC) -> list[dict[str, Any]]:
    buckets: dict[str, list[Any]] = {}
    for r in rows:
        buckets.setdefault(_period(_aware(r.started_at), group_by, zone), []).append(r)  # type: ignore[arg-type]
    order = list(buckets)
    if group_by == "weekday":
        order.sort(key=lambda day: WEEKDAYS.index(day))
    return [{"period": p, **summarize(buckets[p])} for p in order]


def statistics(conn: sa.Connection, user_ids: list[int], start: dt.datetime, end: dt.datetime, group_by: str | None,
               direction: str | None = None, numbers: Iterable[str] = (), zone: dt.tzinfo = UTC) -> dict[str, Any]:
    """Statistics of each user between ``start`` (included) and ``end`` (excluded), optionally per period, and of them all.

    ``direction`` keeps incoming, outgoing, internal or external calls; ``numbers`` keeps the calls with one
    correspondent (its number as presented, or its canonical keys).
    """
    rows = _stat_rows(conn, user_ids, start, end, direction, numbers)
    users: dict[int, dict[str, Any]] = {}
    for user_id in user_ids:
        mine = [r for r in rows if r.user_id == user_id]
        item: dict[str, Any] = {"user_id": user_id, "totals": summarize(mine)}
        if group_by:
            item["periods"] = _buckets(mine, group_by, zone)
        users[user_id] = item
    return {"users": users, "totals": summarize(rows)}


def recording_json(r: Any) -> dict[str, Any]:
    started = _aware(r.started_at)
    return {"id": r.id, "user_id": r.user_id, "device": r.device, "call_id": r.call_id or None, "call_log_id": r.call_log_id,
            "started_at": started.isoformat() if started else None, "duration": r.duration, "source": r.source,
            "location": r.location, "content_type": r.content_type or None, "size": r.size}


def list_recordings(conn: sa.Connection, user_id: int, start: dt.datetime | None, end: dt.datetime | None, limit: int, offset: int) -> dict[str, Any]:
    r = t.recordings
    sel = sa.select(r).where(r.c.user_id == user_id)
    if start is not None:
        sel = sel.where(r.c.started_at >= start)
    if end is not None:
        sel = sel.where(r.c.started_at < end)
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    rows = conn.execute(sel.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit).offset(offset)).all()
    return {"items": [recording_json(x) for x in rows], "total": total, "limit": limit, "offset": offset}
