"""What a plugin and its instances are handed instead of the kernel.

A plugin's hooks (``twp_startup``, ``twp_shutdown``, the observers) receive its
``PluginContext``; an instance of a registered type receives an ``InstanceContext``
(``twpcore.kinds``); a route handler finds its plugin's context with ``context_of(request)``.
Both contexts offer the same typed calls into the running server (``KernelCalls``): parameter
resolution, a user's identity, other instances by kind and name, publishing events, the
clock and the run-blocking helper.  The kernel object itself never reaches a plugin, so a
plugin keeps working whatever the kernel's inside looks like.

Plugins import all of this through ``twpcore.plugin_api``; kernel modules import it from here
(``twpcore.plugin_api`` re-exports half the kernel and is imported by no kernel module).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
from aiohttp import web

from twpcore.blocking import run_blocking
from twpcore.clock import next_daily
from twpcore.events import Event

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.events import EventBus
    from twpcore.kinds import InstanceState, Kind, PluginType
    from twpcore.parameters import ParameterRegistry
    from twpcore.store import Store

T = TypeVar("T")

API_VERSION = "1.2"
"""The version of the plugin API this kernel provides, ``MAJOR.MINOR`` (see the plugin author guide)."""

PLUGIN_CONTEXT = web.RequestKey("twp_plugin_context", object)
"""Where the kernel puts the ``PluginContext`` of the plugin whose route serves a request."""


class NotRunning(RuntimeError):
    """A context was asked for the running server where there is none (``twp config check``, a unit test)."""


@attrs.frozen
class UserInfo:
    """Who a user is, as a plugin may see it."""

    id: int
    """The user's id."""
    login: str
    """The login name."""
    domain_id: int
    """The user's domain."""
    company_id: int
    """The company of that domain."""
    enabled: bool
    """False for a disabled account."""
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class Clock:
    """The server's clock; plugins read time here, so tests and the kernel agree on it."""

    def now(self) -> float:
        """The current Unix time."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back, for timeouts and intervals."""
        return time.monotonic()

    def next_daily(self, hhmm: str, after: float | None = None) -> float:
        """The next local time ``HH:MM`` at or after ``after`` (default: now), as a Unix time."""
        return next_daily(hhmm, self.now() if after is None else after)


CLOCK = Clock()


class _Instance(Protocol):
    @property
    def obj(self) -> PluginType | None: ...
    @property
    def state(self) -> InstanceState: ...


class _Instances(Protocol):
    @property
    def instances(self) -> Mapping[tuple[Kind, str], _Instance]: ...
    def ready(self, kind: Kind) -> dict[str, PluginType]: ...


class _Config(Protocol):
    @property
    def source(self) -> str: ...


class _Plugins(Protocol):
    def fail(self, plugin: str, hook: str, exc: BaseException) -> None: ...


class RunningKernel(Protocol):
    """What the contexts read of the kernel (``twpcore.app.Kernel`` is one).

    Written as a protocol so that this module, which the kernel imports, never names the
    kernel's class: the plugin API stays below the kernel, even for the type checker.
    """

    @property
    def store(self) -> Store | None: ...
    @property
    def ready(self) -> bool: ...
    @property
    def config(self) -> _Config: ...
    @property
    def parameters(self) -> ParameterRegistry: ...
    @property
    def instances(self) -> _Instances: ...
    @property
    def events(self) -> EventBus: ...
    @property
    def plugin_options(self) -> Mapping[str, Any]: ...
    @property
    def plugins(self) -> _Plugins: ...


class KernelCalls:
    """The calls into the running server shared by ``PluginContext`` and ``InstanceContext``.

    Each raises ``NotRunning`` when there is no running server (``twp config check`` builds
    instances without one; unit tests may too).
    """

    _kernel: RunningKernel | None
    clock: Clock = CLOCK
    """The server's clock."""

    def _running(self, what: str) -> RunningKernel:
        if self._kernel is None or self._kernel.store is None:
            raise NotRunning(f"{what} needs a running TWP server; {self!r} has none (twp config check, or a unit test)")
        return self._kernel

    @property
    def ready(self) -> bool:
        """True once the server has started and serves requests."""
        return self._kernel is not None and self._kernel.ready

    @property
    def config_source(self) -> str:
        """The config file the server read (``config/twp.toml``), to name it in errors."""
        return self._kernel.config.source if self._kernel is not None else ""

    async def parameters(self, user_id: int, names: Iterable[str]) -> dict[str, str]:
        """The effective values of parameters ``names`` for a user (user, group, domain or default).

        Raises ``ParameterError`` for an unknown parameter name or user id.
        """
        kernel = self._running("parameters()")
        assert kernel.store is not None
        resolved = await kernel.store.run(kernel.parameters.resolve, user_id, list(names))
        return {name: value.value for name, value in resolved.items()}

    async def user(self, user_id: int) -> UserInfo | None:
        """Who the user with this id is; ``None`` when there is no such user."""
        from twpcore.directory.db import user_row

        kernel = self._running("user()")
        assert kernel.store is not None
        row = await kernel.store.run(user_row, user_id)
        if row is None:
            return None
        return UserInfo(row.id, row.login, row.domain_id, row.company_id, bool(row.enabled), row.email, row.first_name, row.last_name)

    def instance(self, kind: Kind, name: str) -> PluginType | None:
        """The configured instance ``name`` of ``kind`` (``Kind.SMS_PROVIDER, "gateway"``), whatever its state; ``None`` if none."""
        if self._kernel is None:
            return None
        found = self._kernel.instances.instances.get((kind, name))
        return found.obj if found is not None else None

    def instance_state(self, kind: Kind, name: str) -> InstanceState | None:
        """The state of instance ``name`` of ``kind``; ``None`` if there is none."""
        if self._kernel is None:
            return None
        found = self._kernel.instances.instances.get((kind, name))
        return found.state if found is not None else None

    def instances(self, kind: Kind) -> dict[str, PluginType]:
        """The ``ready`` instances of ``kind``, by name."""
        return self._kernel.instances.ready(kind) if self._kernel is not None else {}

    def publish(self, event: Event) -> None:
        """Publish an event to WebSocket clients, webhooks and observers; never blocks."""
        self._running("publish()").events.publish(event)

    async def run_blocking(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (a client library without asyncio) in a worker thread and return its result."""
        return await run_blocking(function, *args, **kwargs)


@attrs.define(eq=False, repr=False)
class PluginContext(KernelCalls):
    """What a plugin's hooks receive: its name, options, logger, state slot, and the calls of ``KernelCalls``.

    There is one per plugin and running server, the same object in every hook and route
    handler of the plugin, so ``state`` is where the plugin keeps what it started.
    """

    name: str
    """The plugin's name (its entry-point name)."""
    logger: logging.Logger
    """A logger named ``twp.plugin.<name>``."""
    _kernel: RunningKernel | None = attrs.field(alias="kernel")
    state: Any = None
    """The plugin's own slot: set it in ``twp_startup``, read it in the other hooks and routes."""

    @property
    def options(self) -> Any:
        """The plugin's checked ``[plugins.<name>]`` options (``twp_register_options``); ``None`` without a table."""
        return self._kernel.plugin_options.get(self.name) if self._kernel is not None else None

    def report_error(self, what: str, exc: BaseException) -> None:
        """Count an error of the plugin's own tasks (``runtime_errors`` / ``last_error`` in ``GET /api/v1/plugins``)."""
        if self._kernel is not None:
            self._kernel.plugins.fail(self.name, what, exc)

    def __repr__(self) -> str:
        return f"<PluginContext of plugin {self.name}>"


def context_of(request: web.Request) -> PluginContext:
    """The ``PluginContext`` of the plugin whose route serves ``request``."""
    context = request.get(PLUGIN_CONTEXT)
    if not isinstance(context, PluginContext):
        raise LookupError("context_of(request) works in handlers registered with twp_register_routes only")
    return context


def kernel_of(context: KernelCalls) -> RunningKernel:
    """The kernel behind a context: for the kernel's own default plugins only, never for other plugins."""
    return context._running("kernel_of()")
