"""The TWP plugin API: everything a plugin may import from TWP, and nothing else.

A plugin (PBX driver, directory connector, auth method, SMS provider, or one that only
observes events and serves routes) imports from this module only::

    from twpcore.plugin_api import DirectoryConnector, NotReady, SourceRecord, hookimpl, setting

    TWP_PLUGIN_API = "1.0"          # the plugin API version the plugin is written for

Everything here is typed and documented; ``docs/plugin-author-guide.md`` is the guide and
``docs/plugin-hooks.md`` the reference of every hook.  The API is versioned
(``API_VERSION``, ``MAJOR.MINOR``): a minor version adds names or optional arguments and
never breaks a plugin; a major version may remove or change what was deprecated for at
least one minor version.  A plugin declaring a version this kernel does not provide
(another major, or a newer minor) is not loaded: ``twp plugins list`` shows it
``incompatible`` with the reason.

What a plugin receives instead of the kernel:

- an instance of a registered type gets ``self.context``, an ``InstanceContext``;
- ``twp_startup``, ``twp_shutdown`` and the observer hooks get ``context``, the plugin's
  ``PluginContext`` (its options, logger and ``state`` slot);
- a route handler finds the same ``PluginContext`` with ``context_of(request)`` and the
  caller with ``principal_of(request)``; it raises ``ApiError`` for a JSON error answer.

Both contexts resolve parameters (``await context.parameters(user_id, names)``), find a
user (``await context.user(user_id)``), other instances (``context.instance(Kind.SMS_PROVIDER,
"gateway")``), publish events (``context.publish(event)``), read the clock
(``context.clock.now()``) and run blocking calls (``await context.run_blocking(f, *args)``).

Plugin tests use the test kit ``twpcore.testing`` (pytest fixtures ``twp_app``, ``admin``...),
which is not part of this module: tests may import it, a plugin's package code may not.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from twpcore import calendars as _calendars
from twpcore import directory as _directory
from twpcore import kinds as _kinds
from twpcore import schema as _schema
from twpcore import server_side as _server_side
from twpcore import sms as _sms
from twpcore.auth import Principal
from twpcore.blocking import ProducerStopped, iterate_in_thread, run_blocking
from twpcore.events import EVENT_SCHEMA_VERSION as _EVENT_SCHEMA_VERSION
from twpcore.events import (
    AdminEvent,
    CallEvent,
    DeviceEvent,
    DirectoryEvent,
    Event,
    LinkEvent,
    PresenceEvent,
    SmsEvent,
    SystemEvent,
)
from twpcore.hookspecs import Register, RegisterRoute
from twpcore.hookspecs import hookimpl as _hookimpl
from twpcore.instances import InstanceState
from twpcore.kinds import (
    AuthFailed,
    AuthMethod,
    AuthOutcome,
    AuthResult,
    ConnectorError,
    DirectoryConnector,
    EmptyConfig,
    InstanceContext,
    Kind,
    LoginAttempt,
    NegotiateRefused,
    NegotiateStep,
    NotReady,
    NotSupported,
    PbxDriver,
    PluginType,
    SmsMessage,
    SmsProvider,
    SmsProviderConfig,
    SmsRejected,
    SmsSent,
    SmsUnavailable,
    SourceRecord,
)
from twpcore.logs import RepeatLimiter
from twpcore.parameters import ParameterDefinition, ParameterError
from twpcore.plugin_context import API_VERSION as _API_VERSION
from twpcore.plugin_context import Clock, KernelCalls, NotRunning, PluginContext, UserInfo, context_of
from twpcore.plugins import PluginState
from twpcore.routing import ApiError
from twpcore.routing import principal as _principal
from twpcore.schema import ConfigErrors, ConfigProblem, Duration, Secret, setting, structure
from twpcore.server_side import ServerFacts, ServerSide, is_local_host
from twpcore.telephony.events import CONNECTION_STATES as _CONNECTION_STATES
from twpcore.telephony.events import EVENT_TYPES as _PBX_EVENT_TYPES
from twpcore.telephony.events import FORWARD_TYPES as _FORWARD_TYPES
from twpcore.telephony.events import CallSnapshot, PbxEvent
from twpcore.telephony.events import ForwardType as _ForwardType

API_VERSION: Final[str] = _API_VERSION
"""The plugin API version this kernel provides, ``"MAJOR.MINOR"``; declare the one you need in ``TWP_PLUGIN_API``."""

hookimpl: Final = _hookimpl
"""Marks a hook implementation: ``@hookimpl`` above ``def twp_register_directory_connectors(register): ...``."""

EVENT_SCHEMA_VERSION: Final[int] = _EVENT_SCHEMA_VERSION
"""The version of the event JSON shape: the ``"v"`` field of every event on the WebSocket and in webhook bodies."""

PBX_EVENT_TYPES: Final[tuple[str, ...]] = _PBX_EVENT_TYPES
"""The ``type`` values of a ``PbxEvent``: originated, delivered, established, held... cleared, monitor_lost."""

CONNECTION_STATES: Final[tuple[str, ...]] = _CONNECTION_STATES
"""The ``state`` values of a ``PbxEvent`` and a ``CallSnapshot``: initiated, alerting, connected, held, queued, failed, cleared."""

FORWARD_TYPES: Final[tuple[str, ...]] = _FORWARD_TYPES
"""The forwarding types of ``PbxDriver.set_forwarding``: immediate, busy, no_answer."""

ForwardType = _ForwardType
"""The type of a forwarding type argument: ``Literal["immediate", "busy", "no_answer"]``."""

PBX_CAPABILITIES: Final[frozenset[str]] = _kinds.PBX_CAPABILITIES
"""Capabilities a ``PbxDriver`` may declare: one per operation it implements (``make_call``, ``transfer``...)."""

DIRECTORY_CAPABILITIES: Final[frozenset[str]] = _kinds.DIRECTORY_CAPABILITIES
"""Capabilities a ``DirectoryConnector`` may declare: search, sync, private, push, test_connection, photo."""

AUTH_CAPABILITIES: Final[frozenset[str]] = _kinds.AUTH_CAPABILITIES
"""Capabilities an ``AuthMethod`` may declare: password, negotiate, username_only."""

SMS_CAPABILITIES: Final[frozenset[str]] = _kinds.SMS_CAPABILITIES
"""Capabilities an ``SmsProvider`` may declare: gsm7, ucs2, concatenation, delivery_receipts."""

MESSAGE_PLACEHOLDERS: Final[tuple[str, ...]] = _sms.MESSAGE_PLACEHOLDERS
"""The ``{placeholders}`` an SMS provider's request template may use (``message_values`` gives their values)."""

check_template = _sms.check_template
message_values = _sms.message_values
split_text = _sms.split_text
udh_concat = _sms.udh_concat
SkippedRecord = _directory.SkippedRecord
CalendarEvent = _calendars.CalendarEvent
"""One calendar event as a connector with the ``calendar`` capability reports it (start, end, subject, show_as, private, source_id)."""
CalendarChanges = _calendars.CalendarChanges
"""What ``DirectoryConnector.calendar_changes`` returns: events changed, ids deleted, the next state, ``full``."""
CalendarChangesBuilder = _calendars.CalendarChangesBuilder
"""Gathers a mailbox's changes item by item (``put``, ``delete``, ``skip``) into the ``CalendarChanges`` (``changes``)."""
user_value = _directory.user_value
show_value = _schema.show

DATABASE_URL: Final[ServerSide] = _server_side.DATABASE_URL
"""``server_side=DATABASE_URL`` for a SQLAlchemy URL option: network databases for every admin, local ones for super users."""

STORE: Final[str] = _server_side.STORE
"""The reason a ``ServerSide`` check gives for a value naming the TWP store's own database (refused to everyone)."""


def join_path(path: str, key: str | int) -> str:
    """The config path of ``key`` inside ``path``, as errors name it: ``plugins.webhook.url``, ``plugins.webhook.url[1]``."""
    return _schema.join(path, key)


def principal_of(request: web.Request) -> Principal:
    """Who is calling a route registered with ``twp_register_routes`` (``access`` other than ``public``)."""
    return _principal(request)


__all__ = [
    # version, hooks
    "API_VERSION",
    "hookimpl",
    "Register",
    "RegisterRoute",
    # what plugins receive
    "PluginContext",
    "InstanceContext",
    "KernelCalls",
    "UserInfo",
    "Clock",
    "NotRunning",
    "context_of",
    "PluginState",
    "InstanceState",
    # config
    "setting",
    "Secret",
    "Duration",
    "ServerSide",
    "ServerFacts",
    "DATABASE_URL",
    "STORE",
    "is_local_host",
    "EmptyConfig",
    "structure",
    "ConfigErrors",
    "ConfigProblem",
    "join_path",
    "show_value",
    # the four kinds
    "Kind",
    "PluginType",
    "NotReady",
    "AuthFailed",
    "NotSupported",
    "PbxDriver",
    "PBX_CAPABILITIES",
    "PbxEvent",
    "CallSnapshot",
    "PBX_EVENT_TYPES",
    "CONNECTION_STATES",
    "FORWARD_TYPES",
    "ForwardType",
    "DirectoryConnector",
    "DIRECTORY_CAPABILITIES",
    "SourceRecord",
    "ConnectorError",
    "SkippedRecord",
    "user_value",
    "CalendarEvent",
    "CalendarChanges",
    "CalendarChangesBuilder",
    "AuthMethod",
    "AUTH_CAPABILITIES",
    "AuthOutcome",
    "AuthResult",
    "LoginAttempt",
    "NegotiateStep",
    "NegotiateRefused",
    "SmsProvider",
    "SMS_CAPABILITIES",
    "SmsProviderConfig",
    "SmsMessage",
    "SmsSent",
    "SmsUnavailable",
    "SmsRejected",
    "MESSAGE_PLACEHOLDERS",
    "check_template",
    "message_values",
    "split_text",
    "udh_concat",
    # parameters
    "ParameterDefinition",
    "ParameterError",
    # events
    "Event",
    "CallEvent",
    "DeviceEvent",
    "PresenceEvent",
    "AdminEvent",
    "DirectoryEvent",
    "LinkEvent",
    "SmsEvent",
    "SystemEvent",
    "EVENT_SCHEMA_VERSION",
    # blocking libraries
    "run_blocking",
    "iterate_in_thread",
    "ProducerStopped",
    # logging what a peer sends (a PBX, a directory) without letting it flood the log
    "RepeatLimiter",
    # HTTP routes
    "ApiError",
    "Principal",
    "principal_of",
]
