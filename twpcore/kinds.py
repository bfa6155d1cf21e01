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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import attrs

from twpcore.plugin_context import KernelCalls
from twpcore.schema import setting

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.plugin_context import RunningKernel


class InstanceState(enum.StrEnum):
    """The state of a configured instance, as ``twp plugins list`` and ``GET /api/v1/plugins`` show it."""

    DISABLED = "disabled"
    NOT_INSTALLED = "not_installed"
    CONFIG_ERROR = "config_error"
    CONFIGURED = "configured"
    STARTING = "starting"
    READY = "ready"
    RETRYING = "retrying"
    AUTH_FAILED = "auth_failed"
    SETUP_ERROR = "setup_error"


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


@attrs.define(eq=False, repr=False)
class InstanceContext(KernelCalls):
    """What the kernel hands an instance: its name and kind, a logger, and the calls of ``KernelCalls``.

    ``parameters``, ``user``, ``instance``, ``instances``, ``publish``, ``run_blocking``,
    ``clock`` and ``ready`` reach the running server; outside one (``twp config check``, a
    unit test building ``InstanceContext("test", Kind.DIRECTORY_CONNECTOR)``) the calls that
    need it raise ``NotRunning``.
    """

    name: str
    """The instance name from config (``paris`` for ``[pbx.links.paris]``)."""
    kind: Kind
    """Which kind of instance this is."""
    _kernel: RunningKernel | None = attrs.field(default=None, alias="kernel")
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("twp.instance"))
    """A logger named after the instance."""

    def __repr__(self) -> str:
        return f"<InstanceContext of {self.kind.label} {self.name}>"


class PluginType:
    """Base of every registered type.  Subclass one of the four kind classes below."""

    kind: ClassVar[Kind]
    type_name: ClassVar[str]
    Config: ClassVar[type] = EmptyConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    vocabulary: ClassVar[frozenset[str]] = frozenset()
    """The capabilities this kind knows (set by each kind class)."""
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
        # Plugin API 1.2 (issue 19): pick up a call ringing or queued at another device (ECMA-269 Directed
        # Pickup Call); call details known while the call rings (VTI-XML) rather than once answered (CSTA,
        # guide 9.1.7); message-waiting events of the device's mailbox (ECMA-269 Message Waiting).
        "directed_pickup", "details_at_ringing", "message_waiting",
    }
)
DIRECTORY_CAPABILITIES = frozenset({"search", "sync", "private", "push", "test_connection", "photo", "calendar"})
AUTH_CAPABILITIES = frozenset({"password", "negotiate", "username_only"})
SMS_CAPABILITIES = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})


class NotSupported(Exception):
    """The driver (or its PBX) cannot do this operation; the API answers 501 naming both."""

    def __init__(self, driver: str, operation: str):
        super().__init__(f'the {driver} driver does not support "{operation}"')
        self.driver, self.operation = driver, operation


class PbxDriver(PluginType):
    """A PBX driver: speaks one PBX family's CTI protocol for a ``[pbx.links.<name>]`` instance.

    The kernel decides which devices the link monitors (guide 4.1) and calls the
    operations below; the driver reports what happens with ``self.emit(PbxEvent)`` and
    the link's ups and downs with ``self.link_up()`` / ``self.link_down(reason)``.
    Every operation the driver does not override raises ``NotSupported``; declare the
    ones it does in ``capabilities``.  Call operations name the device acting and the
    PBX's call id of that device's connection.
    """

    kind = Kind.PBX_DRIVER
    vocabulary: ClassVar[frozenset[str]] = PBX_CAPABILITIES

    #: Maximum number of devices this link may monitor (guide 4.1); drivers read it from config.
    capacity: int = 0
    #: Sites ("1.*", "2.1") whose devices this link monitors first (guide 4.1); empty: any.
    sites: tuple[str, ...] = ()
    #: Device protocols (guide 3.3.4: "VTIXML", "CSTA"...) this link supervises; empty: any
    #: (plugin API 1.1). Supervision allocation gives the link only devices of these protocols.
    protocols: tuple[str, ...] = ()
    _sink: Any = None

    def bind(self, sink: Any) -> None:
        """Called by the kernel before ``setup``: where events and link changes go."""
        self._sink = sink

    def emit(self, event: Any) -> None:
        """Report a normalized ``twpcore.telephony.events.PbxEvent``."""
        if self._sink is not None:
            self._sink.on_event(self, event)

    def link_up(self) -> None:
        """Report that the link (re)connected: the kernel re-monitors devices and reconciles calls."""
        if self._sink is not None:
            self._sink.on_link_up(self)

    def link_down(self, reason: str) -> None:
        """Report that the link is lost; the driver keeps trying to reconnect."""
        if self._sink is not None:
            self._sink.on_link_down(self, reason)

    @property
    def connected(self) -> bool:
        return False

    def _unsupported(self, operation: str) -> NoReturn:
        raise NotSupported(self.type_name, operation)

    async def monitor(self, device: str) -> None:
        self._unsupported("monitor")

    async def stop_monitor(self, device: str) -> None:
        self._unsupported("monitor")

    async def snapshot(self, device: str) -> list[Any]:
        """The calls in progress at the device (``CallSnapshot`` values)."""
        return self._unsupported("snapshot")

    async def make_call(self, device: str, number: str) -> str:
        """Call ``number`` from ``device``; return the new call id."""
        return self._unsupported("make_call")

    async def answer(self, device: str, call_id: str) -> None:
        self._unsupported("answer")

    async def hang_up(self, device: str, call_id: str) -> None:
        self._unsupported("hang_up")

    async def hold(self, device: str, call_id: str) -> None:
        self._unsupported("hold")

    async def retrieve(self, device: str, call_id: str) -> None:
        self._unsupported("retrieve")

    async def consultation_call(self, device: str, call_id: str, number: str) -> str:
        """Hold ``call_id`` and call ``number``; return the consultation call id."""
        return self._unsupported("consultation_call")

    async def alternate(self, device: str, held_call_id: str, active_call_id: str) -> None:
        self._unsupported("alternate")

    async def reconnect(self, device: str, held_call_id: str, active_call_id: str) -> None:
        self._unsupported("reconnect")

    async def transfer(self, device: str, held_call_id: str, active_call_id: str) -> None:
        self._unsupported("transfer")

    async def single_step_transfer(self, device: str, call_id: str, number: str) -> None:
        self._unsupported("single_step_transfer")

    async def conference(self, device: str, held_call_id: str, active_call_id: str) -> None:
        self._unsupported("conference")

    async def deflect(self, device: str, call_id: str, number: str) -> None:
        self._unsupported("deflect")

    async def dtmf(self, device: str, call_id: str, digits: str) -> None:
        self._unsupported("dtmf")

    async def set_forwarding(self, device: str, forward_type: str, number: str | None) -> None:
        """Switch forwarding of ``forward_type`` (immediate, busy, no_answer) to ``number``, or off with None."""
        self._unsupported("forwarding")

    async def set_do_not_disturb(self, device: str, on: bool) -> None:
        self._unsupported("do_not_disturb")

    async def directed_pickup(self, device: str, call_id: str, requesting_device: str) -> str | None:
        """Take the call ``call_id`` ringing or queued at ``device`` to ``requesting_device`` (ECMA-269 Directed Pickup Call).

        Return the picked call's id at ``requesting_device`` when the PBX says it, else None.
        Declare the ``directed_pickup`` capability (plugin API 1.2).
        """
        return self._unsupported("directed_pickup")

    async def subscribers(self) -> list[dict[str, Any]]:
        """The PBX's subscriber list for users import (guide 7.2): one dict per subscriber.

        Each has ``number`` (the device number, as the PBX names it) and ``name`` (the
        display name, ``""`` if none); ``first_name``, ``last_name``, ``email`` and
        ``mobile`` may be given too.  Declare the ``subscribers`` capability.
        """
        return self._unsupported("subscribers")


@attrs.frozen
class SourceRecord:
    """One entry as a directory connector read it, before field mapping.

    ``fields`` maps the *source's* attribute or column names (``sn``, ``telephoneNumber``,
    ``LastName``) to a string, a list of strings, bytes (binary attributes) or None.
    The kernel applies the directory's field mapping and options (guide 8.1) to it.
    """

    id: str
    """A stable identifier in the source (DN, primary key, item id) used to report problems."""
    fields: dict[str, Any]


class ConnectorError(Exception):
    """A sync failed for a reason that is neither temporary nor a credentials problem."""


class DirectoryConnector(PluginType):
    """A directory connector type: a fresh object per sync and per connection test of a directory.

    For a sync the kernel calls ``setup()``, reads ``records(user)`` to the end, then
    ``close()``; for ``POST /directories/{id}/test``, ``setup()``, ``test_connection()``,
    ``close()``.  Before ``setup()`` it sets ``self.directory`` (id, name, type,
    domain_id, company_id).  ``records()`` yields a ``SourceRecord`` per entry of the
    source, or a ``SkippedRecord(id, reason)`` for an entry that cannot be read (counted
    as ignored and named in the sync report, like a record the mapping refuses).  The
    kernel reads every record first, maps fields (the connector's ``default_fields``,
    overridden by the directory's ``fields``), then writes the difference with the stored
    contacts in batches of 5,000 contacts, one transaction each; a connector that raises
    while being read (``NotReady`` for a server that is down or timing out, ``AuthFailed``
    for refused credentials, ``ConnectorError`` otherwise) makes the sync fail before
    anything is written, so the previous contacts stay.  ``docs/directories.md``
    ("Writing a connector") is the guide.
    """

    kind = Kind.DIRECTORY_CONNECTOR
    vocabulary: ClassVar[frozenset[str]] = DIRECTORY_CAPABILITIES
    default_fields: ClassVar[Mapping[str, str]] = {}
    """The connector's field mapping, TWP field → source field specification (guide 8.1), such as
    ``{"id": "uid", "last_name": "sn", "phone": "telephoneNumber"}``; a directory's ``fields`` override it
    field by field (``""`` drops one).  Empty: every source field named like a TWP field is used.
    ``GET /api/v1/directory-connectors`` shows it."""
    private_default_fields: ClassVar[Mapping[str, str] | None] = None
    """Another mapping for private (per-user) directories, when the per-user source names fields
    differently (Google's People API); ``None``: ``default_fields`` applies to them too."""

    def source_fields(self) -> list[str]:
        """Attribute or column names the connector knows it can read (for the admin UI); may be empty."""
        return []

    async def test_connection(self) -> str:
        """Reach the source and say what was found (``"slapd at ldap://…: 1,204 entries"``); raise on failure.

        The message is the ``message`` of the test's answer with ``state: "ready"``;
        ``NotReady`` answers ``retrying``, ``AuthFailed`` ``auth_failed``, anything else ``error``.
        """
        raise NotImplementedError(f"{self.type_name} has no connection test")

    def records(self, user: Any = None) -> Any:
        """An async iterator of ``SourceRecord`` (or ``SkippedRecord``); ``user`` is the user's row for private (per-user) directories."""
        raise NotImplementedError(f"{self.type_name} cannot list records")

    async def calendar_changes(self, mailbox: str, state: str | None) -> Any:
        """Capability ``calendar``: the changes of the calendar of ``mailbox`` since ``state`` (``None``: read it all).

        Returns a ``CalendarChanges`` (plugin API): the events created or changed, the ids
        deleted, the provider's next state, ``full=True`` when the events are the whole
        calendar (first read, or ``state`` expired and the connector read it all again).
        Called only for directories with ``calendar = true`` in their options, with
        ``calendar_every`` (seconds) as their schedule (docs/connectors-exchange-google.md).
        """
        raise NotImplementedError(f"{self.type_name} cannot read calendars")


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
    """An auth method's answer: the outcome, a reason for the caller, the user it accepted.

    ``audit`` is a more precise reason kept only in the audit log (never sent to the
    caller), e.g. why a password was refused.
    """

    outcome: AuthOutcome
    reason: str = ""
    user: Any = None
    audit: str = ""

    @classmethod
    def accept(cls, user: Any, reason: str = "") -> AuthResult:
        return cls(AuthOutcome.ACCEPT, reason, user)

    @classmethod
    def reject(cls, reason: str, *, audit: str = "") -> AuthResult:
        return cls(AuthOutcome.REJECT, reason, audit=audit)

    @classmethod
    def passes(cls, reason: str = "") -> AuthResult:
        return cls(AuthOutcome.PASS, reason)


@attrs.frozen
class NegotiateStep:
    """An auth method's answer to one ``Authorization: Negotiate`` token (RFC 4559)."""

    token: bytes | None = None
    """What to send back in ``WWW-Authenticate: Negotiate <token>``: the next leg, or the final mutual-auth token."""
    complete: bool = False
    """True when the security context is established; ``principal`` and ``login`` are then set."""
    principal: str = ""
    """The authenticated name as the protocol gives it (``alice@CORP.EXAMPLE.COM``, ``CORP\\alice``)."""
    login: str = ""
    """The TWP login it maps to."""
    domain: str | None = None
    """``Company/Domain`` to look ``login`` up in; ``None``: any domain."""
    protocol: str = ""
    """``kerberos`` or ``ntlm``."""


class NegotiateRefused(Exception):
    """A Negotiate token that is malformed (``status`` 400), refused (401) or cannot be handled now (503).

    ``reason`` is for the caller; ``audit`` (default: the reason) only for the audit log.
    """

    def __init__(self, reason: str, *, status: int = 401, principal: str = "", audit: str = ""):
        super().__init__(reason)
        self.reason, self.status, self.principal, self.audit = reason, status, principal, audit or reason


class AuthMethod(PluginType):
    """An auth method named in the ``AuthMethods`` parameter (``WindowsSecurity|TWS``).

    ``authenticate`` returns ACCEPT, REJECT (final: no weaker method is tried) or PASS
    (the method does not recognize the request; the next method is asked).  A method
    with the ``negotiate`` capability also serves ``POST /api/v1/auth/negotiate``
    through ``negotiate``.
    """

    kind = Kind.AUTH_METHOD
    vocabulary: ClassVar[frozenset[str]] = AUTH_CAPABILITIES

    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        raise NotImplementedError

    def negotiate_schemes(self) -> tuple[str, ...]:
        """HTTP schemes offered in ``WWW-Authenticate`` and accepted in ``Authorization``: ``Negotiate``, and ``NTLM``
        (raw NTLM tokens, for clients like ``curl --ntlm``) when the method takes NTLM."""
        return ("Negotiate",)

    async def negotiate(self, connection: Any, token: bytes) -> NegotiateStep:
        """Take one Negotiate token; ``connection`` names the client's TCP connection, to which
        multi-leg protocols (NTLM) bind their half-made context.  Raise ``NegotiateRefused``."""
        raise NotImplementedError(f"{self.type_name} does not speak HTTP Negotiate")


class SmsUnavailable(Exception):
    """The provider cannot take messages now and sent nothing: the kernel tries the next provider, then retries later."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SmsRejected(Exception):
    """The provider refused this message for good (bad destination, content refused): it is failed with this reason, not retried."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@attrs.frozen(kw_only=True)
class SmsProviderConfig:
    """Options every ``[sms.providers.<name>]`` table accepts; a provider's ``Config`` subclasses it."""

    priority: int = setting(100, min=0, max=1_000_000, help="failover order: the lowest priority of a domain's providers is tried first")
    sender: str = setting("", help="originator shown on phones: a number, or up to 11 letters and digits; the SmsSender parameter overrides it")
    max_parts: int = setting(6, min=1, max=255, help="most SMS parts one message may take with concatenation; a longer text is refused")


@attrs.frozen
class SmsMessage:
    """One SMS as the kernel hands it to a provider."""

    id: int
    """The outbox id; the same message is never handed over twice with the same id."""
    reference: str
    """A stable reference (``twp-<id>``) for providers that de-duplicate on a client reference."""
    to: str
    """Destination in E.164 form, with the ``+`` (``+33612345678``)."""
    text: str
    """The text, as the user wrote it."""
    sender: str
    """Originator; ``""`` means the provider's own default."""
    encoding: str
    """``gsm7`` or ``ucs2``: what the kernel chose from the text and the provider's capabilities."""
    parts: int
    """How many SMS parts the text takes in that encoding (``twpcore.sms.split_text`` gives them)."""


@attrs.frozen
class SmsSent:
    """A provider's answer when it accepted a message."""

    provider_ids: tuple[str, ...] = ()
    """The provider's message ids (one per part, or one for the whole message); delivery receipts name them."""
    delivered: bool = False
    """True when the provider already knows the message reached the phone."""


class SmsProvider(PluginType):
    """An SMS provider: sends text messages for a ``[sms.providers.<name>]`` instance.

    The kernel's SMS service (``twpcore.sms``) validates numbers, picks the encoding,
    counts parts and keeps the outbox; a provider only hands one message to its system:

    - ``send(message)`` returns ``SmsSent`` once the remote system accepted it; raises
      ``SmsUnavailable`` when it is certain nothing was sent (the next provider is tried,
      then the message waits and is retried), ``SmsRejected`` when the message can never
      pass; any other exception means "maybe sent": the message is failed, never resent;
    - ``available`` says whether the provider can send right now (a lost SMPP bind);
    - ``report_delivery(provider_id, delivered, reason)`` tells the kernel of a delivery
      receipt, from any thread.

    Capabilities: ``gsm7`` and/or ``ucs2`` (alphabets it sends), ``concatenation`` (long
    texts as several parts, up to ``Config.max_parts``) and ``delivery_receipts``.
    """

    kind = Kind.SMS_PROVIDER
    vocabulary: ClassVar[frozenset[str]] = SMS_CAPABILITIES
    Config: ClassVar[type] = SmsProviderConfig
    _sink: Any = None

    def bind(self, sink: Any) -> None:
        """Called by the kernel before ``setup``: where delivery receipts go."""
        self._sink = sink

    @property
    def available(self) -> bool:
        return True

    @property
    def priority(self) -> int:
        return int(getattr(self.config, "priority", 100))

    @property
    def max_parts(self) -> int:
        """Most parts one message may take: 1 without ``concatenation``."""
        if "concatenation" not in self.capabilities:
            return 1
        return int(getattr(self.config, "max_parts", 6))

    @property
    def default_sender(self) -> str:
        return str(getattr(self.config, "sender", "") or "")

    async def send(self, message: SmsMessage) -> SmsSent:
        raise NotImplementedError

    def report_delivery(self, provider_id: str, delivered: bool, reason: str = "") -> None:
        """Report a delivery receipt for one of the ids ``send`` returned (thread-safe)."""
        if self._sink is not None:
            self._sink.on_receipt(self, provider_id, delivered, reason)


KIND_BASES: dict[Kind, type[PluginType]] = {
    Kind.PBX_DRIVER: PbxDriver,
    Kind.DIRECTORY_CONNECTOR: DirectoryConnector,
    Kind.AUTH_METHOD: AuthMethod,
    Kind.SMS_PROVIDER: SmsProvider,
}
