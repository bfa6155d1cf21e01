"""Every hook a TWP plugin can implement.

Each hook has a one-line docstring here; the full description, with arguments and an
example, is in ``docs/plugin-hooks.md`` under a ``name(args)`` heading.  A meta-test
fails if a hook is missing from that page or has no ``test_hook_<name>`` test.

Hook implementations may accept fewer arguments than the specification lists, so new
arguments can be added without breaking existing plugins.  Registration hooks receive a
``register`` callback: the kernel checks what it is given and records which plugin owns
it.  The other hooks receive the plugin's ``context`` (``twpcore.plugin_api.PluginContext``),
never the kernel.  The kernel calls hooks through ``twpcore.plugins.Hooks`` and every
implementation on its own, so one failing plugin never stops the others.

Plugins import ``hookimpl`` and the types named here from ``twpcore.plugin_api``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from twpcore.events import CallEvent, DeviceEvent, PresenceEvent
    from twpcore.kinds import AuthMethod, DirectoryConnector, PbxDriver, SmsProvider
    from twpcore.parameters import ParameterDefinition
    from twpcore.plugin_context import PluginContext

hookspec = pluggy.HookspecMarker("twp")
hookimpl = pluggy.HookimplMarker("twp")
"""Marks a plugin's hook implementations: ``@hookimpl`` above ``def twp_startup(context): ...``."""

T_contra = TypeVar("T_contra", contravariant=True)

MaybeAwaitable = Awaitable[None] | None
"""Lifecycle and observer hooks may be plain functions or coroutines (``async def``)."""

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
"""An aiohttp route handler: an async function taking the request."""


class Register(Protocol[T_contra]):
    """The ``register`` callback of a registration hook: call it once per thing registered."""

    def __call__(self, item: T_contra, /) -> None: ...


class RegisterRoute(Protocol):
    """The ``register`` callback of ``twp_register_routes``."""

    def __call__(self, method: str, path: str, handler: Handler, /, *, access: str = "user", summary: str = "",
                 body: dict[str, Any] | None = None, query: tuple[tuple[Any, ...], ...] = (), status: int = 200,
                 errors: tuple[int, ...] = ()) -> None: ...


@hookspec
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    """Register PBX driver types: call ``register(DriverClass)`` once per driver."""


@hookspec
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    """Register directory connector types: call ``register(ConnectorClass)`` once per connector."""


@hookspec
def twp_register_auth_methods(register: Register[type[AuthMethod]]) -> None:
    """Register authentication methods: call ``register(AuthMethodClass)`` once per method."""


@hookspec
def twp_register_sms_providers(register: Register[type[SmsProvider]]) -> None:
    """Register SMS provider types: call ``register(ProviderClass)`` once per provider."""


@hookspec
def twp_register_routes(register: RegisterRoute) -> None:
    """Register HTTP routes: call ``register(method, path, handler, ...)`` once per route."""


@hookspec
def twp_register_parameters(register: Register[ParameterDefinition]) -> None:
    """Register application parameters: call ``register(ParameterDefinition)`` once per parameter."""


@hookspec
def twp_register_options(register: Register[Any]) -> None:
    """Declare this plugin's ``[plugins.<name>]`` options: call ``register(OptionsClass)`` (attrs) or ``register(reader)`` once."""


@hookspec
def twp_startup(context: PluginContext) -> MaybeAwaitable:
    """Run once when the server has loaded its plugins and opened its store, before it serves."""


@hookspec
def twp_shutdown(context: PluginContext) -> MaybeAwaitable:
    """Run once when the server stops, before the store closes."""


@hookspec
def twp_call_event(event: CallEvent, context: PluginContext) -> MaybeAwaitable:
    """Observe a normalized call event (originated, delivered, established, cleared...)."""


@hookspec
def twp_device_event(event: DeviceEvent, context: PluginContext) -> MaybeAwaitable:
    """Observe a device event (forwarding or do-not-disturb changed, monitoring started or lost)."""


@hookspec
def twp_presence_event(event: PresenceEvent, context: PluginContext) -> MaybeAwaitable:
    """Observe a telephony presence change of a device."""
