"""Configured plugin instances: checking their config, starting them, retrying, reporting state.

Every ``[pbx.links.*]``, ``[directories.*]``, ``[sms.providers.*]`` table and every
installed auth method becomes an ``Instance`` with a visible state.  Directories are checked
here but started by the directory service, which also adds an instance for each directory
created through the API and keeps every directory's state (``DirectoryService.instance``):

- ``disabled``: ``enabled = false`` in config;
- ``not_installed``: no loaded plugin provides the type it names;
- ``config_error``: its options do not fit the type's ``Config`` class, or (PBX links) its
  ``company`` / ``domain`` names no company or domain of the store: the link is held back
  and starts once an administrator creates them;
- ``configured``: checked, not started (what ``twp plugins list`` shows offline);
- ``starting``, ``ready``;
- ``retrying``: ``setup`` raised ``NotReady``; ``next_attempt`` says when it is tried again;
- ``auth_failed``: the remote system refused the credentials (not retried);
- ``setup_error``: ``setup`` raised anything else (not retried).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.config import InstanceSpec
from twpcore.events import EventBus
from twpcore.kinds import AuthFailed, InstanceContext, Kind, NotReady, PluginType
from twpcore.kinds import InstanceState as InstanceState  # defined with the kinds: the plugin API names it
from twpcore.plugins import PluginManager, TypeRecord, describe_exception
from twpcore.schema import ConfigErrors, structure
from twpcore.store import Store
from twpcore.store import schema as t

log = logging.getLogger(__name__)
UNRESOLVED = -1
"""``InstanceManager.owners``: the instance names a company or domain that matches no single company."""
ContextFactory = Callable[[str, Kind, logging.Logger], InstanceContext]
"""Builds the ``InstanceContext`` an instance receives: (instance name, kind, logger) -> context (``Kernel.instance_context``)."""


TYPE_KEY = {Kind.PBX_DRIVER: "driver", Kind.DIRECTORY_CONNECTOR: "connector", Kind.SMS_PROVIDER: "provider", Kind.AUTH_METHOD: "method"}


@attrs.define(eq=False)
class Instance:
    spec: InstanceSpec
    state: InstanceState = attrs.field(default=InstanceState.STARTING, converter=InstanceState)
    reason: str | None = None
    type: TypeRecord | None = None
    obj: PluginType | None = None
    attempts: int = 0
    next_attempt: float | None = None
    since: float = attrs.field(factory=time.time)
    task: asyncio.Task[None] | None = attrs.field(default=None, repr=False)

    def set(self, state: InstanceState | str, reason: str | None = None) -> None:
        state = InstanceState(state)
        if state != self.state or reason != self.reason:
            level = (
                logging.INFO
                if state in (InstanceState.READY, InstanceState.DISABLED, InstanceState.STARTING, InstanceState.CONFIGURED)
                else logging.WARNING
            )
            log.log(level, "%s %s: %s%s", self.spec.kind.label, self.spec.name, state.value, f" ({reason})" if reason else "")
        self.state, self.reason, self.since = state, reason, time.time()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.spec.kind.value,
            "name": self.spec.name,
            "type": self.spec.type_name,
            "config": self.spec.path,
            "plugin": self.type.plugin if self.type else None,
            "state": self.state.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "capabilities": sorted(self.type.cls.capabilities) if self.type else [],
        }


def check_spec(spec: InstanceSpec, types: dict[Kind, dict[str, TypeRecord]], source: str) -> tuple[TypeRecord | None, Any, InstanceState, str | None]:
    """Resolve an instance's type and check its options; return (type, config, state, reason)."""
    if not spec.enabled:
        return None, None, InstanceState.DISABLED, "enabled = false in config"
    rec = types[spec.kind].get(spec.type_name)
    if rec is None:
        known = ", ".join(sorted(types[spec.kind])) or "none"
        return None, None, InstanceState.NOT_INSTALLED, (
            f'{source}: {spec.path}.{TYPE_KEY[spec.kind]}: no loaded plugin provides the {spec.kind.label} "{spec.type_name}"; '
            f"install the package that provides it, or use one of: {known}")
    try:
        cfg = structure(rec.cls.Config, spec.options, source=source, path=spec.path)
    except ConfigErrors as exc:
        return rec, None, InstanceState.CONFIG_ERROR, str(exc)
    return rec, cfg, InstanceState.CONFIGURED, None


class InstanceManager:
    """Starts every configured instance and keeps retrying the ones that are not ready."""

    def __init__(self, plugins: PluginManager, events: EventBus, contexts: ContextFactory, source: str):
        self.plugins = plugins
        """Registered types (``types``), and ``fail`` for a plugin whose instance crashes in its constructor or setup."""
        self.events = events
        """Admin events about companies and domains release held-back PBX links."""
        self.contexts = contexts
        self.source = source
        """The config file the instances come from, for error texts."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): companies and domains that PBX links name are checked in it."""
        self.instances: dict[tuple[Kind, str], Instance] = {}
        self.max_backoff = 300.0
        self.held: set[tuple[Kind, str]] = set()
        """PBX links not started because their company or domain does not exist (yet)."""
        self._watcher: asyncio.Task[None] | None = None

    def load(self, specs: list[InstanceSpec]) -> None:
        for spec in specs:
            inst = Instance(spec)
            inst.type, config, state, reason = check_spec(spec, self.plugins.types, self.source)
            inst.set(state, reason)
            # A directory's one owner is the directory service (``twpcore.directory``): it builds the
            # connector for each sync and sets this instance's state from the outcome.
            if state == InstanceState.CONFIGURED and spec.kind != Kind.DIRECTORY_CONNECTOR:
                assert inst.type is not None
                ctx = self.contexts(spec.name, spec.kind, logging.getLogger(f"twp.{spec.kind.value}.{spec.name}"))
                try:
                    inst.obj = inst.type.cls(config, ctx)
                except Exception as exc:  # noqa: BLE001 - a plugin's constructor may raise anything; the instance shows it
                    inst.set(InstanceState.SETUP_ERROR, describe_exception(exc))
                    self.plugins.fail(inst.type.plugin, f"setup of {spec.path}", exc)
            self.instances[(spec.kind, spec.name)] = inst

    async def start_all(self) -> None:
        """Start every configured instance; with a store, PBX links whose company or domain is missing are held back first."""
        if self.store is not None:
            await self.store.read(self.check_owners)
            if self._watcher is None:
                self._watcher = asyncio.get_running_loop().create_task(self._watch_owners(), name="instances-owners")
        await self._start_configured()

    async def _start_configured(self) -> None:
        pending = [i for i in self.instances.values() if i.state == InstanceState.CONFIGURED and i.obj is not None]
        for inst in pending:
            inst.set(InstanceState.STARTING)
        await asyncio.gather(*(self._setup(i) for i in pending))

    def check_owners(self, conn: sa.Connection) -> None:
        """Hold back the PBX links whose company or domain is not in the store (``config_error``); release the others."""
        source = self.source
        for key, inst in self.instances.items():
            if key[0] != Kind.PBX_DRIVER or (inst.state != InstanceState.CONFIGURED and key not in self.held):
                continue
            problem = owner_problem(conn, inst.spec, source)
            if problem is not None:
                self.held.add(key)
                inst.set(InstanceState.CONFIG_ERROR, f"{problem}; the link starts as soon as it exists")
            elif key in self.held:
                self.held.discard(key)
                inst.set(InstanceState.CONFIGURED)

    async def _watch_owners(self) -> None:
        """Start a held-back PBX link once an administrator creates (or renames) its company or domain."""
        assert self.store is not None  # started by start_all once the store is there
        store = self.store
        sub = self.events.subscribe(lambda e: e.type.startswith(("admin.company.", "admin.domain.")), name="instances")
        try:
            while True:
                await sub.get()
                if not self.held:
                    continue
                try:
                    await store.read(self.check_owners)
                    await self._start_configured()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep watching whatever one check did
                    log.exception("checking the companies and domains of held-back PBX links failed")
        finally:
            self.events.unsubscribe(sub)

    async def _setup(self, inst: Instance) -> None:
        assert inst.obj is not None
        inst.attempts += 1
        try:
            await inst.obj.setup()
        except NotReady as exc:
            delay = exc.retry_after if exc.retry_after is not None else min(self.max_backoff, 2.0 ** min(inst.attempts, 9))
            delay *= random.uniform(0.8, 1.2)
            inst.next_attempt = time.time() + delay
            inst.set(InstanceState.RETRYING, exc.reason)
            inst.task = asyncio.get_running_loop().create_task(self._retry_later(inst, delay))
            return
        except AuthFailed as exc:
            inst.set(InstanceState.AUTH_FAILED, str(exc) or "credentials refused")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's setup may raise anything; the instance shows it
            inst.set(InstanceState.SETUP_ERROR, describe_exception(exc))
            self.plugins.fail(inst.type.plugin if inst.type else "?", f"setup of {inst.spec.path}", exc)
            return
        inst.next_attempt = None
        inst.set(InstanceState.READY)

    async def _retry_later(self, inst: Instance, delay: float) -> None:
        await asyncio.sleep(delay)
        if inst.obj is not None:
            try:
                await inst.obj.close()
            except Exception:
                log.debug("close before retry of %s failed", inst.spec.path, exc_info=True)
        inst.set(InstanceState.STARTING)
        await self._setup(inst)

    async def close_all(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for inst in self.instances.values():
            if inst.task and not inst.task.done():
                inst.task.cancel()
        for inst in self.instances.values():
            if inst.obj is not None and inst.state in (InstanceState.READY, InstanceState.RETRYING, InstanceState.STARTING):
                try:
                    await asyncio.wait_for(inst.obj.close(), 10)
                except Exception as exc:  # noqa: BLE001 - one instance failing to close must not stop the others
                    log.warning("closing %s failed: %s", inst.spec.path, describe_exception(exc))

    def ready(self, kind: Kind) -> dict[str, PluginType]:
        return {name: i.obj for (k, name), i in self.instances.items() if k == kind and i.state == InstanceState.READY and i.obj is not None}

    def as_json(self) -> list[dict[str, Any]]:
        return [i.as_json() for i in self.instances.values()]

    def owners(self, conn: sa.Connection) -> dict[tuple[Kind, str], int | None]:
        """The company each instance serves, read from its ``company`` and ``domain`` names.

        ``None`` for a server-wide instance (neither is set: auth methods, shared SMS
        providers), ``UNRESOLVED`` when the names match no company or several.
        """
        out: dict[tuple[Kind, str], int | None] = {}
        for key, inst in self.instances.items():
            company, domain = inst.spec.company, inst.spec.domain
            if company is None and domain is None:
                out[key] = None
                continue
            if domain is None:
                sel = sa.select(t.companies.c.id).where(t.companies.c.name == company)
            else:
                sel = (
                    sa.select(t.domains.c.company_id).join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.name == domain)
                )
                if company is not None:
                    sel = sel.where(t.companies.c.name == company)
            ids = set(conn.execute(sel.limit(2)).scalars())
            out[key] = ids.pop() if len(ids) == 1 else UNRESOLVED
        return out


def owner_problem(conn: sa.Connection, spec: InstanceSpec, source: str) -> str | None:
    """What is wrong with an instance's ``company`` / ``domain`` names in the store, or None when they name one domain.

    Neither set: None (the instance is server-wide, or says elsewhere that it lacks them).
    """
    company, domain = spec.company, spec.domain
    if company is None and domain is None:
        return None
    if company is not None:
        found = conn.execute(sa.select(t.companies.c.id).where(t.companies.c.name == company)).first()
        if found is None:
            known = conn.execute(sa.select(t.companies.c.name).order_by(t.companies.c.name).limit(6)).scalars().all()
            return (f'{source}: {spec.path}.company: no company is named "{company}" in the store; create it (guide 3.1) or fix the name'
                    + (f"; companies: {', '.join(known[:5])}{', …' if len(known) > 5 else ''}" if known else "; the store has no company yet"))
    if domain is None:
        return None
    sel = sa.select(t.domains.c.id).join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.name == domain)
    if company is not None:
        sel = sel.where(t.companies.c.name == company)
    ids = conn.execute(sel.limit(2)).scalars().all()
    if len(ids) == 1:
        return None
    where = f' of company "{company}"' if company is not None else ""
    if ids:
        return f'{source}: {spec.path}.domain: the domain "{domain}" exists in several companies; add company = "…" to say which'
    return f'{source}: {spec.path}.domain: no domain is named "{domain}"{where} in the store; create it (guide 3.1) or fix the name'
