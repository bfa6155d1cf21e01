"""The kernel: ties config, plugins, store, parameters, instances and events together.

``Kernel.build(config)`` loads plugins and checks the config without touching the
network; ``await kernel.start()`` opens and migrates the store and starts instances.
The HTTP layer (``twpcore.http``) sits above the kernel and is never imported by it: the
composition root, ``twpcore.server``, builds the kernel and then the application over it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.alerter import AlerterService
from twpcore.auth import PasswordChecks
from twpcore.calendars import CalendarSync
from twpcore.cluster.node import ClusterNode
from twpcore.config import Config, InstanceSpec
from twpcore.dialing import DialingPlans
from twpcore.directory.service import DirectoryService
from twpcore.events import EventBus, run_observers, subscribe_observers
from twpcore.instances import InstanceManager
from twpcore.kinds import InstanceContext, Kind
from twpcore.mail import MailNotifier
from twpcore.parameters import ParameterDefinition, ParameterRegistry
from twpcore.plugin_context import PLUGIN_CONTEXT, PluginContext
from twpcore.plugins import Hooks, PluginManager, PluginState, RegistrationError
from twpcore.presence.service import PresenceService
from twpcore.reception.service import ReceptionService
from twpcore.routing import Route, check_plugin_route
from twpcore.rules.service import RulesService
from twpcore.schema import ConfigErrors, structure
from twpcore.sms import SmsService
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.teamwork import TeamworkService
from twpcore.telephony.service import TelephonyService
from twpcore.user_imports import UserImportService

log = logging.getLogger(__name__)
NONE_AUTH_WARNING = "The None auth method (log in with a user name only) is enabled for: "


class Kernel:
    """Everything a running TWP server holds.  Passed explicitly; there are no globals."""

    def __init__(self, config: Config, plugins: PluginManager):
        self.config = config
        self.plugins = plugins
        self.parameters = ParameterRegistry()
        self.events = EventBus()
        self.dialing_plans = DialingPlans()
        # The services, each given what it uses (tests/test_architecture.py: no service takes the kernel).
        # The store is opened by ``start``, which hands it to each of them.
        self.instances = InstanceManager(plugins, self.events, self.instance_context, config.source)
        self.directories = DirectoryService(config, plugins, self.instances, self.events, self.parameters, self.dialing_plans, self.instance_context)
        self.telephony = TelephonyService(config.limits, self.instances, self.events, self.parameters, self.dialing_plans, self.directories)
        self.user_imports = UserImportService(config.limits, plugins, self.instance_context, self.dialing_plans, self.events, self.telephony)
        self.sms = SmsService(config, self.instances, self.parameters, self.dialing_plans, self.events, self.directories)
        self.calendars = CalendarSync(self.directories)  # calendar connectors fill calendar_events (issue 18)
        self.mail = MailNotifier(config, self.parameters, self.events)
        self.presence = PresenceService(self.events, self.parameters, self.telephony, lambda: self.store)  # TWP presence (issue 18)
        self.telephony.rules = self.rules = RulesService(self.telephony, self.presence, self.parameters, self.dialing_plans, lambda: self.store)
        self.reception = ReceptionService(self.telephony, self.events, self.parameters, self.directories)
        self.teamwork = TeamworkService(self.parameters, self.events, self.dialing_plans)
        self.alerter = AlerterService(self.parameters, self.events, self.directories)
        self.cluster = ClusterNode(config.cluster, self.events, self.instances, self.telephony, config.http.public_url,
                                   dialing_plans=self.dialing_plans, directories=self.directories) if config.cluster.redis else None
        if self.cluster is not None:  # jobs run on one node at a time: directory syncs, users imports, retention, the SMS outbox
            self.directories.jobs = self.user_imports.jobs = self.sms.jobs = self.telephony.call_logs.jobs = self.cluster
        self.contexts: dict[str, PluginContext] = {}
        self.hooks = Hooks(plugins, self.plugin_context)
        self.password_checks = PasswordChecks.from_config(config.auth)
        """Bounds the password checks of every login door (``twpcore.auth.PasswordChecks``)."""
        self.routes: list[Route] = []
        """The routes plugins registered, checked (``twp_register_routes``); the HTTP layer serves them."""
        self.reserved_routes: frozenset[tuple[str, str]] = frozenset()
        """The (method, path) pairs the HTTP layer serves itself (``Kernel.build(reserved_routes=...)``)."""
        self.plugin_options: dict[str, Any] = {}
        """Each plugin's checked ``[plugins.<name>]`` options (``twp_register_options``); absent when they had problems."""
        self.option_problems: list[str] = []
        self.option_errors: dict[str, ConfigErrors] = {}
        """The plugins whose ``[plugins.<name>]`` table has problems: they do not start (``startup_error``)."""
        self.store: Store | None = None
        self.started_at: float | None = None
        self.ready = False
        self.warnings: list[str] = []
        self._none_auth: list[tuple[str, int | None]] = []
        """Where ``AuthMethods`` contains None: (``scope id``, company id or None for the server-wide default)."""
        self._tasks: list[asyncio.Task] = []

    # -- building ----------------------------------------------------------------
    @classmethod
    def build(cls, config: Config, *, extra_plugins: Iterable[tuple[str, Any]] = (), allowlist: Iterable[str] | None = None,
              reserved_routes: Collection[tuple[str, str]] = ()) -> Kernel:
        """Load plugins, collect what they register and check every instance's config.

        ``reserved_routes`` are the (method, path) pairs the HTTP layer serves itself: a plugin
        route on one of them is refused.  The composition root (``twpcore.server.build_kernel``)
        passes them, so the kernel never imports the HTTP layer.
        """
        pm = PluginManager(disabled=config.disabled_plugins, allowlist=allowlist)
        pm.load()
        for name, obj in extra_plugins:
            pm.register_plugin(obj, name)
        kernel = cls(config, pm)
        kernel.reserved_routes = frozenset(reserved_routes)
        kernel.hooks.register_types()
        parameters = kernel.hooks.register_parameters(_check_parameter)
        routes = kernel.hooks.register_routes(_check_route)
        options = kernel.hooks.register_options(_check_options)
        # Only now, when every registration hook has run: a plugin that failed in any of
        # them keeps nothing it registered (its types were dropped when it failed).
        kernel._add_options(options)
        kernel._add_parameters(parameters)
        kernel._add_routes(routes)
        kernel.instances.load(kernel.instance_specs())
        return kernel

    def plugin_context(self, plugin: str) -> PluginContext:
        """The one ``PluginContext`` of ``plugin`` for this kernel: what its hooks and routes receive."""
        context = self.contexts.get(plugin)
        if context is None:
            context = self.contexts[plugin] = PluginContext(plugin, logging.getLogger(f"twp.plugin.{plugin}"), kernel=self)
        return context

    def instance_context(self, name: str, kind: Kind, logger: logging.Logger) -> InstanceContext:
        """The context an instance (or a users-import's connector) receives: the plugin API's view of this kernel."""
        return InstanceContext(name, kind, self, logger)

    def instance_specs(self) -> list[InstanceSpec]:
        specs = list(self.config.instances)
        auth_types = self.plugins.types[Kind.AUTH_METHOD]
        for name in sorted(set(auth_types) | set(self.config.auth.methods)):
            specs.append(InstanceSpec(Kind.AUTH_METHOD, name, name, f"auth.methods.{name}", options=self.config.auth.methods.get(name, {})))
        return specs

    def _add_parameters(self, registered: list[tuple[str, ParameterDefinition]]) -> None:
        owners: dict[str, str] = {}
        for plugin, definition in registered:
            if not self.plugins.active(plugin):
                continue
            if definition.name in owners and self.parameters.definitions[definition.name] != definition:
                self.plugins.fail(plugin, "twp_register_parameters", RegistrationError(
                    f"parameter {definition.name} is already defined by plugin {owners[definition.name]}; rename yours"))
                continue
            self.parameters.add(definition)
            owners.setdefault(definition.name, plugin)
        if "AuthMethods" in self.parameters.definitions:
            d = self.parameters.definitions["AuthMethods"]
            self.parameters.definitions["AuthMethods"] = attrs.evolve(d, choices=tuple(sorted(self.plugins.types[Kind.AUTH_METHOD])))

    def _add_options(self, registered: list[tuple[str, Any]]) -> None:
        """Check every ``[plugins.<name>]`` table against what its plugin declared (``twp_register_options``)."""
        source = self.config.source
        declared: dict[str, Any] = {}
        for plugin, spec in registered:
            if not self.plugins.active(plugin):
                continue
            if plugin in declared:
                self.plugins.fail(plugin, "twp_register_options", RegistrationError(
                    "register() was called more than once; a plugin has one [plugins.<name>] table: register one class or reader"),
                    state=PluginState.REGISTER_ERROR)
                declared.pop(plugin)
                continue
            declared[plugin] = spec
        for plugin, spec in declared.items():
            if not self.plugins.active(plugin):
                continue
            table = self.config.plugin_options.get(plugin)
            try:
                if attrs.has(spec):
                    self.plugin_options[plugin] = structure(spec, table or {}, source=source, path=f"plugins.{plugin}")
                else:
                    self.plugin_options[plugin] = spec(source, table)
            except ConfigErrors as exc:
                self.option_problems.extend(str(p) for p in exc.problems)
                self.option_errors[plugin] = exc
            except Exception as exc:  # noqa: BLE001 - a broken reader is the plugin's fault, not the admin's
                self.plugins.fail(plugin, "twp_register_options", exc, state=PluginState.REGISTER_ERROR)
        for name in self.config.plugin_options:
            if name in declared or name in self.config.disabled_plugins:
                continue
            record = self.plugins.records.get(name)
            if record is None:
                with_options = ", ".join(sorted(declared)) or "none"
                self.option_problems.append(
                    f"{source}: plugins.{name}: no installed plugin is named {name!r} (plugins with options: {with_options}); "
                    "fix the name, install the plugin, or remove the table")
            elif self.plugins.active(name):
                self.option_problems.append(f"{source}: plugins.{name}: plugin {name} takes no options; remove the table")

    def _add_routes(self, registered: list[tuple[str, Any]]) -> None:
        taken: dict[tuple[str, str], str | None] = dict.fromkeys(self.reserved_routes)
        for plugin, route in registered:
            if not self.plugins.active(plugin):
                continue
            key = (route.method, route.path)
            if key in taken:
                owner = taken[key]
                self.plugins.fail(plugin, "twp_register_routes", RegistrationError(
                    f"route {route.method} {route.path} is already served by {'the kernel' if owner is None else 'plugin ' + owner}; "
                    "choose another path (plugin routes belong under /api/v1/<plugin-name>/)"))
                continue
            taken[key] = plugin
            self.routes.append(attrs.evolve(route, handler=_with_context(route.handler, self.plugin_context(plugin))))

    def config_problems(self) -> list[str]:
        """Every instance problem found by ``build`` (unknown types, bad options), and bad ``[plugins.<name>]`` tables."""
        return [i.reason or "" for i in self.instances.instances.values() if i.state in ("config_error", "not_installed")] + self.option_problems

    # -- running -----------------------------------------------------------------
    def attach_store(self, store: Store) -> None:
        """Hand ``store`` to the kernel and its services: ``start`` does, and so do CLI commands that start no server."""
        self.store = store
        self.instances.store = self.directories.store = store
        self.telephony.store = self.telephony.call_logs.store = store
        self.user_imports.store = store
        self.sms.store = store
        self.mail.store = store
        self.teamwork.store = self.alerter.store = store

    async def start(self, *, store: Store | None = None) -> None:
        t0 = time.perf_counter()
        self.attach_store(store or Store(self.config.storage.url))
        assert self.store is not None
        await asyncio.get_running_loop().run_in_executor(self.store.executor, self.store.upgrade)
        if self.config.demo.seed:
            from twpcore.demo import seed_if_empty

            await self.store.run(seed_if_empty)
        await self.refresh_warnings()
        # Subscribe before instances start so their first events are kept, but deliver
        # only once every plugin's twp_startup has run: no observer sees an event first.
        observers = subscribe_observers(self.events)
        self.telephony.bind_drivers()
        self.sms.bind_providers()
        await self.telephony.start()
        if self.cluster is not None:
            await self.cluster.start()  # PBX links start only on the node holding their lease
        await self.instances.start_all()
        await self.directories.start()
        await self.calendars.start()
        await self.user_imports.start()
        await self.sms.start()
        await self.mail.start()
        await self.presence.start()
        await self.reception.start()
        await self.teamwork.start()
        await self.alerter.start()
        for plugin, problems in self.option_errors.items():
            self.plugins.fail(plugin, "twp_startup", problems, state=PluginState.STARTUP_ERROR)  # bad options: it does not start
        await self.hooks.startup()
        self._tasks.append(asyncio.get_running_loop().create_task(run_observers(observers, self.events, self.hooks)))
        self.started_at = time.time()
        self.ready = True
        log.info(
            "TWP kernel ready in %.2f s (%d plugins, %d instances)",
            time.perf_counter() - t0,
            len(self.plugins.records),
            len(self.instances.instances),
        )

    async def refresh_warnings(self) -> None:
        assert self.store is not None

        def uses_none(conn: sa.Connection) -> list[tuple[str, int | None]]:
            pv = t.parameter_values
            rows = conn.execute(sa.select(pv.c.scope, pv.c.scope_id, pv.c.value, pv.c.company_id).where(pv.c.name == "AuthMethods")).all()
            return [(f"{r.scope} {r.scope_id}", r.company_id) for r in rows if "None" in r.value.split("|")]

        self._none_auth = await self.store.run(uses_none)
        self.warnings = [w for w in self.warnings if not w.startswith(NONE_AUTH_WARNING)]
        if self._none_auth:
            msg = NONE_AUTH_WARNING + ", ".join(where for where, _ in self._none_auth)
            self.warnings.append(msg)
            log.warning("SECURITY: %s", msg)

    def warnings_for(self, companies: frozenset[int] | None) -> list[str]:
        """The warnings an admin of ``companies`` reads (``None``: a super user, all of them).

        A limited admin sees where the None auth method applies to its companies (or is the
        server-wide default), never the domain, group or user ids of another company.
        """
        if companies is None:
            return list(self.warnings)
        out = [w for w in self.warnings if not w.startswith(NONE_AUTH_WARNING)]
        own = [where for where, company in self._none_auth if company is None or company in companies]
        return out + ([NONE_AUTH_WARNING + ", ".join(own)] if own else [])

    async def stop(self) -> None:
        self.ready = False
        # Observers stop first: no plugin receives an event after its twp_shutdown.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.hooks.shutdown()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.user_imports.stop()
        await self.calendars.stop()
        await self.directories.stop()
        await self.reception.stop()
        await self.telephony.stop()
        await self.mail.stop()
        await self.presence.stop()
        await self.rules.stop()
        await self.teamwork.stop()
        await self.alerter.stop()
        await self.sms.stop()
        await self.instances.close_all()
        if self.store is not None:
            self.store.close()

    def health(self, detailed: bool) -> dict[str, Any]:
        records = list(self.plugins.records.values())
        instances = list(self.instances.instances.values())
        bad_plugins = [r for r in records if r.state not in ("loaded", "disabled")]
        bad_instances = [i for i in instances if i.state not in ("ready", "disabled")]
        status = "ok" if self.ready and not bad_plugins and not bad_instances else ("starting" if not self.ready else "degraded")
        out: dict[str, Any] = {
            "status": status,
            "ready": self.ready,
            "uptime": round(time.time() - self.started_at, 1) if self.started_at else 0,
            "plugins": {"total": len(records), "failed": len(bad_plugins)},
            "instances": {"total": len(instances), "not_ready": len(bad_instances)},
        }
        if detailed:
            out["plugins"]["items"] = self.plugins.as_json()
            out["instances"]["items"] = self.instances.as_json()
            out["warnings"] = list(self.warnings)
            out["events"] = {"published": self.events.published, "subscribers": len(self.events.subscriptions)}
            out["call_logs"] = self.telephony.call_logs.health()
            if self.cluster is not None:
                out["cluster"] = self.cluster.health()
        return out


def _with_context(handler: Any, context: PluginContext) -> Any:
    """A plugin's route handler that finds its plugin's context with ``twpcore.plugin_api.context_of(request)``."""

    async def handle(request: Any) -> Any:
        request[PLUGIN_CONTEXT] = context
        return await handler(request)

    handle.__name__ = getattr(handler, "__name__", "handle")
    handle.__doc__ = handler.__doc__
    return handle


def _check_parameter(plugin: str, call: tuple) -> ParameterDefinition:
    args, kw = call
    if len(args) != 1 or kw or not isinstance(args[0], ParameterDefinition):
        raise RegistrationError(f"register() takes one twpcore.parameters.ParameterDefinition, got {args!r} {kw!r}")
    ParameterRegistry([args[0]])  # its name and default must be valid on their own
    return args[0]


def _check_options(plugin: str, call: tuple) -> Any:
    args, kw = call
    if len(args) != 1 or kw or not (attrs.has(args[0]) or (callable(args[0]) and not isinstance(args[0], type))):
        raise RegistrationError("register() takes one attrs class (the options) or one reader function(source, table) -> options, "
                                f"got {args!r} {kw!r}")
    return args[0]


def _check_route(plugin: str, call: tuple) -> Route:
    route = check_plugin_route(plugin, call)
    handler = route.handler
    if not (inspect.iscoroutinefunction(handler) or (callable(handler) and inspect.iscoroutinefunction(type(handler).__call__))):
        raise RegistrationError(f"route {route.method} {route.path}: the handler must be an async function taking the request, got {handler!r}")
    return route


def check_config(config: Config) -> list[str]:
    """Everything wrong with a parsed config, once plugins are loaded (for ``twp config check``)."""
    kernel = Kernel.build(config)
    problems = kernel.config_problems()
    try:
        Store(config.storage.url).close()
    except Exception as exc:  # noqa: BLE001 - whatever stops the store from opening is a problem to report, not a crash
        problems.append(f"{config.source}: {exc}")
    return problems

