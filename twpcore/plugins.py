"""Loading plugins, isolating them, and remembering what became of each one.

Plugins come from two places: the kernel's default plugins (``twpcore.default_plugins``)
and every entry point of the ``twp`` group, loaded one by one the same way.  Nothing a
plugin does can stop the kernel: an import error, a failing ``register`` hook, a bad
registered class or an exception at run time is caught, logged and recorded on the
plugin's ``PluginRecord``, visible in ``twp plugins list`` and ``/api/v1/plugins``.

pluggy's normal ``pm.hook.x()`` stops at the first raising implementation, so the kernel
never calls hooks that way: ``PluginManager.call_each`` calls every implementation on
its own and keeps going.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import re
import traceback
from importlib import metadata
from typing import Any, Callable, Iterable

import attrs
import pluggy

from twpcore import hookspecs
from twpcore.kinds import KIND_BASES, Kind, PluginType

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "twp"
ALLOWLIST_ENV = "TWP_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "twpcore.default_plugins.auth_tws",
    "twpcore.default_plugins.auth_none",
    "twpcore.default_plugins.parameters",
)
TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class PluginState:
    LOADED = "loaded"
    IMPORT_ERROR = "import_error"
    REGISTER_ERROR = "register_error"
    DISABLED = "disabled"


@attrs.define(eq=False)
class PluginRecord:
    """What the kernel knows of one plugin."""

    name: str
    """Entry-point name, or the default plugin's module name."""
    source: str
    """``default`` for the kernel's own plugins, else the distribution name."""
    version: str | None = None
    state: str = PluginState.LOADED
    reason: str | None = None
    """Why the plugin is not loaded (exception text, or the setting that disabled it)."""
    hooks: list[str] = attrs.field(factory=list)
    """Hooks the plugin implements."""
    provides: list[str] = attrs.field(factory=list)
    """``kind:type_name`` of every type it registered."""
    runtime_errors: int = 0
    """Exceptions raised by its hooks since start."""
    last_error: str | None = None
    module: Any = attrs.field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "version": self.version,
            "state": self.state,
            "reason": self.reason,
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
            self._load_one(short, "default", None, lambda m=modname: importlib.import_module(m))
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
        except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything, even SystemExit
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
        try:
            self.pm.register(module, name=record.name)
            unknown = [h.name for h in self.pm.get_hookcallers(module) or [] if h.name not in _SPEC_NAMES]
            if unknown:  # pragma: no cover - pluggy already refuses unknown twp_ hooks
                raise RegistrationError(f"unknown hooks {unknown}")
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001
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
        """Register an in-process plugin object (used by the test kit)."""
        return self._register_module(self.records.setdefault(name, PluginRecord(name, source)), obj)

    # -- calling -----------------------------------------------------------------
    def impls(self, hook: str) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook)
        return list(reversed(caller.get_hookimpls()))  # registration order

    def _call_impl(self, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        return impl.function(*[kwargs[a] for a in impl.argnames])

    def fail(self, plugin: str, hook: str, exc: BaseException, *, fatal: bool = False) -> None:
        record = self.records.get(plugin)
        text = describe_exception(exc)
        if record is not None:
            record.runtime_errors += 1
            record.last_error = f"{hook}: {text}"
            if fatal:
                record.state = PluginState.REGISTER_ERROR
                record.reason = f"{hook}: {text}"
        log.error("plugin %s failed in %s: %s", plugin, hook, text, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook``; a raising plugin is recorded and skipped."""
        results = []
        for impl in self.impls(hook):
            try:
                results.append((impl.plugin_name, self._call_impl(impl, kwargs)))
            except Exception as exc:  # noqa: BLE001
                self.fail(impl.plugin_name, hook, exc)
        return results

    async def acall_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like ``call_each``, awaiting implementations that are coroutines."""
        results = []
        for impl in self.impls(hook):
            try:
                value = self._call_impl(impl, kwargs)
                if inspect.isawaitable(value):
                    value = await value
                results.append((impl.plugin_name, value))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.fail(impl.plugin_name, hook, exc)
        return results

    def collect(self, hook: str, check: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
        """Run a registration hook per plugin: ``check(plugin, item)`` validates each registered item.

        All of one plugin's registrations are kept, or none: a plugin whose hook raises or
        registers something invalid is marked ``register_error``.
        """
        accepted: list[tuple[str, Any]] = []
        for impl in self.impls(hook):
            mine: list[Any] = []

            def register(*args: Any, **kw: Any) -> None:
                mine.append(check(impl.plugin_name, (args, kw)))

            try:
                self._call_impl(impl, {"register": register})
            except Exception as exc:  # noqa: BLE001
                self.fail(impl.plugin_name, hook, exc, fatal=True)
                continue
            accepted.extend((impl.plugin_name, item) for item in mine)
        return accepted

    # -- types -------------------------------------------------------------------
    def register_types(self) -> None:
        """Collect PBX drivers, directory connectors, auth methods and SMS providers."""
        for kind, hook in KIND_HOOKS.items():
            def check(plugin: str, call: tuple, kind: Kind = kind) -> TypeRecord:
                args, kw = call
                if len(args) != 1 or kw:
                    raise RegistrationError(f"register() takes one class, got {args!r} {kw!r}")
                return self._check_type(kind, plugin, args[0])

            for plugin, rec in self.collect(hook, check):
                existing = self.types[kind].get(rec.type_name)
                if existing is not None and existing.plugin != plugin:
                    self.fail(plugin, hook, RegistrationError(
                        f'{kind.label} "{rec.type_name}" is already registered by plugin {existing.plugin}; rename yours'), fatal=False)
                    continue
                self.types[kind][rec.type_name] = rec
                self.records[plugin].provides.append(f"{kind.value}:{rec.type_name}")

    def _check_type(self, kind: Kind, plugin: str, cls: Any) -> TypeRecord:
        base = KIND_BASES[kind]
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise RegistrationError(f"{kind.label} registrations must be subclasses of twpcore.kinds.{base.__name__}, got {cls!r}")
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


KIND_HOOKS = {
    Kind.PBX_DRIVER: "twp_register_pbx_drivers",
    Kind.DIRECTORY_CONNECTOR: "twp_register_directory_connectors",
    Kind.AUTH_METHOD: "twp_register_auth_methods",
    Kind.SMS_PROVIDER: "twp_register_sms_providers",
}
_SPEC_NAMES = {n for n in dir(hookspecs) if n.startswith("twp_")}
