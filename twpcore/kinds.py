"""The typed contracts of the four plugin kinds.

A plugin registers *types* (a class per PBX driver, directory connector, auth method or
SMS provider); the admin configures *instances* of them in ``twp.toml``.  One type
serves many instances: two ``[pbx.links.*]`` tables with ``driver = "mxone"`` make two
objects of the same class.

Every type declares:

- ``type_name``: the name used in config (``driver = "mxone"``);
- ``Config``: an attrs class; the instance's config table is validated against it
  before the instance starts (see ``twpcore.schema``);
- ``capabilities``: a frozenset of capability names from the kind's vocabulary;
- ``setup()`` / ``close()``: the lifecycle.  ``setup`` raises ``NotReady`` for a
  temporary problem (the kernel retries with backoff), ``AuthFailed`` when credentials
  are refused (no retry until the config changes), any other exception for an error.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.app import Kernel


class Kind(str, enum.Enum):
    """The plugin kinds, with the config table that configures their instances."""

    PBX_DRIVER = "pbx_driver"
    DIRECTORY_CONNECTOR = "directory_connector"
    AUTH_METHOD = "auth_method"
    SMS_PROVIDER = "sms_provider"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class NotReady(Exception):
    """A temporary failure: the kernel retries ``setup`` later (optionally after ``retry_after`` seconds)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class AuthFailed(Exception):
    """The remote system refused our credentials; the kernel does not retry until the config changes."""


@attrs.frozen
class EmptyConfig:
    """Config of a type that takes no options."""


@attrs.define(eq=False)
class InstanceContext:
    """What the kernel hands an instance: its name, a logger and the kernel itself."""

    name: str
    """The instance name from config (``paris`` for ``[pbx.links.paris]``)."""
    kind: Kind
    """Which kind of instance this is."""
    kernel: Kernel | None = None
    """The running kernel (store, events, parameters); ``None`` in ``twp config check``."""
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("twp.instance"))
    """A logger named after the instance."""


class PluginType:
    """Base of every registered type.  Subclass one of the four kind classes below."""

    kind: ClassVar[Kind]
    type_name: ClassVar[str]
    Config: ClassVar[type] = EmptyConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    def __init__(self, config: Any, context: InstanceContext):
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    async def setup(self) -> None:
        """Connect, log in, start background tasks.  Raise ``NotReady``, ``AuthFailed`` or any error."""

    async def close(self) -> None:
        """Release every resource; called on shutdown, reload, or before a retry."""


# Capability vocabularies.  A declared capability outside the vocabulary is refused at
# registration, so a typo never silently hides a feature.
PBX_CAPABILITIES = frozenset(
    {
        "monitor", "snapshot", "make_call", "answer", "hang_up", "hold", "retrieve",
        "consultation_call", "alternate", "reconnect", "transfer", "single_step_transfer",
        "conference", "deflect", "dtmf", "forwarding", "do_not_disturb", "subscribers",
    }
)
DIRECTORY_CAPABILITIES = frozenset({"search", "sync", "private", "push", "test_connection", "photo"})
AUTH_CAPABILITIES = frozenset({"password", "negotiate", "username_only"})
SMS_CAPABILITIES = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})


class PbxDriver(PluginType):
    """A PBX driver: speaks one PBX family's CTI protocol for a ``[pbx.links.<name>]`` instance."""

    kind = Kind.PBX_DRIVER
    vocabulary: ClassVar[frozenset[str]] = PBX_CAPABILITIES


class DirectoryConnector(PluginType):
    """A directory connector: pulls (or receives) contacts for a ``[directories.<name>]`` instance."""

    kind = Kind.DIRECTORY_CONNECTOR
    vocabulary: ClassVar[frozenset[str]] = DIRECTORY_CAPABILITIES


class AuthOutcome(str, enum.Enum):
    """What an auth method says of a login attempt."""

    ACCEPT = "accept"
    REJECT = "reject"
    PASS = "pass"


@attrs.frozen
class LoginAttempt:
    """A user's login attempt as the auth chain sees it."""

    login: str
    """The user name typed or carried by the request."""
    password: str | None
    """The password, when the client sent one."""
    user: Any
    """The stored user row (a mapping) matching ``login``, or ``None`` when unknown."""
    source: str = ""
    """The client address."""
    headers: Any = None
    """The HTTP request headers (for Negotiate and similar methods)."""


@attrs.frozen
class AuthResult:
    """An auth method's answer: the outcome, a reason for logs and the caller, and the user it accepted."""

    outcome: AuthOutcome
    reason: str = ""
    user: Any = None

    @classmethod
    def accept(cls, user: Any, reason: str = "") -> AuthResult:
        return cls(AuthOutcome.ACCEPT, reason, user)

    @classmethod
    def reject(cls, reason: str) -> AuthResult:
        return cls(AuthOutcome.REJECT, reason)

    @classmethod
    def passes(cls, reason: str = "") -> AuthResult:
        return cls(AuthOutcome.PASS, reason)


class AuthMethod(PluginType):
    """An auth method named in the ``AuthMethods`` parameter (``WindowsSecurity|TWS``).

    ``authenticate`` returns ACCEPT, REJECT (final: no weaker method is tried) or PASS
    (the method does not recognize the request; the next method is asked).
    """

    kind = Kind.AUTH_METHOD
    vocabulary: ClassVar[frozenset[str]] = AUTH_CAPABILITIES

    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        raise NotImplementedError


class SmsProvider(PluginType):
    """An SMS provider: sends text messages for a ``[sms.providers.<name>]`` instance."""

    kind = Kind.SMS_PROVIDER
    vocabulary: ClassVar[frozenset[str]] = SMS_CAPABILITIES


KIND_BASES: dict[Kind, type[PluginType]] = {
    Kind.PBX_DRIVER: PbxDriver,
    Kind.DIRECTORY_CONNECTOR: DirectoryConnector,
    Kind.AUTH_METHOD: AuthMethod,
    Kind.SMS_PROVIDER: SmsProvider,
}
