"""The directory service: directories as stored objects, synchronization, search, reverse lookup.

The store is the source of truth: directories are rows (admins create them through the
API, or declare them in ``[directories.<name>]`` config tables, upserted at start-up and
marked config-managed), contacts, their numbers and search words are rows, and every sync
is kept in ``directory_syncs``.  Searches and reverse lookups read indexed tables of the
store (``index.py``, ``search.py``): nothing is loaded per contact at start-up.

``DirectoryService`` is made of parts, each in its module: settings, states and contact
cards here; the streaming sync writer (``writer.OwnerSync``); the scheduler
(``scheduler.Scheduling``); private and pushed contacts (``private.PrivateContacts``).

A sync (guide 8.2.1) builds a fresh connector object from the directory's options and
streams its records in batches of ``batch_size``: each batch is mapped (guide 8.1),
compared with the stored contacts by content hash, given canonical keys for its new and
changed numbers, and its new contacts are written hidden (``contacts.pending``); changes
and deletions follow once the source has been read to the end, then the new contacts are
published.  On SQLite the sync pauses between two write batches so other writers (logins,
admin changes) get the lock.  Anything raised while reading the source (``NotReady``,
``AuthFailed``, ``ConnectorError``, a time-out, any exception) leaves the previous
contacts as they were; the sync is recorded as failed with its error.
``docs/directories.md`` ("What readers observe") says more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import random
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.config import InstanceSpec
from twpcore.dialplan import DialingPlan
from twpcore.directory import db
from twpcore.directory import search as searching
from twpcore.directory.errors import DirectoryError
from twpcore.directory.fields import (
    ALL_FIELDS,
    NUMBER_FIELDS,
    PRIVATE_FIELDS,
    TEXT_FIELDS,
    Mapping,
    MappingError,
    display_name,
    identity_fields,
    words,
)
from twpcore.directory.index import DirectoryIndex, ReverseCache, View, contact_counts
from twpcore.directory.index import reverse as index_reverse
from twpcore.directory.private import PrivateContacts
from twpcore.directory.report import SyncReport
from twpcore.directory.scheduler import Scheduling
from twpcore.directory.writer import OwnerSync
from twpcore.events import Event
from twpcore.instances import Instance, InstanceState
from twpcore.kinds import AuthFailed, ConnectorError, InstanceContext, Kind, NotReady
from twpcore.plugins import describe_exception
from twpcore.schema import ConfigErrors, Secret, hide_values, looks_secret, structure
from twpcore.server_side import hidden_values
from twpcore.store import redact_url
from twpcore.store import schema as t

if typing.TYPE_CHECKING:
    from twpcore.config import Config
    from twpcore.dialing import DialingPlans
    from twpcore.events import EventBus
    from twpcore.instances import InstanceManager
    from twpcore.parameters import ParameterRegistry
    from twpcore.plugins import PluginManager

log = logging.getLogger(__name__)

TYPES = ("public", "private", "draft")
NUMBERISH = frozenset("0123456789+()-./ ")
BATCH = 5000
"""Contacts written per transaction by a sync (about half a second on SQLite on the benchmark machine)."""
BATCH_PAUSE = 0.12
"""Pause between two batches on SQLite (seconds): longer than SQLite's longest busy-handler sleep (100 ms),
so a writer waiting for the lock gets it between two batches instead of timing out."""
TEST_TIMEOUT = 60.0
"""Seconds ``POST /directories/{id}/test`` waits for the connector's ``setup()`` and ``test_connection()``."""
TEST_STATES = ("ready", "retrying", "auth_failed", "error")
"""The ``state`` values of a connection test's answer."""


@attrs.frozen
class DirectoryRef:
    """What a connector object is told of the directory it serves (``connector.directory``)."""

    id: int
    name: str
    type: str
    domain_id: int
    company_id: int


def parse_every(value: Any) -> int | None:
    """``sync_every`` as seconds: an integer, or ``"15m"`` / ``"2h"`` / ``"90s"``; null turns high-frequency sync off."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise DirectoryError(
            422, "invalid_directory", f'sync_every: expected seconds or a duration such as "15m" or "2h", got {value!r}', "sync_every"
        )
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip()[:-1].strip().isdigit() and value.strip()[-1:] in ("s", "m", "h"):
        seconds = int(value.strip()[:-1]) * {"s": 1, "m": 60, "h": 3600}[value.strip()[-1]]
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value)
    else:
        raise DirectoryError(
            422, "invalid_directory", f'sync_every: expected seconds or a duration such as "15m" or "2h", got {value!r}', "sync_every"
        )
    if not 1 <= seconds <= 7 * 86400:
        raise DirectoryError(422, "invalid_directory", f"sync_every: expected 1 second to 7 days, got {seconds} seconds", "sync_every")
    return seconds


def _secret_keys(cls: type | None) -> set[str]:
    if cls is None or not attrs.has(cls):
        return set()
    hints = typing.get_type_hints(cls)
    out = set()
    for f in attrs.fields(cls):
        tp = hints.get(f.name)
        if tp is Secret or Secret in typing.get_args(tp) or f.metadata.get("secret") or looks_secret(f.alias or f.name):
            out.add(f.alias or f.name)
    return out


class DirectoryService(Scheduling, PrivateContacts):
    """The kernel's directory service (``kernel.directories``)."""

    def __init__(self, config: Config, plugins: PluginManager, instances: InstanceManager, events: EventBus, parameters: ParameterRegistry,
                 dialing_plans: DialingPlans, instance_context: Callable[[str, Kind, logging.Logger], InstanceContext]):
        self.config = config
        """The server's config: its ``[directories.<name>]`` tables and their source file."""
        self.plugins = plugins
        """The loaded plugins: the connector types (``Kind.DIRECTORY_CONNECTOR``)."""
        self.instances = instances
        """The instance manager: each directory is one instance there, with the states of a PBX link."""
        self.events = events
        self.parameters = parameters
        self.dialing_plans = dialing_plans
        self.instance_context = instance_context
        """Makes the context a connector object receives (``Kernel.instance_context``)."""
        self.store: Any = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): directories, contacts and syncs live there."""
        self.index = DirectoryIndex()
        self.rows: dict[int, dict[str, Any]] = {}
        self.mappings: dict[int, Mapping] = {}
        self.locks: dict[int, asyncio.Lock] = {}
        self.ready = asyncio.Event()
        self.problems: list[str] = []
        """Config-declared directories that could not be stored (unknown domain...)."""
        self.tick = 30.0
        """Longest sleep of the scheduler between two looks at the schedule (seconds)."""
        self.sync_timeout = 3600.0
        self.batch_size = BATCH
        """Contacts written per transaction by a sync."""
        self.batch_pause = BATCH_PAUSE
        """Pause between two write batches of a sync on SQLite (seconds)."""
        self.reverse_cache = ReverseCache()
        """Recent answers of ``reverse_now`` (call enrichment), emptied whenever contacts or rights change."""
        self._users_vis: dict[int, tuple[tuple[int, ...], frozenset[int]]] = {}
        self._domains_vis: dict[int, tuple[int, ...]] = {}
        self._plans: dict[int, DialingPlan] = {}
        self._keys: dict[int, tuple[DialingPlan, dict[str, tuple[str, ...]]]] = {}
        self._calls: dict[tuple[int, str, str], dict[str, Any] | None] = {}
        self._next: dict[int, tuple[float | None, float | None]] = {}
        self._last_start: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pending: dict[str, asyncio.Task] = {}
        self._active: dict[str, asyncio.Task] = {}
        self._again: dict[str, tuple[float, Any]] = {}
        self._stopping = False
        self._running: set[asyncio.Task] = set()
        self._seen_sync = 0
        self._own_syncs: set[int] = set()
        self.outcomes: dict[int, tuple[str, str | None]] = {}
        """Each directory's last finished sync, (status, error): from the store at start, then from every sync seen."""
        self.retries: dict[int, tuple[int, float]] = {}
        """Directories whose syncs fail for a temporary reason: (failures in a row, time of the next try)."""
        self.max_backoff = 300.0
        """Longest wait before retrying a directory whose source was not ready (seconds)."""
        self._config_names: dict[int, str] = {}
        """Directory id → name of its ``[directories.<name>]`` table, for config-declared directories."""
        self._company_names: dict[int, str] = {}

    # ------------------------------------------------------------------ lifecycle
    async def read(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in a read-only transaction that never blocks writers (SQLite: BEGIN DEFERRED)."""
        store = self.store

        def run() -> Any:
            with store.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn, conn.begin():
                return fn(conn, *args)

        return await asyncio.get_running_loop().run_in_executor(store.executor, run)

    #: How long ``start`` waits for the index before the server serves anyway (seconds).
    start_wait = 5.0

    async def start(self) -> None:
        """Load the index; serve after ``start_wait`` seconds even if a large index is still loading.

        Small sites are fully loaded when the server starts.  With millions of contacts the
        server answers everything else at once, and directory reads answer 503 until the
        index is ready; syncs and private-contact changes wait for it.
        """
        await self.store.run(self._upsert_config_directories)
        for spec in self.config.instances_of(Kind.DIRECTORY_CONNECTOR):
            problem = next((p for p in self.problems if p.startswith(f"{self.config.source}: {spec.path}:")), None)
            inst = self.instances.instances.get((Kind.DIRECTORY_CONNECTOR, spec.name))
            if problem is not None and inst is not None and inst.state == InstanceState.CONFIGURED:
                inst.set(InstanceState.CONFIG_ERROR, problem)
        loading = asyncio.get_running_loop().create_task(self._initial_load(), name="directory-load")
        self._tasks.append(loading)
        try:
            await asyncio.wait_for(asyncio.shield(loading), self.start_wait)
        except TimeoutError:
            log.warning("the directory index is still loading after %.0f s; searches answer 503 until it is ready", self.start_wait)

    async def _initial_load(self) -> None:
        t0 = time.perf_counter()
        await self.reload()
        self.ready.set()
        log.info("directory index ready in %.1f s (%d directories)", time.perf_counter() - t0, len(self.rows))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._scheduler(), name="directory-scheduler"))
        self._tasks.append(loop.create_task(self._watch(), name="directory-watch"))
        for row in list(self.rows.values()):
            if row["connector"] == "twp_users" and row["type"] != "draft":
                self._soon(f"users:{row['id']}", 0.0, functools.partial(self.sync, row["id"], "startup", wait=True))

    def _require_ready(self) -> None:
        if not self.ready.is_set():
            raise DirectoryError(503, "directory_loading", "the directory index is still loading after a restart; retry in a few seconds")

    async def stop(self) -> None:
        self._stopping = True
        for task in [*self._tasks, *self._pending.values(), *self._running]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._pending.values(), *self._running, return_exceptions=True)
        self._tasks.clear()
        self._pending.clear()

    async def reload(self) -> None:
        """Reload every directory row, contact count, dialing plan and visibility.

        The contacts stay in the store (``index.py``): nothing is rebuilt, so this takes
        the same time with a million contacts as with ten.  Contacts left unpublished by a
        sync that did not finish (a crash) are deleted.
        """
        # Read first: a sync another process finishes while we load is then noticed by the scheduler.
        self._seen_sync = await self.read(lambda c: c.execute(sa.select(sa.func.max(t.directory_syncs.c.id))).scalar_one() or 0)
        dropped = await self.store.run(db.discard_pending)
        if dropped:
            log.warning("directory contacts: %d contacts written by syncs that never finished were removed", dropped)
        rows = await self.read(db.all_directories)
        self.rows = {r["id"]: r for r in rows}
        self._company_names, self.outcomes = await self.read(_names_and_outcomes, None)
        self.mappings = {}
        self.index.set_counts(await self.read(contact_counts, None), whole=True)
        self.reverse_cache.clear()
        await self.refresh_plans()
        await self.refresh_visibility()
        await self._load_schedule()
        for key in [k for k in self.instances.instances if k[0] == Kind.DIRECTORY_CONNECTOR and k[1].startswith("directory:")]:
            if int(key[1].split(":", 1)[1]) not in self.rows:
                del self.instances.instances[key]
        for row in rows:
            self._show(row)

    async def refresh_plans(self) -> None:
        def run(conn: sa.Connection) -> dict[int, DialingPlan]:
            ids = conn.execute(sa.select(t.domains.c.id)).scalars().all()
            return {i: self.dialing_plans.get(conn, i) for i in ids}

        self._plans = await self.read(run)

    async def refresh_visibility(self) -> None:
        self._users_vis, self._domains_vis = await self.read(db.all_visibility)
        self.reverse_cache.clear()

    async def _watch(self) -> None:
        """Follow admin changes: rights and users change visibility; users and devices feed the users directory."""
        sub = self.events.subscribe(lambda e: e.type.startswith("admin.") or e.type == "system.resync", name="directories")
        try:
            while True:
                event = await sub.get()
                self._soon("visibility", 0.2, self.refresh_visibility)
                if event.type.startswith(("admin.domain.", "admin.parameter_value.")):
                    self._soon("plans", 0.2, self._after_domain_change)
                # The node where the change was made syncs the users directory; the others only follow (docs/cluster.md).
                if event.origin is None and (event.type.startswith(("admin.user.", "admin.device.", "admin.domain."))
                                             or event.type == "system.resync"):
                    for row in list(self.rows.values()):
                        if row["connector"] == "twp_users" and row["type"] != "draft" and (event.domain_id in (None, row["domain_id"])):
                            self._soon(f"users:{row['id']}", 0.5, functools.partial(self.sync, row["id"], "change", wait=True))
        finally:
            self.events.unsubscribe(sub)

    async def _after_domain_change(self) -> None:
        await self.refresh_plans()
        await self._load_schedule()

    # ------------------------------------------------------------------ config-declared directories
    def _upsert_config_directories(self, conn: sa.Connection) -> None:
        self.problems = []
        source = self.config.source
        declared: set[int] = set()
        for spec in self.config.instances_of(Kind.DIRECTORY_CONNECTOR):
            settings = dict(getattr(spec, "settings", {}) or {})
            where = f"{source}: {spec.path}"
            if not spec.domain:
                self.problems.append(f'{where}: no domain; add company = "…" and domain = "…" to say which domain the directory belongs to')
                continue
            sel = sa.select(t.domains.c.id).join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.name == spec.domain)
            if spec.company:
                sel = sel.where(t.companies.c.name == spec.company)
            ids = conn.execute(sel.limit(2)).scalars().all()
            if len(ids) != 1:
                self.problems.append(
                    f"{where}: domain {spec.domain!r}"
                    + (f" of company {spec.company!r}" if spec.company else "")
                    + (" does not exist; create it or fix the config" if not ids else ' exists in several companies; add company = "…"')
                )
                continue
            data = {**settings, "connector": spec.type_name, "options": spec.options}
            if not spec.enabled:
                data["type"] = "draft"
            name = settings.pop("name", None) or spec.name
            data["name"] = name
            existing = conn.execute(db.directory_select().where(t.directories.c.domain_id == ids[0], t.directories.c.name == name)).one_or_none()
            try:
                values = self.check(conn, data, dict(existing._mapping) if existing is not None else None, domain_id=ids[0], strict=False)
            except DirectoryError as exc:
                self.problems.append(f"{where}: {exc.detail}")
                continue
            values["config_managed"] = True
            if existing is None:
                did = conn.execute(sa.insert(t.directories).values(domain_id=ids[0], **values).returning(t.directories.c.id)).scalar_one()
            else:
                did = existing.id
                conn.execute(sa.update(t.directories).where(t.directories.c.id == did).values(**values))
            declared.add(did)
            self._config_names[did] = spec.name
        # A directory that left the config file stops being config-managed (it is kept, with its contacts).
        conn.execute(sa.update(t.directories).where(t.directories.c.config_managed.is_(True), t.directories.c.id.not_in(declared or {-1}))
                     .values(config_managed=False))
        for problem in self.problems:
            log.error("%s", problem)

    # ------------------------------------------------------------------ settings
    def connector_type(self, name: str) -> Any:
        rec = self.plugins.types[Kind.DIRECTORY_CONNECTOR].get(name)
        return None if rec is None else rec.cls

    def check(self, conn: sa.Connection | None, data: dict[str, Any], existing: dict[str, Any] | None, *, domain_id: int | None = None,
              strict: bool = True) -> dict[str, Any]:
        """Check a directory's settings (create when ``existing`` is None); return the column values to write."""
        allowed = {"name", "connector", "type", "priority", "options", "fields", "labels", "merge", "sync_daily", "sync_time", "sync_every"}
        if existing is None:
            allowed.add("domain_id")
        for key in data:
            if key not in allowed:
                raise DirectoryError(400, "bad_request", f"directory: unknown or read-only field {key!r}; fields: {', '.join(sorted(allowed))}", key)
        merged = {**(existing or {}), **data}
        values: dict[str, Any] = {}
        name = merged.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise DirectoryError(400, "bad_request", "directory: name must be a non-empty string of at most 200 characters", "name")
        connector = merged.get("connector")
        if not isinstance(connector, str) or not connector or len(connector) > 64:
            raise DirectoryError(
                400, "bad_request", "directory: connector is required (the connector type, such as twp_users, private, sql, files, ldap)", "connector"
            )
        if existing is not None and "connector" in data and data["connector"] != existing["connector"]:
            raise DirectoryError(400, "bad_request", "directory: the connector cannot be changed; create another directory", "connector")
        dtype = merged.get("type", "public") or "public"
        if dtype not in TYPES:
            raise DirectoryError(400, "bad_request", f'directory: type must be public, private or draft (guide 8.1), got {dtype!r}', "type")
        priority = merged.get("priority", 100)
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1_000_000:
            raise DirectoryError(
                400, "bad_request", f"directory: priority must be an integer 0-1000000 (lower comes first), got {priority!r}", "priority"
            )
        cls = self.connector_type(connector)
        caps = cls.capabilities if cls is not None else frozenset()
        if cls is None and strict and existing is None and "connector" in data:
            log.warning("directory %s: connector %r is not installed; the directory is kept but cannot sync", name, connector)
        if cls is not None and dtype == "private" and not caps & {"private", "push"}:
            raise DirectoryError(
                422,
                "invalid_directory",
                f"directory {name}: the {connector} connector cannot serve a private directory (it has no per-user contacts); use type public",
                "type",
            )
        if cls is not None and dtype == "public" and not caps & {"sync"}:
            raise DirectoryError(
                422, "invalid_directory", f"directory {name}: the {connector} connector holds per-user contacts; use type private (or draft)", "type"
            )
        options = merged.get("options") or {}
        if not isinstance(options, dict):
            raise DirectoryError(400, "bad_request", "directory: options must be an object (the connector's settings)", "options")
        if existing is not None and "options" in data:
            old = existing.get("options") or {}
            options = {k: (old.get(k) if v == "***" and k in old else v) for k, v in options.items()}
        if cls is not None:
            try:
                structure(cls.Config, options, source=f"directory {name}", path="options")
            except ConfigErrors as exc:
                raise DirectoryError(422, "invalid_options", "; ".join(str(p) for p in exc.problems), "options") from None
        fields, labels = merged.get("fields") or {}, merged.get("labels") or {}
        try:
            Mapping.check(fields, labels)
        except MappingError as exc:
            raise DirectoryError(422, "invalid_fields", str(exc), f"fields.{exc.field}") from None
        sync_time = merged.get("sync_time")
        if sync_time is not None and not (
            isinstance(sync_time, str)
            and len(sync_time) == 5
            and sync_time[2] == ":"
            and sync_time[:2].isdigit()
            and sync_time[3:].isdigit()
            and int(sync_time[:2]) < 24
            and int(sync_time[3:]) < 60
        ):
            raise DirectoryError(422, "invalid_directory", f'sync_time: expected HH:MM (24 h, guide 8.2.1), got {sync_time!r}', "sync_time")
        for key in ("merge", "sync_daily"):
            if key in merged and not isinstance(merged[key], bool):
                raise DirectoryError(400, "bad_request", f"directory: {key} must be true or false", key)
        values.update(name=name.strip(), connector=connector, type=dtype, priority=priority, options=options, fields=fields or None,
                      labels=labels or None, merge=bool(merged.get("merge", False)), sync_daily=bool(merged.get("sync_daily", True)),
                      sync_time=sync_time, sync_every=parse_every(merged.get("sync_every")))
        return values

    def present(self, row: dict[str, Any]) -> dict[str, Any]:
        """A directory as the admin API shows it (secret options as ``"***"``)."""
        cls = self.connector_type(row["connector"])
        secrets = _secret_keys(getattr(cls, "Config", None))
        options = {k: ("***" if (k in secrets or looks_secret(k)) and v not in (None, "") and not (isinstance(v, dict) and set(v) == {"env"})
                       else redact_url(v) if isinstance(v, str) and "://" in v and "@" in v else v)
                   for k, v in (row.get("options") or {}).items()}
        state, reason = self.state(row)
        contacts = self.index.counts.get(row["id"], 0)
        created = row.get("created_at")
        return {
            "id": row["id"], "domain_id": row["domain_id"], "company_id": row.get("company_id"), "name": row["name"],
            "connector": row["connector"], "type": row["type"], "priority": row["priority"], "options": options,
            "fields": row.get("fields") or {}, "default_fields": self.default_fields(row), "labels": row.get("labels") or {}, "merge": row["merge"],
            "sync_daily": row["sync_daily"], "sync_time": row.get("sync_time"), "sync_every": row.get("sync_every"),
            "config_managed": row["config_managed"], "state": state, "reason": reason,
            "attempts": self.retries.get(row["id"], (0, 0.0))[0], "next_attempt": self.next_attempt(row["id"], state), "contacts": contacts,
            "capabilities": sorted(cls.capabilities) if cls is not None else [],
            "created_at": created.isoformat() if isinstance(created, dt.datetime) else created,
        }

    def state(self, row: dict[str, Any]) -> tuple[str, str | None]:
        """The directory's instance state and its reason: the states of a PBX link (``twpcore.instances``).

        ``disabled`` for a draft; for a pulled directory, the outcome of its last sync
        (``sync_state``): ``retrying``, ``auth_failed`` or ``setup_error`` with the sync's
        error until a sync succeeds.
        """
        cls = self.connector_type(row["connector"])
        if cls is None:
            known = ", ".join(sorted(self.plugins.types[Kind.DIRECTORY_CONNECTOR])) or "none"
            return "not_installed", f'no loaded plugin provides the connector "{row["connector"]}"; install it, or use one of: {known}'
        if row["type"] == "draft":
            return "disabled", "type draft: drafts never synchronize (guide 8.1); set type public or private to synchronize it"
        try:
            structure(cls.Config, row.get("options") or {}, source=f"directory {row['name']}", path="options")
        except ConfigErrors as exc:
            return "config_error", "; ".join(str(p) for p in exc.problems)
        if "sync" in cls.capabilities and row["id"] in self.outcomes:
            state, reason = sync_state(*self.outcomes[row["id"]])
            return state.value, reason
        return "ready", None

    def next_attempt(self, directory_id: int, state: str) -> float | None:
        """When a failing directory is synchronized again: its retry, else its next scheduled sync (epoch seconds)."""
        if state == "retrying" and directory_id in self.retries:
            return self.retries[directory_id][1]
        if state in ("auth_failed", "setup_error"):
            times = [when for when in self._next.get(directory_id, ()) if when is not None]
            return min(times) if times else None
        return None

    def _show(self, row: dict[str, Any]) -> None:
        """Set the state of the directory's one instance in ``kernel.instances`` (added for a directory of the API)."""
        key = (Kind.DIRECTORY_CONNECTOR, self._config_names.get(row["id"]) or f"directory:{row['id']}")
        inst = self.instances.instances.get(key)
        if inst is None or (key[1].startswith("directory:") and inst.spec.name != row["name"]):
            spec = InstanceSpec(Kind.DIRECTORY_CONNECTOR, row["name"], row["connector"], f"directories/{row['id']}",
                                company=self._company_names.get(row["company_id"]), domain=row.get("domain_name"))
            inst = self.instances.instances[key] = Instance(
                spec, type=self.plugins.types[Kind.DIRECTORY_CONNECTOR].get(row["connector"])
            )
        state, reason = self.state(row)
        inst.attempts = self.retries.get(row["id"], (0, 0.0))[0]
        inst.next_attempt = self.next_attempt(row["id"], state)
        inst.set(state, reason)

    def _forget(self, directory_id: int) -> None:
        """A directory was deleted: its instance goes (a config-declared one stays, its table still names it)."""
        self.instances.instances.pop((Kind.DIRECTORY_CONNECTOR, f"directory:{directory_id}"), None)
        self.outcomes.pop(directory_id, None)
        self.retries.pop(directory_id, None)

    def _note_outcome(self, row: dict[str, Any], status: str, error: str | None) -> None:
        """A sync of this process finished: keep its outcome, retry a source that was not ready, show the state."""
        did = row["id"]
        self.outcomes[did] = (status, error)
        if sync_state(status, error)[0] == InstanceState.RETRYING and self.state(row)[0] == "retrying":
            attempts = self.retries.get(did, (0, 0.0))[0] + 1
            delay = min(self.max_backoff, 15.0 * 2.0 ** min(attempts - 1, 9)) * random.uniform(0.8, 1.2)
            self.retries[did] = (attempts, time.time() + delay)
            self._soon(f"retry:{did}", delay, functools.partial(self._scheduled, did, "retry"))
        else:
            self.retries.pop(did, None)
            waiting = self._pending.get(f"retry:{did}")
            if waiting is not None and self._active.get(f"retry:{did}") is not waiting:
                waiting.cancel()
        self._show(row)

    def default_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """The field mapping the directory's connector declares for the directory's type.

        A connector class gives ``default_fields``, and may give ``private_default_fields``
        for private directories when its per-user source names fields differently (Google's
        People API against its Directory API).
        """
        cls = self.connector_type(row["connector"])
        if cls is None:
            return {}
        if row.get("type") == "private" and getattr(cls, "private_default_fields", None) is not None:
            return dict(cls.private_default_fields)
        return dict(getattr(cls, "default_fields", None) or {})

    def mapping(self, row: dict[str, Any], sample: Iterable[str] = ()) -> Mapping:
        """The directory's mapping: the connector's defaults, with the directory's ``fields`` over them.

        A field set to ``""`` (or null) in ``fields`` drops a default.  A connector without
        defaults and a directory without fields map every source field named like a TWP
        field (``identity_fields`` of a sample record).
        """
        cached = self.mappings.get(row["id"])
        if cached is not None and not sample:
            return cached
        own = row.get("fields") or {}
        defaults = self.default_fields(row)
        fields = {**defaults, **own} if defaults or own else identity_fields(sample)
        mapping = Mapping(fields, row.get("labels") or {})
        if defaults or own or not sample:
            self.mappings[row["id"]] = mapping
        return mapping

    async def changed(self, directory_id: int) -> None:
        """A directory row was created, changed or deleted: reload it, its index segments and the schedule."""
        await self.ready.wait()
        row = await self.read(db.load_directory, directory_id)
        self.mappings.pop(directory_id, None)
        if row is None:
            self.rows.pop(directory_id, None)
            self.index.drop(directory_id)
            self.reverse_cache.clear()
            self._next.pop(directory_id, None)
            self._forget(directory_id)
        else:
            self.rows[directory_id] = row
            await self._load(row)
        await self.refresh_visibility()
        await self._load_schedule()
        if row is not None:
            names, outcomes = await self.read(_names_and_outcomes, directory_id)
            self._company_names.update(names)
            if directory_id in outcomes:
                self.outcomes[directory_id] = outcomes[directory_id]
                if sync_state(*outcomes[directory_id])[0] != InstanceState.RETRYING:
                    self.retries.pop(directory_id, None)
            self._show(row)
        self._wake.set()

    async def _load(self, row: dict[str, Any], owner_id: Any = ...) -> None:
        """A directory's contacts changed (every owner, or one): refresh its count and forget cached lookups.

        Searches and lookups read the store, so they see the change already; only what is
        kept in memory follows here.
        """
        self.reverse_cache.clear()
        self.index.set_counts(await self.read(contact_counts, row["id"]))

    # ------------------------------------------------------------------ connectors
    def connector(self, row: dict[str, Any]) -> Any:
        """A fresh connector object for one sync or test of the directory."""
        cls = self.connector_type(row["connector"])
        state, reason = self.state(row)
        if state == "not_installed":
            raise DirectoryError(409, "not_installed", f"directory {row['name']}: {reason}", "connector")
        if state == "config_error":
            raise DirectoryError(409, "config_error", f"directory {row['name']}: {reason}", "options")
        cfg = structure(cls.Config, row.get("options") or {}, source=f"directory {row['name']}", path="options")
        ctx = self.instance_context(f"directory:{row['name']}", Kind.DIRECTORY_CONNECTOR,
                                    logging.getLogger(f"twp.directory_connector.{row['connector']}"))
        obj = cls(cfg, ctx)
        obj.directory = DirectoryRef(row["id"], row["name"], row["type"], row["domain_id"], row["company_id"])
        return obj

    async def test(self, directory_id: int) -> dict[str, Any]:
        """Guide 8.3's advice, built in: reach the source and say what was found.

        One answer shape, success or failure (``docs/directories.md``, "Testing a
        directory"): ``ok``; ``state``, what a sync would make of the directory now
        (``ready``, ``retrying`` for a source that is not ready or does not answer within
        ``TEST_TIMEOUT`` seconds, ``auth_failed``, ``error``); ``message``, what the
        connector found or why it failed; ``duration`` in seconds.  The answer never
        repeats a value read from the environment or a secret option, whatever the
        connector's message says (admin guide 15).
        """
        row = await self._row(directory_id)
        answer = await self._test(row)
        hidden = hidden_values(row.get("options"))
        return {k: hide_values(v, hidden) if isinstance(v, str) else v for k, v in answer.items()}

    async def _test(self, row: dict[str, Any]) -> dict[str, Any]:
        obj = self.connector(row)
        t0 = time.perf_counter()

        def answer(state: str, message: str) -> dict[str, Any]:
            return {"ok": state == "ready", "state": state, "message": message, "duration": round(time.perf_counter() - t0, 3)}

        try:
            async with asyncio.timeout(TEST_TIMEOUT):
                await obj.setup()
                return answer("ready", await obj.test_connection())
        except NotReady as exc:
            return answer("retrying", exc.reason)
        except AuthFailed as exc:
            return answer("auth_failed", str(exc) or "the source refused the credentials")
        except TimeoutError:
            return answer("retrying", f"the source gave no answer within {TEST_TIMEOUT:g} s; check that it is up and reachable")
        except Exception as exc:  # noqa: BLE001 - a connector's test may fail in any way; the admin gets the reason
            return answer("error", describe_exception(exc))
        finally:
            try:
                await obj.close()
            except Exception:
                log.debug("close after test of %s failed", row["name"], exc_info=True)

    async def _row(self, directory_id: int) -> dict[str, Any]:
        row = await self.read(db.load_directory, directory_id)
        if row is None:
            raise DirectoryError(404, "not_found", f"directory {directory_id} not found")
        return row

    # ------------------------------------------------------------------ synchronization
    def is_running(self, directory_id: int) -> bool:
        lock = self.locks.get(directory_id)
        return lock is not None and lock.locked()

    async def sync(self, directory_id: int, trigger: str = "manual", *, owner_id: int | None = None,
                   records: list[Any] | None = None, wait: bool = False) -> SyncReport:
        """Synchronize a directory (or, with ``records``, replace one owner's pushed contacts); return the report.

        A second sync of a directory while one runs answers 409, unless ``wait`` (the
        kernel's own syncs of the users directory): it then runs after the first.
        """
        await self.ready.wait()  # the initial load must not overwrite what this sync writes
        row = await self._row(directory_id)
        lock = self.locks.setdefault(directory_id, asyncio.Lock())
        if lock.locked() and not wait:
            raise DirectoryError(409, "sync_running", f"directory {row['name']} is already synchronizing; wait for it to finish")
        async with lock:
            if wait:
                row = await self._row(directory_id)
            report = SyncReport(directory_id, row["name"], trigger, user_id=owner_id)
            self._last_start[directory_id] = report.started_at
            report.id = await self.store.run(self._insert_sync, report)
            self._own_syncs.add(report.id)
            written = False
            try:
                if row["type"] == "draft":
                    raise DirectoryError(
                        409, "draft", f"directory {row['name']} is a draft: drafts never synchronize (guide 8.1); set its type to public or private"
                    )
                plan = await self.store.run(self.dialing_plans.get, row["domain_id"])
                owners: list[OwnerSync] = []
                try:
                    async with asyncio.timeout(self.sync_timeout):
                        if records is None:
                            await self._pull(row, report, plan, owners)
                        else:
                            owners.append(OwnerSync(self, row, owner_id, report.id, report, plan.canonical_keys))
                            await owners[-1].run(records)
                except BaseException:
                    # The source failed (or the write of new contacts): nothing it gave is published.
                    written = any(o.changed for o in owners)
                    await asyncio.shield(self.store.run(db.discard_pending, directory_id, report.id))
                    raise
                try:
                    for o in owners:
                        await o.finish()
                finally:
                    written = any(o.changed for o in owners)  # an unchanged re-sync writes nothing
                    await asyncio.shield(self.store.run(db.publish, directory_id, report.id))
                    report.created = sum(o.created for o in owners)
                    report.updated = sum(o.updated for o in owners)
                    report.deleted = sum(o.deleted for o in owners)
                    report.unchanged = sum(o.unchanged for o in owners)
                if report.status == "running":
                    report.status = "ok"
            except asyncio.CancelledError:
                report.status, report.error = "failed", "cancelled (server stopping)"
                raise
            except DirectoryError as exc:
                report.status, report.error = "failed", exc.detail
            except NotReady as exc:
                report.status, report.error = "failed", f"source not ready: {exc.reason}; previous contacts kept"
            except AuthFailed as exc:
                report.status, report.error = "failed", f"credentials refused: {exc or 'authentication failed'}; previous contacts kept"
            except TimeoutError:
                report.status, report.error = "failed", f"did not finish within {self.sync_timeout:g} s; previous contacts kept"
            except ConnectorError as exc:
                report.status, report.error = "failed", f"{exc}; previous contacts kept"
            except Exception as exc:
                log.exception("sync of directory %s failed", row["name"])
                report.status, report.error = "failed", f"{describe_exception(exc)}; previous contacts kept"
            finally:
                report.duration = round(time.time() - report.started_at, 3)
                if report.error:
                    report.error = hide_values(report.error, hidden_values(row.get("options")))
                try:
                    await asyncio.shield(self.store.run(self._finish_sync, report))
                except Exception:
                    log.exception("could not record the sync report of directory %s", row["name"])
            if written:
                # Also after a write that failed half-way: what is kept in memory must match the store.
                await self._load(row)
            if report.status != "failed" or (report.error or "").endswith(KEPT):
                self._note_outcome(row, report.status, report.error)
            level = logging.INFO if report.status == "ok" else logging.WARNING
            log.log(level, "directory %s sync (%s): %s, %d records, %d created, %d updated, %d deleted, %d ignored in %.2f s%s",
                    row["name"], trigger, report.status, report.records, report.created, report.updated, report.deleted,
                    report.ignored, report.duration or 0, f": {report.error}" if report.error else "")
            self.events.publish(Event("directory.synced", {k: v for k, v in report.as_json().items() if k != "problems"},
                                             row["company_id"], row["domain_id"]))
            return report

    async def _pull(self, row: dict[str, Any], report: SyncReport, plan: DialingPlan, owners: list[OwnerSync]) -> None:
        """Stream the connector's records into the store (``writer.OwnerSync``): the directory's, or each granted user's."""
        obj = self.connector(row)
        if "sync" not in obj.capabilities:
            raise DirectoryError(409, "not_syncable", f"directory {row['name']}: the {row['connector']} connector is not pulled "
                                 "(its contacts are edited by users or pushed by their clients)")
        assert report.id is not None
        try:
            await obj.setup()
            if row["type"] == "private":
                users = await self.read(db.granted_users, row["id"])
                for user in users:
                    owner = OwnerSync(self, row, user["id"], report.id, report, plan.canonical_keys)
                    try:
                        await owner.run(obj.records(user))
                    except (NotReady, AuthFailed, ConnectorError) as exc:
                        await self.store.run(db.discard_pending, row["id"], report.id, user["id"])
                        report.status = "partial"
                        report.problem(f"user:{user['login']}", f"{type(exc).__name__}: {exc}; this user's previous contacts kept")
                        continue
                    owners.append(owner)
            else:
                owners.append(OwnerSync(self, row, None, report.id, report, plan.canonical_keys))
                await owners[-1].run(obj.records())
        finally:
            try:
                await obj.close()
            except Exception:
                log.debug("close after sync of %s failed", row["name"], exc_info=True)

    @staticmethod
    def _insert_sync(conn: sa.Connection, report: SyncReport) -> int:
        return conn.execute(sa.insert(t.directory_syncs).values(
            directory_id=report.directory_id, user_id=report.user_id, trigger=report.trigger, status="running",
            started_at=dt.datetime.fromtimestamp(report.started_at, dt.UTC)).returning(t.directory_syncs.c.id)).scalar_one()

    @staticmethod
    def _finish_sync(conn: sa.Connection, report: SyncReport) -> None:
        conn.execute(sa.update(t.directory_syncs).where(t.directory_syncs.c.id == report.id).values(
            status=report.status, finished_at=db.now(), duration=report.duration, records=report.records, created=report.created,
            updated=report.updated, deleted=report.deleted, unchanged=report.unchanged, ignored=report.ignored,
            error=report.error, problems=report.problems or None))

    async def history(self, directory_id: int, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        def run(conn: sa.Connection) -> dict[str, Any]:
            s = t.directory_syncs
            total = conn.execute(sa.select(sa.func.count()).select_from(s).where(s.c.directory_id == directory_id)).scalar_one()
            rows = conn.execute(sa.select(s).where(s.c.directory_id == directory_id).order_by(s.c.id.desc()).limit(limit).offset(offset)).all()
            return {"items": [_sync_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}

        return await self.read(run)

    # ------------------------------------------------------------------ rights and keys
    async def visible_for_user(self, user_id: int) -> tuple[Any, list[int], set[int]]:
        def run(conn: sa.Connection) -> tuple[Any, list[int], set[int]]:
            user = db.user_row(conn, user_id)
            ids, private = db.user_directories(conn, user_id)
            return user, ids, private

        return await self.read(run)

    async def plan(self, domain_id: int) -> DialingPlan:
        plan = await self.store.run(self.dialing_plans.get, domain_id)
        self._plans[domain_id] = plan
        return plan

    def keys(self, domain_id: int, number: str, plan: DialingPlan | None = None) -> tuple[str, ...]:
        """Canonical keys of a number in a domain, cached (``canonical_keys`` is the slow part of a lookup)."""
        plan = plan or self._plans.get(domain_id) or DialingPlan.default()
        cached = self._keys.get(domain_id)
        if cached is None or cached[0] is not plan:
            cached = (plan, {})
            self._keys[domain_id] = cached
        memo = cached[1]
        found = memo.get(number)
        if found is None:
            if len(memo) >= 50_000:
                memo.clear()
            found = memo[number] = plan.canonical_keys(number)
        return found

    # ------------------------------------------------------------------ search and reverse lookup
    def views(self, directories: Iterable[int], owner_id: int | None, private: set[int] | frozenset[int]) -> list[View]:
        """The views (``index.View``) a reader has of these directories, by rank."""
        return self.index.visible(self.rows, directories, owner_id, private)

    async def search(self, user_id: int, q: str, offset: int = 0, limit: int = 20) -> dict[str, Any]:
        """Search the directories a user may see (guide 7.4.2), ranked by directory priority then name."""
        self._require_ready()
        user, ids, private = await self.visible_for_user(user_id)
        if user is None:
            raise DirectoryError(404, "not_found", f"user {user_id} not found")
        return await self._search(self.views(ids, user_id, private), q, offset, limit, user.domain_id)

    async def _search(self, views: list[View], q: str, offset: int, limit: int, domain_id: int) -> dict[str, Any]:
        q = q.strip()
        number = _numberish(q)
        if number:
            plan = await self.plan(domain_id)
            stream = searching.number_stream(list(self.keys(domain_id, q, plan)))
        else:
            terms = sorted(set(words(q)), key=len, reverse=True)
            if not terms:
                return {"items": [], "offset": offset, "limit": limit, "more": False, "query": q}
            stream = searching.text_stream(terms)

        def run(conn: sa.Connection) -> tuple[list[searching.Hit], bool, dict[int, list[tuple[View, int]]], dict[int, Any]]:
            hits, more = searching.page(conn, views, stream, offset, limit)
            groups = searching.groups(conn, hits, views)
            rows = db.contact_rows(conn, sorted({cid for group in groups.values() for _, cid in group}))
            return hits, more, groups, rows

        hits, more, groups, rows = await self.read(run)
        items = self._cards([cid for _, cid, _ in hits], groups, rows)
        return {"items": items, "offset": offset, "limit": limit, "more": more, "query": q, "match": "number" if number else "text"}

    async def search_domain(self, domain_id: int, q: str, offset: int = 0, limit: int = 20) -> dict[str, Any]:
        self._require_ready()
        ids = await self.read(db.domain_directories, domain_id)
        return await self._search(self.views(ids, None, set()), q, offset, limit, domain_id)

    async def reverse(
        self, number: str, *, user_id: int | None = None, domain_id: int | None = None, redlisted: bool = False
    ) -> dict[str, Any] | None:
        """The highest-priority contact with this number, through the domain's canonical keys.

        Red-listed numbers are matched only when ``redlisted`` is set (call enrichment):
        an API caller typing a number must not learn whom a hidden number belongs to.
        """
        self._require_ready()
        if user_id is not None:
            user, ids, private = await self.visible_for_user(user_id)
            if user is None:
                raise DirectoryError(404, "not_found", f"user {user_id} not found")
            domain_id = user.domain_id
            views = self.views(ids, user_id, private)
        else:
            assert domain_id is not None
            views = self.views(await self.read(db.domain_directories, domain_id), None, set())
        plan = await self.plan(domain_id)
        keys = self.keys(domain_id, number, plan)

        def run(conn: sa.Connection) -> tuple[Any, dict[int, list[tuple[View, int]]], dict[int, Any]]:
            hit = index_reverse(conn, views, keys, redlisted)
            if hit is None:
                return None, {}, {}
            groups = searching.groups(conn, [(hit.view, hit.contact_id, hit.email_key)], views)
            rows = db.contact_rows(conn, sorted({cid for group in groups.values() for _, cid in group}))
            return hit, groups, rows

        hit, groups, rows = await self.read(run)
        if hit is None:
            return None
        cards = self._cards([hit.contact_id], groups, rows)
        return {"number": number, "keys": list(keys), "number_type": hit.number_type, "contact": cards[0] if cards else None}

    def reverse_now(self, number: str, domain_id: int, user_id: int | None) -> dict[str, Any] | None:
        """Reverse lookup for the telephony service: the identity of a caller or callee.

        Uses the visibility computed in the background (refreshed on admin changes), matches
        red-listed numbers (guide 8.2.4: the name is shown, never the number) and answers
        contact id, directory, name, company, VIP, number type.  Recent answers come from
        ``reverse_cache`` (no I/O); a miss is one indexed query on the store, run in the
        caller's thread (a read transaction never waits for writers).
        """
        if not self.ready.is_set() or not number:
            return None
        cache_key = (domain_id, user_id, number)
        cached, found = self.reverse_cache.get(cache_key)
        if cached:
            return typing.cast("dict[str, Any] | None", found)
        if user_id is not None:
            ids, private = self._users_vis.get(user_id, ((), frozenset()))
        else:
            ids, private = self._domains_vis.get(domain_id, ()), frozenset()
        views = self.views(ids, user_id, private)
        result = None
        if views:
            keys = self.keys(domain_id, number)
            with self.store.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn, conn.begin():
                hit = index_reverse(conn, views, keys, True)
            if hit is not None:
                label = {"last_name": hit.last_name, "first_name": hit.first_name, "company": hit.company}
                result = {
                    "contact_id": hit.contact_id, "directory_id": hit.view.directory_id, "directory": hit.view.name,
                    "name": display_name(label), "company": hit.company, "vip": hit.vip or None, "number_type": hit.number_type,
                }
        self.reverse_cache.put(cache_key, result)
        return result

    def enrich_call(self, domain_id: int, user_id: int | None, device: str, data: dict[str, Any], change_type: str) -> None:
        """Add ``remote_name`` and ``contact`` to a call event's data; the lookup runs once per call and device."""
        call = data.get("call")
        if not isinstance(call, dict):
            return
        key = (domain_id, device, str(call.get("call_id")))
        if key in self._calls:
            found = self._calls[key]
        elif call.get("remote"):
            if len(self._calls) > 100_000:
                self._calls.clear()
            try:
                found = self._calls[key] = self.reverse_now(str(call["remote"]), domain_id, user_id)
            except Exception:  # a lookup problem never stops call events
                log.exception("reverse lookup of %s failed", call.get("remote"))
                found = self._calls[key] = None
        else:
            return
        if change_type == "call.cleared":
            self._calls.pop(key, None)
        data["call"] = {**call, "remote_name": found["name"] if found else None, "contact": found}

    # ------------------------------------------------------------------ contact cards
    def _cards(self, hits: list[int], groups: dict[int, list[tuple[View, int]]], rows: dict[int, Any]) -> list[dict[str, Any]]:
        """Contact cards of hits (contact ids), each merged with its e-mail group across merge directories (guide 8.2.2)."""
        out = []
        for cid in hits:
            group = [rows[other] for _, other in groups.get(cid, [(None, cid)]) if other in rows]
            if group:
                out.append(self.card(group[0], group[1:]))
        return out

    def card(self, row: Any, merged: Sequence[Any] = ()) -> dict[str, Any]:
        """One contact card: fields, custom fields with their labels, numbers without red-listed ones (guide 8.2.4)."""
        directory = self.rows.get(row.directory_id) or {"name": "?", "labels": {}, "fields": {}, "connector": ""}
        mapping = self.mapping(directory) if directory.get("id") else Mapping({})
        fields = dict(row.data.get("fields", {}))
        numbers = [{"type": n["type"], "number": n["number"]} for n in row.data.get("numbers", []) if not n.get("redlisted")]
        sources = [{"contact_id": row.id, "directory_id": row.directory_id, "directory": directory["name"]}]
        for other in merged:
            other_dir = self.rows.get(other.directory_id) or {"name": "?"}
            for k, v in other.data.get("fields", {}).items():
                if k not in fields and not k.startswith("private"):
                    fields[k] = v
            seen = {n["number"] for n in numbers}
            numbers += [{"type": n["type"], "number": n["number"]} for n in other.data.get("numbers", [])
                        if not n.get("redlisted") and n["number"] not in seen]
            sources.append({"contact_id": other.id, "directory_id": other.directory_id, "directory": other_dir["name"]})
        labels = mapping.labels
        card: dict[str, Any] = {"id": row.id, "directory_id": row.directory_id, "directory": directory["name"],
                                "name": display_name(fields)}
        for name in TEXT_FIELDS:
            if fields.get(name):
                card[name] = fields[name]
        card["numbers"] = numbers
        card["custom"] = [{"field": p, "label": labels.get(p, p.capitalize()), "value": fields[p]} for p in PRIVATE_FIELDS
                          if fields.get(p) and p != mapping.vip_field]
        card["vip"] = row.vip or None
        card["hidden_in_caller"] = mapping.hidden
        card["address_fields"] = mapping.address
        if row.owner_id is not None:
            card["owner_id"] = row.owner_id
        if len(sources) > 1:
            card["merged"] = sources
        return card

    async def contact(self, user_id: int, contact_id: int) -> dict[str, Any]:
        """A contact card, when the user may see the contact's directory (404 otherwise)."""
        self._require_ready()
        user, ids, private = await self.visible_for_user(user_id)
        views = self.views(ids, user_id, private)

        def run(conn: sa.Connection) -> tuple[Any, dict[int, list[tuple[View, int]]], dict[int, Any]]:
            row = db.contact_rows(conn, [contact_id]).get(contact_id)
            if row is None:
                return None, {}, {}
            view = next((v for v in views if v.directory_id == row.directory_id), None)
            if view is None or not view.merge or not row.email_key:
                return row, {}, {contact_id: row}
            groups = searching.groups(conn, [(view, contact_id, row.email_key)], views)
            return row, groups, db.contact_rows(conn, sorted({cid for group in groups.values() for _, cid in group}))

        row, groups, rows = await self.read(run)
        if user is None or row is None or row.directory_id not in ids or (row.directory_id in private and row.owner_id != user_id):
            raise DirectoryError(404, "not_found", f"contact {contact_id} not found")
        if groups:
            return self._cards([contact_id], groups, rows)[0]
        return self.card(row)

KEPT = "previous contacts kept"
"""How the error of a sync that failed while reading its source ends (``DirectoryService.sync``)."""


def sync_state(status: str, error: str | None) -> tuple[InstanceState, str | None]:
    """A directory's state after a sync of this status and error (also read back from ``directory_syncs``).

    Only a failure to read the source counts (its error ends with ``KEPT``): not ready or
    too slow is ``retrying``, refused credentials ``auth_failed``, anything else
    ``setup_error``.  A sync the kernel refused (a draft, a stopping server) changes nothing.
    """
    if status != "failed" or not error or not error.endswith(KEPT):
        return InstanceState.READY, None
    if error.startswith(("source not ready:", "did not finish within")):
        return InstanceState.RETRYING, error
    if error.startswith("credentials refused:"):
        return InstanceState.AUTH_FAILED, error
    return InstanceState.SETUP_ERROR, error


def _names_and_outcomes(conn: sa.Connection, directory_id: int | None) -> tuple[dict[int, str], dict[int, tuple[str, str | None]]]:
    """Company names by id, and the (status, error) of the last finished sync of every directory (or of one)."""
    names = {r.id: r.name for r in conn.execute(sa.select(t.companies.c.id, t.companies.c.name))}
    s = t.directory_syncs
    last = sa.select(sa.func.max(s.c.id).label("id")).where(s.c.status != "running")
    if directory_id is not None:
        last = last.where(s.c.directory_id == directory_id)
    sub = last.group_by(s.c.directory_id).subquery()
    rows = conn.execute(sa.select(s.c.directory_id, s.c.status, s.c.error).join(sub, sub.c.id == s.c.id))
    return names, {r.directory_id: (r.status, r.error) for r in rows}


def config_directory_states(conn: sa.Connection, specs: list[Any]) -> dict[str, tuple[InstanceState, str | None]]:
    """The state of the last sync of each ``[directories.<name>]`` table found in the store, by table name (``twp plugins list``)."""
    out: dict[str, tuple[InstanceState, str | None]] = {}
    _, outcomes = _names_and_outcomes(conn, None)
    for spec in specs:
        name = (spec.settings or {}).get("name") or spec.name
        sel = (sa.select(t.directories.c.id).join(t.domains, t.domains.c.id == t.directories.c.domain_id)
               .join(t.companies, t.companies.c.id == t.domains.c.company_id)
               .where(t.directories.c.name == name, t.directories.c.config_managed.is_(True), t.domains.c.name == spec.domain))
        if spec.company:
            sel = sel.where(t.companies.c.name == spec.company)
        ids = conn.execute(sel.limit(2)).scalars().all()
        if len(ids) == 1 and ids[0] in outcomes:
            out[spec.name] = sync_state(*outcomes[ids[0]])
    return out


def _numberish(q: str) -> bool:
    digits = sum(c.isdigit() for c in q)
    return digits >= 3 and all(c in NUMBERISH for c in q) and "+" not in q[1:]


def _sync_json(r: Any) -> dict[str, Any]:
    started = r.started_at.replace(tzinfo=r.started_at.tzinfo or dt.UTC)
    finished = r.finished_at.replace(tzinfo=r.finished_at.tzinfo or dt.UTC) if r.finished_at else None
    problems = r.problems or []
    return {"id": r.id, "directory_id": r.directory_id, "user_id": r.user_id, "trigger": r.trigger, "status": r.status,
            "started_at": started.isoformat(), "finished_at": finished.isoformat() if finished else None, "duration": r.duration,
            "records": r.records, "created": r.created, "updated": r.updated, "deleted": r.deleted, "unchanged": r.unchanged,
            "ignored": r.ignored, "problems": problems, "problems_truncated": max(0, r.ignored - len(problems)), "error": r.error}


__all__ = ["ALL_FIELDS", "NUMBER_FIELDS", "DirectoryError", "DirectoryRef", "DirectoryService", "SyncReport"]
