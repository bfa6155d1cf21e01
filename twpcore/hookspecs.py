"""Every hook a TWP plugin can implement.

Each hook has a one-line docstring here; the full description, with arguments and an
example, is in ``docs/plugin-hooks.md`` under a ``name(args)`` heading.  A meta-test
fails if a hook is missing from that page or has no ``test_hook_<name>`` test.

Hook implementations may accept fewer arguments than the specification lists, so new
arguments can be added without breaking existing plugins.  Registration hooks receive a
``register`` callback: the kernel checks what it is given and records which plugin owns
it.  The kernel calls every implementation on its own, so one failing plugin never
stops the others (see ``twpcore.plugins``).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("twp")
hookimpl = pluggy.HookimplMarker("twp")


@hookspec
def twp_register_pbx_drivers(register):
    """Register PBX driver types: call ``register(DriverClass)`` once per driver."""


@hookspec
def twp_register_directory_connectors(register):
    """Register directory connector types: call ``register(ConnectorClass)`` once per connector."""


@hookspec
def twp_register_auth_methods(register):
    """Register authentication methods: call ``register(AuthMethodClass)`` once per method."""


@hookspec
def twp_register_sms_providers(register):
    """Register SMS provider types: call ``register(ProviderClass)`` once per provider."""


@hookspec
def twp_register_routes(register):
    """Register HTTP routes: call ``register(method, path, handler, ...)`` once per route."""


@hookspec
def twp_register_parameters(register):
    """Register application parameters: call ``register(ParameterDefinition)`` once per parameter."""


@hookspec
def twp_register_options(register):
    """Declare this plugin's ``[plugins.<name>]`` options: call ``register(OptionsClass)`` (attrs) or ``register(reader)`` once."""


@hookspec
def twp_startup(app):
    """Run once when the server has loaded its plugins and opened its store, before it serves."""


@hookspec
def twp_shutdown(app):
    """Run once when the server stops, before the store closes."""


@hookspec
def twp_call_event(event, app):
    """Observe a normalized call event (originated, delivered, established, cleared...)."""


@hookspec
def twp_device_event(event, app):
    """Observe a device event (forwarding or do-not-disturb changed, monitoring started or lost)."""


@hookspec
def twp_presence_event(event, app):
    """Observe a telephony presence change of a user."""
