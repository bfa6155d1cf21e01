"""Loading plugins, isolating them, and remembering what became of each one.

Plugins come from two places: the kernel's default plugins (``twpcore.default_plugins``)
and every entry point of the ``twp`` group, loaded one by one the same way.  Nothing a
plugin does can stop the kernel: an import error, a failing ``register`` hook, a bad
registered class or an exception at run time is caught, logged and recorded on the
plugin's ``PluginRecord``, visible in ``twp plugins list`` and ``/api/v1/plugins``.

A plugin's state is one of:

- ``loaded``: imported and registered; its hooks are called;
- ``import_error``: importing its module raised;
- ``register_error``: pluggy refused its hooks, a registration hook raised, or it
  registered something invalid; nothing it registered is kept;
- ``startup_error``: its ``twp_startup`` raised; it is not called again (no events, no
  ``twp_shutdown``), though types it registered stay available to instances;
- ``incompatible``: it declares (``TWP_PLUGIN_API = "MAJOR.MINOR"``) a plugin API this kernel
  does not provide: another major version, or a newer minor one; it is not registered;
- ``disabled``: listed in ``[plugins] disabled``, or missing from ``TWP_LOAD_PLUGINS``.

Only ``loaded`` plugins are called.  An exception raised later by a hook (an observer,
say) leaves the plugin ``loaded`` and is counted in ``runtime_errors`` / ``last_error``.

pluggy's normal ``pm.hook.x()`` stops at the first raising implementation, so the kernel
never calls hooks that way: ``PluginManager.call_each`` calls every implementation on
its own and keeps going.  The rest of the kernel calls hooks through ``Hooks``, one typed
method per hook, never by name.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import importlib
import inspect
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from twpcore import hookspecs
from twpcore.events import Event
from twpcore.kinds import KIND_BASES, Kind, PluginType
from twpcore.plugin_context import API_VERSION

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.plugin_context import PluginContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "twp"
ALLOWLIST_ENV = "TWP_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "twpcore.default_plugins.auth_tws",
    "twpcore.default_plugins.auth_none",
    "twpcore.default_plugins.parameters",
    "twpcore.default_plugins.notifications",
    "twpcore.default_plugins.directories",
)
TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
STARTUP_TIMEOUT = 30.0
"""Seconds a ``twp_startup`` or ``twp_shutdown`` implementation may take before it is abandoned."""


API_VERSION_ATTRIBUTE = "TWP_PLUGIN_API"
"""The module attribute in which a plugin declares the plugin API version it needs (``"1.0"``)."""
_API_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


class PluginState(enum.StrEnum):
    """What became of a plugin (``twp plugins list``, ``GET /api/v1/plugins``)."""

    LOADED = "loaded"
    IMPORT_ERROR = "import_error"
    REGISTER_ERROR = "register_error"
    STARTUP_ERROR = "startup_error"
    INCOMPATIBLE = "incompatible"
    DISABLED = "disabled"


def api_version_problem(declared: Any, provided: str = API_VERSION) -> str | None:
    """Why a plugin declaring ``TWP_PLUGIN_API = declared`` cannot run on this kernel; ``None`` when it can.

    It can when the major versions are equal and its minor version is not newer than the
    kernel's.  A plugin that declares nothing is taken to need ``1.0``.
    """
    if declared is None:
        return None
    match = _API_VERSION.match(declared) if isinstance(declared, str) else None
    if match is None:
        return (f'{API_VERSION_ATTRIBUTE} must be a "MAJOR.MINOR" string such as "{provided}", got {declared!r}; '
                "fix the plugin's declaration")
    major, minor = int(match[1]), int(match[2])
    have_major, have_minor = (int(x) for x in provided.split("."))
    if major != have_major or minor > have_minor:
        return (f"needs plugin API {declared}, this TWP provides {provided}; "
                + (f"upgrade TWP to one providing plugin API {major}.{minor} or a later {major}.x" if major >= have_major
                   else f"install a version of the plugin made for plugin API {have_major}.x"))
    return None


@attrs.define(eq=False)
class PluginRecord:
    """What the kernel knows of one plugin."""

    name: str
    """Entry-point name, or the default plugin's module name."""
    source: str
    """``default`` for the kernel's own plugins, else the distribution name."""
    version: str | None = None
    state: PluginState = attrs.field(default=PluginState.LOADED, converter=PluginState)
    reason: str | None = None
    """Why the plugin is not loaded (exception text, or the setting that disabled it)."""
    hooks: list[str] = attrs.field(factory=list)
    """Hooks the plugin implements."""
    provides: list[str] = attrs.field(factory=list)
    """``kind:type_name`` of every type it registered."""
    runtime_errors: int = 0
    """Exceptions raised by its hooks since start."""
    last_error: str | None = None
    api_version: str | None = None
    """The plugin API version the plugin declares (``TWP_PLUGIN_API``); ``None`` when it declares none."""
    module: Any = attrs.field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "version": self.version,
            "state": self.state.value,
            "reason": self.reason,
            "api_version": self.api_version,
            "hooks": sorted(self.hooks),
            "provides": sorted(self.provides),
            "runtime_errors": self.runtime_errors,
            "last_error": self.last_error,
        }


@attrs.frozen
class TypeRecord:
    """A registered plugin type and the plugin that owns it."""

    kind: Kind
    type_name: str
    cls: type[PluginType]
    plugin: str


class RegistrationError(Exception):
    """A plugin handed ``register`` something the kernel cannot accept."""


def describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """The kernel's typed front of pluggy."""

    def __init__(self, disabled: Iterable[str] = (), allowlist: Iterable[str] | None = None):
        self.pm = pluggy.PluginManager("twp")
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.disabled = set(disabled)
        if allowlist is None and ALLOWLIST_ENV in os.environ:
            allowlist = [x.strip() for x in os.environ[ALLOWLIST_ENV].split(",") if x.strip()]
        self.allowlist = None if allowlist is None else set(allowlist)
        self.types: dict[Kind, dict[str, TypeRecord]] = {k: {} for k in Kind}

    # -- loading -----------------------------------------------------------------
    def load(self) -> None:
        """Load the default plugins, then every ``twp`` entry point."""
        for modname in DEFAULT_PLUGINS:
            short = modname.rsplit(".", 1)[1]
            if short in self.disabled:
                self.records[short] = PluginRecord(short, "default", state=PluginState.DISABLED, reason="listed in [plugins] disabled")
                continue
            self._load_one(short, "default", None, functools.partial(importlib.import_module, modname))
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else None
            if ep.name in self.disabled:
                self.records[ep.name] = PluginRecord(ep.name, dist, version, PluginState.DISABLED, "listed in [plugins] disabled")
                continue
            if self.allowlist is not None and ep.name not in self.allowlist:
                self.records[ep.name] = PluginRecord(ep.name, dist, version, PluginState.DISABLED, f"not listed in {ALLOWLIST_ENV}")
                continue
            self._load_one(ep.name, dist, version, ep.load)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:  # pragma: no cover - guarded per plugin below
            log.error("plugin hook validation: %s", exc)

    def _load_one(self, name: str, source: str, version: str | None, loader: Callable[[], Any]) -> PluginRecord:
        record = PluginRecord(name, source, version)
        self.records[name] = record
        try:
            module = loader()
        except BaseException as exc:  # a plugin may raise anything, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            record.state = PluginState.IMPORT_ERROR
            record.reason = describe_exception(exc)
            log.error("plugin %s (%s) failed to import: %s", name, source, record.reason)
            log.debug("%s", traceback.format_exc())
            return record
        return self._register_module(record, module)

    def _register_module(self, record: PluginRecord, module: Any) -> PluginRecord:
        record.module = module
        declared = getattr(module, API_VERSION_ATTRIBUTE, None)
        record.api_version = declared if isinstance(declared, str) else None
        problem = api_version_problem(declared)
        if problem is not None:
            record.state = PluginState.INCOMPATIBLE
            record.reason = problem
            log.error("plugin %s (%s) is not loaded: %s", record.name, record.source, problem)
            return record
        try:
            self.pm.register(module, name=record.name)
            unknown = [h.name for h in self.pm.get_hookcallers(module) or [] if h.name not in _SPEC_NAMES]
            if unknown:  # pragma: no cover - pluggy already refuses unknown twp_ hooks
                raise RegistrationError(f"unknown hooks {unknown}")
            wrappers = [h.name for h in self.pm.get_hookcallers(module) or []
                        for impl in h.get_hookimpls() if impl.plugin is module and (impl.hookwrapper or impl.wrapper)]
            if wrappers:
                raise RegistrationError(f"hook wrappers are not supported (the kernel calls each plugin on its own): {sorted(wrappers)}")
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - a plugin module may raise anything while it registers
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            record.state = PluginState.REGISTER_ERROR
            record.reason = describe_exception(exc)
            log.error("plugin %s cannot be registered: %s", record.name, record.reason)
            return record
        record.hooks = [h.name for h in self.pm.get_hookcallers(module) or []]
        log.debug("plugin %s loaded (%s)", record.name, ", ".join(record.hooks))
        return record

    def register_plugin(self, obj: Any, name: str, source: str = "test") -> PluginRecord:
        """Register an in-process plugin object (used by the test kit) like an installed one.

        ``[plugins] disabled`` and the ``TWP_LOAD_PLUGINS`` allowlist apply to it too.
        """
        if name in self.disabled:
            self.records[name] = PluginRecord(name, source, state=PluginState.DISABLED, reason="listed in [plugins] disabled")
            return self.records[name]
        if self.allowlist is not None and name not in self.allowlist:
            self.records[name] = PluginRecord(name, source, state=PluginState.DISABLED, reason=f"not listed in {ALLOWLIST_ENV}")
            return self.records[name]
        return self._register_module(self.records.setdefault(name, PluginRecord(name, source)), obj)

    def active(self, name: str) -> bool:
        """Is this plugin still called?  Only ``loaded`` plugins are."""
        record = self.records.get(name)
        return record is None or record.state == PluginState.LOADED

    # -- calling -----------------------------------------------------------------
    def impls(self, hook: str) -> list[pluggy.HookImpl]:
        """The implementations of ``hook`` by plugins still ``loaded``, in the order they are called.

        That is registration order (the kernel's default plugins, then entry points by
        name, then in-process plugins), ``tryfirst`` ones before and ``trylast`` ones after.
        (pluggy itself calls the last registered first; the kernel wants the first
        registered to own a type name, so a package cannot take over "TWS".)
        """
        caller = getattr(self.pm.hook, hook)
        found = [impl for impl in caller.get_hookimpls() if self.active(impl.plugin_name)]  # registration order
        return sorted(found, key=lambda impl: 0 if impl.tryfirst else 2 if impl.trylast else 1)

    def _call_impl(self, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        return impl.function(*[kwargs[a] for a in impl.argnames])

    def fail(self, plugin: str, hook: str, exc: BaseException, *, state: PluginState | None = None) -> None:
        """Record that ``plugin`` raised ``exc`` in ``hook`` (or in its own task: name it in ``hook``).

        With ``state`` the plugin leaves ``loaded`` for that state and is called no more;
        a plugin in ``register_error`` also loses every type it registered.
        """
        record = self.records.get(plugin)
        text = describe_exception(exc)
        if record is not None:
            record.runtime_errors += 1
            record.last_error = f"{hook}: {text}"
            if state is not None:
                record.state = state
                record.reason = f"{hook}: {text}"
                if state == PluginState.REGISTER_ERROR:
                    self._forget_types(plugin)
        log.error("plugin %s failed in %s: %s", plugin, hook, text, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)

    def _forget_types(self, plugin: str) -> None:
        for types in self.types.values():
            for name in [n for n, rec in types.items() if rec.plugin == plugin]:
                del types[name]
        if plugin in self.records:
            self.records[plugin].provides.clear()

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook``; a raising plugin is recorded and skipped."""
        results = []
        for impl in self.impls(hook):
            try:
                results.append((impl.plugin_name, self._call_impl(impl, kwargs)))
            except Exception as exc:  # noqa: BLE001 - a plugin's hook may raise anything; the plugin is marked failed
                self.fail(impl.plugin_name, hook, exc)
        return results

    async def acall_each(self, hook: str, /, *, timeout: float | None = None, fail_state: PluginState | None = None,
                         contexts: Callable[[str], PluginContext] | None = None, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like ``call_each``, awaiting implementations that are coroutines.

        An implementation still running after ``timeout`` seconds is cancelled and
        recorded as failed; ``fail_state`` is the state a failing plugin is put in.
        With ``contexts``, each implementation receives ``context=contexts(its plugin)``.
        """
        results = []
        for impl in self.impls(hook):
            try:
                value = self._call_impl(impl, kwargs if contexts is None else {**kwargs, "context": contexts(impl.plugin_name)})
                if inspect.isawaitable(value):
                    try:
                        async with asyncio.timeout(timeout) as deadline:
                            value = await value
                    except TimeoutError:
                        if deadline.expired():
                            raise TimeoutError(f"did not finish within {timeout:g} s") from None
                        raise
                results.append((impl.plugin_name, value))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a plugin's hook may raise anything; the plugin is marked failed
                self.fail(impl.plugin_name, hook, exc, state=fail_state)
        return results

    def collect(self, hook: str, check: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
        """Run a registration hook per plugin: ``check(plugin, item)`` validates each registered item.

        All of one plugin's registrations are kept, or none: a plugin whose hook raises or
        registers something invalid is marked ``register_error``.
        """
        accepted: list[tuple[str, Any]] = []
        for impl in self.impls(hook):
            register = _Register(impl.plugin_name, hook, check)
            try:
                value = self._call_impl(impl, {"register": register})
                if inspect.isawaitable(value):
                    getattr(value, "close", lambda: None)()
                    raise RegistrationError(f"{hook} must be a plain function (def), not a coroutine: registration runs before the event loop")
                if register.error is not None:
                    # The plugin caught the error of a bad register() call and went on.
                    raise register.error
            except Exception as exc:  # noqa: BLE001 - a plugin's hook may raise anything; the plugin is marked failed
                self.fail(impl.plugin_name, hook, exc, state=PluginState.REGISTER_ERROR)
                continue
            finally:
                register.open = False
            accepted.extend((impl.plugin_name, item) for item in register.items)
        return accepted

    # -- types -------------------------------------------------------------------
    def register_types(self) -> None:
        """Collect PBX drivers, directory connectors, auth methods and SMS providers."""
        for kind, hook in KIND_HOOKS.items():
            def check(plugin: str, call: tuple[tuple[Any, ...], dict[str, Any]], kind: Kind = kind) -> TypeRecord:
                args, kw = call
                if len(args) != 1 or kw:
                    raise RegistrationError(f"register() takes one class, got {args!r} {kw!r}")
                return self._check_type(kind, plugin, args[0])

            for plugin, rec in self.collect(hook, check):
                existing = self.types[kind].get(rec.type_name)
                if existing is not None and existing.plugin != plugin:
                    self.fail(plugin, hook, RegistrationError(
                        f'{kind.label} "{rec.type_name}" is already registered by plugin {existing.plugin}; rename yours'))
                    continue
                self.types[kind][rec.type_name] = rec
                self.records[plugin].provides.append(f"{kind.value}:{rec.type_name}")

    def _check_type(self, kind: Kind, plugin: str, cls: Any) -> TypeRecord:
        base = KIND_BASES[kind]
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise RegistrationError(f"{kind.label} registrations must be subclasses of twpcore.plugin_api.{base.__name__}, got {cls!r}")
        type_name = getattr(cls, "type_name", None)
        if not isinstance(type_name, str) or not TYPE_NAME.match(type_name):
            raise RegistrationError(f"{cls.__name__}.type_name must be a name like \"mxone\", got {type_name!r}")
        if not attrs.has(cls.Config):
            raise RegistrationError(f"{cls.__name__}.Config must be an attrs class, got {cls.Config!r}")
        caps = cls.capabilities
        if not isinstance(caps, frozenset):
            raise RegistrationError(f"{cls.__name__}.capabilities must be a frozenset, got {caps!r}")
        unknown = caps - cls.vocabulary
        if unknown:
            raise RegistrationError(f"{cls.__name__} declares unknown capabilities {sorted(unknown)}; known: {sorted(cls.vocabulary)}")
        return TypeRecord(kind, type_name, cls, plugin)

    def as_json(self) -> list[dict[str, Any]]:
        return [r.as_json() for r in sorted(self.records.values(), key=lambda r: (r.source != "default", r.name))]


class _Register:
    """The ``register`` callback handed to one plugin's registration hook."""

    def __init__(self, plugin: str, hook: str, check: Callable[[str, Any], Any]):
        self.plugin, self.hook, self.check = plugin, hook, check
        self.items: list[Any] = []
        self.error: Exception | None = None
        self.open = True

    def __call__(self, *args: Any, **kw: Any) -> None:
        if not self.open:
            raise RegistrationError(f"register() of {self.hook} was called after the hook returned; call it inside the hook")
        try:
            self.items.append(self.check(self.plugin, (args, kw)))
        except Exception as exc:
            self.error = exc
            raise


KIND_HOOKS = {
    Kind.PBX_DRIVER: hookspecs.twp_register_pbx_drivers.__name__,
    Kind.DIRECTORY_CONNECTOR: hookspecs.twp_register_directory_connectors.__name__,
    Kind.AUTH_METHOD: hookspecs.twp_register_auth_methods.__name__,
    Kind.SMS_PROVIDER: hookspecs.twp_register_sms_providers.__name__,
}
OBSERVER_HOOKS = {
    "call": hookspecs.twp_call_event.__name__,
    "device": hookspecs.twp_device_event.__name__,
    "presence": hookspecs.twp_presence_event.__name__,
}
"""The observer hook of each event category delivered to plugins."""


class Hooks:
    """The kernel's typed calls of the hooks of ``twpcore.hookspecs``: one method per hook.

    No other kernel module calls a hook by name; each method names its hook through the
    spec function, so renaming a spec fails at import time, not at run time.
    """

    def __init__(self, plugins: PluginManager, contexts: Callable[[str], PluginContext]):
        self.plugins = plugins
        self.contexts = contexts

    def register_types(self) -> None:
        """``twp_register_pbx_drivers``, ``_directory_connectors``, ``_auth_methods``, ``_sms_providers``."""
        self.plugins.register_types()

    def register_parameters(self, check: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
        return self.plugins.collect(hookspecs.twp_register_parameters.__name__, check)

    def register_routes(self, check: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
        return self.plugins.collect(hookspecs.twp_register_routes.__name__, check)

    def register_options(self, check: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
        return self.plugins.collect(hookspecs.twp_register_options.__name__, check)

    async def startup(self) -> None:
        """Every ``twp_startup``; a plugin whose start-up raises goes to ``startup_error``."""
        await self.plugins.acall_each(hookspecs.twp_startup.__name__, timeout=STARTUP_TIMEOUT, fail_state=PluginState.STARTUP_ERROR,
                                      contexts=self.contexts)

    async def shutdown(self) -> None:
        """Every ``twp_shutdown`` of the plugins that started."""
        await self.plugins.acall_each(hookspecs.twp_shutdown.__name__, timeout=STARTUP_TIMEOUT, contexts=self.contexts)

    async def observe(self, event: Event, timeout: float) -> None:
        """``twp_call_event``, ``twp_device_event`` or ``twp_presence_event``, after the event's category."""
        hook = OBSERVER_HOOKS.get(event.category)
        if hook is not None:
            await self.plugins.acall_each(hook, timeout=timeout, contexts=self.contexts, event=event)
_SPEC_NAMES = {n for n in dir(hookspecs) if n.startswith("twp_")}
