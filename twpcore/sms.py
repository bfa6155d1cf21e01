"""The kernel's SMS service (guide 9.1.9): checks, the persistent outbox, dispatch, receipts.

A user asks ``POST /api/v1/sms`` to send a text to a number or to a TWP user's mobile.
The service checks the ``AuthorizeSms`` parameter, turns the number into E.164 with the
region of the user's dialing plan (``phonenumbers``), refuses a text no provider of the
domain can carry, applies the ``SmsMaxPerHour`` limit, and writes the message to the
``sms_outbox`` table as ``queued``.  Nothing is sent from the request.

The dispatcher then hands each due message to the domain's providers in ``priority``
order (failover).  It first *claims* the row in its own transaction (``queued`` →
``sending`` with ``claimed_by`` and a lease), so two nodes, or a node and its own restart,
never hand the same message over twice.  A provider that raises ``SmsUnavailable``
sent nothing: the next one is tried, and when none could take it the message goes back
to ``queued`` with a growing delay.  A message found ``sending`` with an expired lease
was interrupted (crash) while a provider may have accepted it: it is failed with that
reason, never resent.  Delivery receipts move ``sent`` messages to ``delivered`` or
``failed``.

Statuses: ``queued``, ``sending``, ``sent``, ``delivered``, ``failed`` (with ``reason``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import string
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import phonenumbers
import sqlalchemy as sa

from twpcore.cluster.jobs import LOCAL_JOBS, Jobs
from twpcore.config import Config
from twpcore.dialing import DialingPlans
from twpcore.events import Event, EventBus
from twpcore.instances import InstanceManager
from twpcore.kinds import Kind, NotReady, SmsMessage, SmsProvider, SmsRejected, SmsSent, SmsUnavailable
from twpcore.parameters import ParameterRegistry
from twpcore.plugins import describe_exception
from twpcore.store import Store
from twpcore.store import schema as t

log = logging.getLogger(__name__)

STATUSES = ("queued", "sending", "sent", "delivered", "failed")
MAX_TEXT = 1600
"""Longest text accepted, in characters (ten concatenated UCS-2 parts is 670)."""
PARAMETERS = ("AuthorizeSms", "SmsMaxPerHour", "SmsSender")

# --------------------------------------------------------------------------- text
# GSM 03.38 default alphabet, by septet value; 0x1B escapes to the extension table.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
_GSM7_INDEX = {c: i for i, c in enumerate(GSM7_BASIC) if c != "\x1b"}
_GSM7_REVERSE = dict(enumerate(GSM7_BASIC))
_GSM7_EXT_REVERSE = {v: k for k, v in GSM7_EXTENSION.items()}
SINGLE = {"gsm7": 160, "ucs2": 70}
"""Units (septets, UTF-16 code units) of a single SMS."""
MULTI = {"gsm7": 153, "ucs2": 67}
"""Units of one part of a concatenated SMS (6 octets go to the UDH)."""


def gsm7_units(text: str) -> list[bytes] | None:
    """Each character as GSM 7-bit septets (one byte each, unpacked), or None if one has no GSM-7 form."""
    out = []
    for ch in text:
        if ch in _GSM7_INDEX:
            out.append(bytes((_GSM7_INDEX[ch],)))
        elif ch in GSM7_EXTENSION:
            out.append(bytes((0x1B, GSM7_EXTENSION[ch])))
        else:
            return None
    return out


def gsm7_encode(text: str) -> bytes:
    """The text as unpacked GSM-7 septets (SMPP ``data_coding`` 0); ``ValueError`` names a character outside the alphabet."""
    units = gsm7_units(text)
    if units is None:
        bad = next(ch for ch in text if ch not in _GSM7_INDEX and ch not in GSM7_EXTENSION)
        raise ValueError(f"character {bad!r} (U+{ord(bad):04X}) has no GSM 7-bit form")
    return b"".join(units)


def gsm7_decode(data: bytes) -> str:
    """Unpacked GSM-7 septets back to text."""
    out, escape = [], False
    for b in data:
        if escape:
            out.append(_GSM7_EXT_REVERSE.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(_GSM7_REVERSE.get(b & 0x7F, "?"))
    return "".join(out)


def first_non_gsm7(text: str) -> str | None:
    return next((ch for ch in text if ch not in _GSM7_INDEX and ch not in GSM7_EXTENSION), None)


def _ucs2_units(text: str) -> list[bytes]:
    return [ch.encode("utf-16-be") for ch in text]


def split_text(text: str, encoding: str) -> list[bytes]:
    """The text's payload per SMS part: one item when it fits a single SMS.

    GSM-7 payloads are unpacked septets, UCS-2 payloads UTF-16-BE; a character is never
    cut between two parts (an escaped GSM-7 character, a UTF-16 surrogate pair).  A
    provider adds the concatenation header (``udh_concat``) when there are several.
    """
    units = gsm7_units(text) if encoding == "gsm7" else _ucs2_units(text)
    if units is None:
        raise ValueError(f"the text cannot be written in {encoding}")
    size = (lambda u: len(u)) if encoding == "gsm7" else (lambda u: len(u) // 2)
    total = sum(size(u) for u in units)
    if total <= SINGLE[encoding]:
        return [b"".join(units)]
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for u in units:
        if used + size(u) > MULTI[encoding]:
            parts.append(b"".join(current))
            current, used = [], 0
        current.append(u)
        used += size(u)
    if current:
        parts.append(b"".join(current))
    return parts


def udh_concat(reference: int, total: int, seq: int) -> bytes:
    """The 6-octet user data header of part ``seq`` (1-based) of ``total`` (3GPP TS 23.040, IE 0x00)."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))


ENCODING_LABEL = {"gsm7": "GSM 7-bit", "ucs2": "UCS-2"}


@attrs.frozen
class TextPlan:
    """How one provider would carry a text: encoding and parts, or why it cannot."""

    encoding: str | None
    parts: int
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def plan_text(text: str, capabilities: frozenset[str], max_parts: int, provider: str = "the provider") -> TextPlan:
    """Pick the encoding a provider with these capabilities would use, count parts, and check its limit."""
    bad = first_non_gsm7(text)
    if bad is None and "gsm7" in capabilities:
        encoding = "gsm7"
    elif "ucs2" in capabilities:
        encoding = "ucs2"
    elif bad is not None:
        return TextPlan(None, 0, f"the text has a character outside the GSM 7-bit alphabet ({bad!r}) and {provider} sends GSM 7-bit only; remove it")
    else:
        return TextPlan(None, 0, f"{provider} declares neither the gsm7 nor the ucs2 capability")
    parts = len(split_text(text, encoding))
    if parts > max_parts:
        length = sum(len(u) for u in gsm7_units(text) or []) if encoding == "gsm7" else len(text.encode("utf-16-be")) // 2
        if max_parts == 1:
            limit = (
                f"{provider} sends single SMS only, at most {SINGLE[encoding]} {'GSM 7-bit characters' if encoding == 'gsm7' else 'UCS-2 characters'}"
            )
        else:
            limit = f"{provider} sends at most {max_parts} parts ({max_parts * MULTI[encoding]} characters)"
        return TextPlan(encoding, parts, f"the text ({length} {ENCODING_LABEL[encoding]} characters) needs {parts} SMS parts; {limit}; shorten it")
    return TextPlan(encoding, parts)


def plan_for(provider: SmsProvider, text: str, name: str = "") -> TextPlan:
    """``plan_text`` for a provider instance, with its capabilities and ``max_parts``."""
    return plan_text(text, provider.capabilities, provider.max_parts, f"provider {name}" if name else "the provider")


# --------------------------------------------------------------------------- provider templates
MESSAGE_PLACEHOLDERS = ("to", "to_digits", "text", "sender", "reference", "id", "parts", "encoding")
"""Placeholders every template-driven provider fills from the ``SmsMessage``."""


def message_values(message: SmsMessage) -> dict[str, str]:
    """The values of ``MESSAGE_PLACEHOLDERS`` for one message (a provider adds its secret)."""
    return {"to": message.to, "to_digits": message.to.lstrip("+"), "text": message.text, "sender": message.sender,
            "reference": message.reference, "id": str(message.id), "parts": str(message.parts), "encoding": message.encoding}


def check_template(where: str, value: Any, known: tuple[str, ...]) -> None:
    """Raise ValueError naming ``where`` when a template string (or any string in a table/list) is malformed
    or uses a placeholder not in ``known``."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_template(f"{where}.{k}", v, known)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_template(f"{where}[{i}]", v, known)
    elif isinstance(value, str):
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"{where}: {exc} in {value!r}; write a literal brace as {{{{ or }}}}") from None
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{where}: unknown placeholder {{{unknown[0]}}}; known: {', '.join('{' + p + '}' for p in known)}")


# --------------------------------------------------------------------------- numbers
class InvalidNumber(ValueError):
    """A number an SMS cannot go to; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_SMS_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    phonenumbers.PhoneNumberType.PAGER,
}
_TYPE_LABEL = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed-line",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll-free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost",
    phonenumbers.PhoneNumberType.VOIP: "VoIP",
    phonenumbers.PhoneNumberType.UAN: "universal access",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail access",
}
_POSSIBLE = {
    phonenumbers.ValidationResult.TOO_SHORT: "is too short for",
    phonenumbers.ValidationResult.TOO_LONG: "is too long for",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "has a country code unknown to",
    phonenumbers.ValidationResult.INVALID_LENGTH: "has a length that matches no number of",
}


def normalize_mobile(raw: str, region: str) -> str:
    """A mobile number in E.164 (``+33612345678``), or ``InvalidNumber`` saying why not.

    A number without ``+`` or an international prefix is read as a number of ``region``
    (the ISO country of the domain's dialing plan).
    """
    text = raw.strip()
    if not text:
        raise InvalidNumber("the number is empty")
    if len(text) > 40 or any(ch not in "+0123456789 .-()/" for ch in text):
        raise InvalidNumber(f'"{raw[:40]}" is not a phone number: only digits, spaces, . - ( ) / and a leading + are allowed')
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f'"{text}" is not a phone number ({exc._msg})') from None
    country = phonenumbers.region_code_for_country_code(number.country_code or 0)  # "ZZ" when unknown
    where = f"+{number.country_code} ({country})" if country != "ZZ" else f"+{number.country_code}"
    read_as = (
        ""
        if text.startswith("+")
        else f"; it was read as a number of {region} (your dialing plan): write a foreign number with + and its country code"
    )
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (phonenumbers.ValidationResult.IS_POSSIBLE, phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise InvalidNumber(f'"{text}" {_POSSIBLE.get(possible, "has a wrong length for")} numbers of {where}{read_as}')
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f'"{text}" is not a valid number of {where}{read_as}')
    kind = phonenumbers.number_type(number)
    if kind not in _SMS_TYPES:
        raise InvalidNumber(f'"{text}" is a {_TYPE_LABEL.get(kind, "non-mobile")} number; an SMS needs a mobile number')
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- service
class SmsError(Exception):
    """A refused SMS request; the API answers it as JSON with ``status``."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field, self.retry_after = status, error, detail, field, retry_after


@attrs.frozen
class Recipient:
    """Whom a message goes to, before the number is checked."""

    number: str
    """The number as stored or typed."""
    label: str
    """How errors name it: ``number``, ``user 12 (alice)``..."""
    field: str
    """The request field it came from."""
    user_id: int | None = None


RecipientResolver = Callable[[sa.Connection, Any, Any], Recipient]
"""``resolver(conn, principal, value) -> Recipient``; raise ``SmsError`` when the value names nobody the caller may reach."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def message_json(row: Any) -> dict[str, Any]:
    """A stored message as the API shows it."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return {
        "id": m["id"], "to": m["recipient"], "recipient_user_id": m["recipient_user_id"], "text": m["text"],
        "status": m["status"], "reason": m["reason"], "encoding": m["encoding"], "parts": m["parts"],
        "provider": m["provider"], "attempts": m["attempts"], "sender": m["sender"] or None,
        "user_id": m["user_id"], "company_id": m["company_id"], "domain_id": m["domain_id"],
        "created_at": _iso(m["created_at"]), "sent_at": _iso(m["sent_at"]), "delivered_at": _iso(m["delivered_at"]),
        "next_attempt_at": _iso(m["next_attempt_at"]) if m["status"] == "queued" else None,
    }


class Contacts(Protocol):
    """Where a directory contact's card is read: the directory service (``DirectoryService.contact``)."""

    async def contact(self, user_id: int, contact_id: int) -> dict[str, Any]: ...


class SmsService:
    """Owns the SMS outbox of one kernel: submission checks, the dispatcher and delivery receipts."""

    jobs: Jobs = LOCAL_JOBS
    """Whether this process dispatches the outbox now: always alone, one node at a time in a cluster (``Kernel`` sets it)."""

    def __init__(self, config: Config, instances: InstanceManager, parameters: ParameterRegistry, dialing_plans: DialingPlans,
                 events: EventBus, contacts: Contacts | None = None):
        from twpcore.default_plugins.notifications import load_options

        self.instances = instances
        """The configured SMS provider instances (``[sms.providers.*]``)."""
        self.parameters = parameters
        """The SMS parameters (defined by the notifications plugin), resolved per user."""
        self.dialing_plans = dialing_plans
        """A domain's region makes a national number international."""
        self.events = events
        """``sms.*`` events are published here."""
        self.contacts = contacts
        """Where the mobile of a ``contact`` recipient is read (None: contacts are not recipients)."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): the outbox."""
        self.options, self.problems = load_options(config)
        self.node = uuid.uuid4().hex[:16]
        """This kernel's name in ``claimed_by``."""
        self.resolvers: dict[str, RecipientResolver] = {"user_id": self._resolve_user}
        """How a request field names a recipient.  ``user_id`` is built in; the directory
        service adds ``contact`` (a directory contact's mobile) when it lands."""
        self.enabled = False
        self.off_reason = "the server is not started"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receipts: asyncio.Queue | None = None
        self._orphans: dict[tuple[str, str], tuple[bool, str, float]] = {}
        self._wake = asyncio.Event()
        self._receipt_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._last_ready: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------
    def bind_providers(self) -> None:
        """Become the receipt sink of every SMS provider instance (before their ``setup``)."""
        self._loop = asyncio.get_running_loop()
        self._receipts = asyncio.Queue()
        for (kind, _name), inst in self.instances.instances.items():
            if kind == Kind.SMS_PROVIDER and isinstance(inst.obj, SmsProvider):
                inst.obj.bind(self)

    async def start(self) -> None:
        missing = [n for n in PARAMETERS if n not in self.parameters.definitions]
        if missing:
            self.off_reason = "the notifications plugin is disabled"
            log.info("SMS service off: parameters %s are not defined (is the notifications plugin disabled?)", ", ".join(missing))
            return
        if self.problems:
            self.off_reason = "; ".join(self.problems)
            log.error("SMS service off: %s", self.off_reason)
            return
        if self._loop is None:
            self.bind_providers()
        self.enabled = True
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._dispatch_forever(), name="sms dispatcher"),
                       loop.create_task(self._receipts_forever(), name="sms receipts")]

    async def stop(self) -> None:
        """Let the message being handed over finish (its outcome is recorded), then stop."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(self._tasks[:1], timeout=self.options.sms_send_timeout + 5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.enabled = False
        self.off_reason = "the server is stopping"

    def _db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the SMS service has no store: the kernel has not started it")
        return self.store

    # -- providers ---------------------------------------------------------------
    def provider_instances(self) -> list[Any]:
        """Configured SMS provider instances that have an object (not disabled, not misconfigured)."""
        out = [inst for (kind, _n), inst in self.instances.instances.items()
               if kind == Kind.SMS_PROVIDER and isinstance(inst.obj, SmsProvider)]
        return sorted(out, key=lambda i: (i.obj.priority, i.spec.name))

    def candidates(self, company: str, domain: str) -> list[Any]:
        """A domain's provider instances in failover order.

        An instance with neither ``company`` nor ``domain`` serves every domain; with
        ``company`` only, every domain of that company; with both, that domain.
        """
        out = []
        for inst in self.provider_instances():
            c, d = inst.spec.company, inst.spec.domain
            if (c is None and d is None) or (c == company and (d is None or d == domain)):
                out.append(inst)
        return out

    @staticmethod
    def usable(inst: Any) -> bool:
        return inst.state == "ready" and bool(inst.obj.available)

    @staticmethod
    def describe(inst: Any) -> str:
        if inst.state == "ready" and not inst.obj.available:
            return f"{inst.spec.name}: not connected"
        return f"{inst.spec.name}: {inst.state}" + (f" ({inst.reason})" if inst.reason else "")

    # -- submission --------------------------------------------------------------
    def _resolve_user(self, conn: sa.Connection, who: Any, value: Any) -> Recipient:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SmsError(400, "bad_request", "user_id: expected a user id (integer)", "user_id")
        row = conn.execute(sa.select(t.users.c.id, t.users.c.login, t.users.c.mobile, t.domains.c.company_id)
                           .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(t.users.c.id == value)).one_or_none()
        if row is None or row.company_id not in who.companies:
            raise SmsError(404, "not_found", f"user {value} not found in your company", "user_id")
        if not row.mobile.strip():
            raise SmsError(422, "no_mobile", f"user {value} ({row.login}) has no mobile number; an administrator can add one to the user", "user_id")
        return Recipient(row.mobile, f"the mobile of user {value} ({row.login})", "user_id", row.id)

    async def _resolve_contact(self, who: Any, value: Any) -> Recipient:
        """A directory contact's mobile number, when the user may see the contact (guide 9.1.9)."""
        from twpcore.directory.service import DirectoryError

        if not isinstance(value, int) or isinstance(value, bool):
            raise SmsError(400, "bad_request", "contact: expected a contact id (integer) from a directory search", "contact")
        if who.is_admin:
            raise SmsError(403, "forbidden", "SMS are sent by users; administrators have no contacts", "contact")
        try:
            if self.contacts is None:
                raise DirectoryError(503, "unavailable", "no directory service runs on this server; contacts cannot receive SMS here")
            card = await self.contacts.contact(who.id, value)
        except DirectoryError as exc:
            raise SmsError(exc.status, exc.error, exc.detail, "contact") from None
        mobiles = [n["number"] for n in card.get("numbers", []) if n.get("type") == "mobile"]
        if not mobiles:
            raise SmsError(422, "no_mobile", f"contact {value} ({card.get('name') or '?'}) has no mobile number in the directory", "contact")
        return Recipient(mobiles[0], f"the mobile of contact {value} ({card.get('name') or '?'})", "contact")

    async def submit(self, who: Any, data: dict[str, Any], idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Check and queue a message; return (message, created).  A repeated ``idempotency_key`` returns the first message."""
        if not self.enabled:
            raise SmsError(503, "sms_disabled", f"SMS sending is off on this server: {self.off_reason}")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SmsError(400, "bad_request", "text: the message text is required", "text")
        if len(text) > MAX_TEXT:
            raise SmsError(400, "bad_request", f"text: {len(text)} characters; an SMS text may have at most {MAX_TEXT}", "text")
        targets = [k for k in ("number", *sorted(set(self.resolvers) | {"contact"})) if data.get(k) is not None]
        if len(targets) != 1:
            names = ", ".join(["number", *sorted(set(self.resolvers) | {"contact"})])
            raise SmsError(
                400,
                "bad_request",
                f"give exactly one recipient field: {names}; got {', '.join(targets) or 'none'}",
                targets[0] if targets else "number",
            )
        target = targets[0]
        contact = await self._resolve_contact(who, data["contact"]) if target == "contact" else None
        if target not in ("number", "contact") and target not in self.resolvers:
            raise SmsError(501, "not_implemented", f"sending to a {target} is not available yet on this server; send to its number", target)
        if target == "number" and not isinstance(data["number"], str):
            raise SmsError(400, "bad_request", "number: expected a string such as \"+33612345678\" or \"06 12 34 56 78\"", "number")
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 100):
            raise SmsError(400, "bad_request", "Idempotency-Key: expected 1-100 characters", "Idempotency-Key")
        now = utcnow()

        def run(conn: sa.Connection) -> tuple[dict[str, Any], bool]:
            o = t.sms_outbox
            user = conn.execute(
                sa.select(
                    t.users.c.id, t.users.c.domain_id, t.domains.c.company_id, t.domains.c.name.label("domain"), t.companies.c.name.label("company")
                )
                .join(t.domains, t.domains.c.id == t.users.c.domain_id)
                .join(t.companies, t.companies.c.id == t.domains.c.company_id)
                .where(t.users.c.id == who.id)
                .with_for_update(of=t.users)
            ).one()
            if idempotency_key is not None:
                prior = conn.execute(sa.select(o).where(o.c.user_id == who.id, o.c.idempotency_key == idempotency_key)).one_or_none()
                if prior is not None:
                    if prior.text != text:
                        raise SmsError(
                            409,
                            "idempotency_conflict",
                            f"Idempotency-Key {idempotency_key!r} was used for message {prior.id} with another text; use a new key for a new message",
                            "Idempotency-Key",
                        )
                    return message_json(prior), False
            params = self.parameters.resolve(conn, who.id, PARAMETERS)
            allowed = params["AuthorizeSms"]
            if not allowed.as_bool():
                where = "its built-in default" if allowed.source == "built-in" else allowed.source.replace("group:", "group ")
                raise SmsError(403, "sms_not_allowed", f"you may not send SMS: parameter AuthorizeSms is {allowed.value} for you (from {where}); "
                                                       "an administrator can set it to Yes for you, one of your groups or your domain (guide 9.1.8)")
            if target == "number":
                recipient = Recipient(data["number"], "number", "number")
            elif contact is not None:
                recipient = contact
            else:
                recipient = self.resolvers[target](conn, who, data[target])
            region = self.dialing_plans.get(conn, user.domain_id).settings.region
            try:
                e164 = normalize_mobile(recipient.number, region)
            except InvalidNumber as exc:
                raise SmsError(422, "invalid_number", f"{recipient.label}: {exc.reason}", recipient.field) from None
            insts = self.candidates(user.company, user.domain)
            if not insts:
                raise SmsError(503, "no_sms_provider", f"no SMS provider serves domain {user.company}/{user.domain}; an administrator adds an "
                                                       "[sms.providers.<name>] table with provider, company and domain (docs/sms-and-mail.md)")
            plans = [(inst, plan_for(inst.obj, text, inst.spec.name)) for inst in insts]
            fitting = [(inst, plan) for inst, plan in plans if plan.ok]
            if not fitting:
                raise SmsError(422, "text_not_sendable", "; ".join(plan.reason or "" for _, plan in plans), "text")
            limit = int(params["SmsMaxPerHour"].value)
            if limit > 0:
                since = now - dt.timedelta(hours=1)
                recent = (
                    conn.execute(sa.select(o.c.created_at).where(o.c.user_id == who.id, o.c.created_at > since).order_by(o.c.created_at))
                    .scalars()
                    .all()
                )
                if len(recent) >= limit:
                    oldest = _aware(recent[0]) or now
                    wait = max(1, int((oldest + dt.timedelta(hours=1) - now).total_seconds()) + 1)
                    raise SmsError(
                        429,
                        "rate_limited",
                        f"you sent {len(recent)} SMS in the last hour, the most parameter SmsMaxPerHour allows you ({limit}); try again in {wait} s",
                        retry_after=wait,
                    )
            first = fitting[0][1]
            ident = conn.execute(sa.insert(o).values(
                company_id=user.company_id, domain_id=user.domain_id, user_id=who.id, recipient=e164,
                recipient_user_id=recipient.user_id, sender=params["SmsSender"].value[:32], text=text, encoding=first.encoding, parts=first.parts,
                status="queued", attempts=0, next_attempt_at=now, idempotency_key=idempotency_key, created_at=now, updated_at=now,
            ).returning(o.c.id)).scalar_one()
            return message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one()), True

        message, created = await self._db().run(run)
        if created:
            log.info("sms %s queued by user %s to %s (%s parts)", message["id"], who.login, message["to"], message["parts"])
            self._publish(message)
            self._wake.set()
        return message, created

    # -- dispatching ---------------------------------------------------------------
    async def _dispatch_forever(self) -> None:
        while not self._stopping:
            try:
                async with self.jobs.once("sms-outbox") as mine:  # one node of a cluster dispatches (docs/cluster.md)
                    if mine:
                        await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the dispatcher must outlive a bad pass
                log.exception("SMS dispatch pass failed; trying again")
            if self._stopping:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.options.sms_poll_interval)
            except TimeoutError:
                pass

    async def dispatch_once(self) -> int:
        """One pass over due messages; returns how many were tried."""
        store = self._db()
        now = utcnow()
        for message in await store.run(self._sweep_interrupted, now):
            self._publish(message)
        # Receipts for messages another node was still recording (SMSCs may send a receipt
        # to any session of the account): look again until they match or expire.
        for (name, pid), (delivered, reason, seen) in list(self._orphans.items()):
            if time.monotonic() - seen > 1 and self._orphans.pop((name, pid), None) is not None:
                await self._apply_receipt(name, pid, delivered, reason, seen)
        ready = {i.spec.name for i in self.provider_instances() if self.usable(i)}
        came_back = bool(ready - self._last_ready)
        self._last_ready = ready
        rows = await store.run(self._due, now, came_back)
        tried = 0
        for row in rows:
            if self._stopping:
                break
            await self._attempt(row)
            tried += 1
        return tried

    def _sweep_interrupted(self, conn: sa.Connection, now: dt.datetime) -> list[dict[str, Any]]:
        o = t.sms_outbox
        rows = conn.execute(sa.select(o).where(o.c.status == "sending", o.c.claimed_until < now)).all()
        out = []
        for r in rows:
            reason = (f"interrupted while being handed to provider {r.provider or '?'} (server stopped or crashed); it may have been sent, "
                      "so it is not sent again; send a new message if it did not arrive")
            n = conn.execute(sa.update(o).where(o.c.id == r.id, o.c.status == "sending", o.c.claimed_until < now).values(
                status="failed", reason=reason, claimed_by=None, claimed_until=None, updated_at=now)).rowcount
            if n:
                log.warning("sms %s: %s", r.id, reason)
                out.append(message_json(conn.execute(sa.select(o).where(o.c.id == r.id)).one()))
        return out

    def _due(self, conn: sa.Connection, now: dt.datetime, everything: bool) -> list[Any]:
        o = t.sms_outbox
        sel = (sa.select(o, t.companies.c.name.label("company_name"), t.domains.c.name.label("domain_name"))
               .join(t.domains, t.domains.c.id == o.c.domain_id).join(t.companies, t.companies.c.id == o.c.company_id)
               .where(o.c.status == "queued"))
        if not everything:
            sel = sel.where(sa.or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now))
        return list(conn.execute(sel.order_by(o.c.id).limit(100)).all())

    def _backoff(self, attempts: int) -> float:
        base = self.options.sms_retry_delay * (2 ** max(0, attempts - 1))
        return min(self.options.sms_retry_max_delay, base) * random.uniform(0.8, 1.2)

    async def _attempt(self, row: Any) -> None:
        store = self._db()
        now = utcnow()
        insts = self.candidates(row.company_name, row.domain_name)
        fitting = [(inst, plan_for(inst.obj, row.text, inst.spec.name)) for inst in insts]
        fitting = [(inst, plan) for inst, plan in fitting if plan.ok]
        created = _aware(row.created_at) or now
        if not fitting:
            names = ", ".join(i.spec.name for i in insts) or "none"
            await self._finish(
                row.id,
                "failed",
                f"no SMS provider of domain {row.company_name}/{row.domain_name} can carry this text any more (providers: {names})",
                claimed=False,
            )
            return
        if (now - created).total_seconds() > self.options.sms_max_age:
            await self._finish(
                row.id, "failed", f"not sent within {int(self.options.sms_max_age)} s; last problem: {row.reason or 'none recorded'}", claimed=False
            )
            return
        usable = [(inst, plan) for inst, plan in fitting if self.usable(inst)]
        if not usable:
            reason = "waiting for a provider: " + "; ".join(self.describe(inst) for inst, _ in fitting)
            later = now + dt.timedelta(seconds=self._backoff(max(1, row.attempts)))
            await store.run(lambda c: c.execute(sa.update(t.sms_outbox).where(t.sms_outbox.c.id == row.id, t.sms_outbox.c.status == "queued")
                                                .values(reason=reason[:2000], next_attempt_at=later, updated_at=now)))
            return
        lease = self.options.sms_send_timeout * len(usable) + 30
        if not await store.run(self._claim, row.id, now, lease, usable[0][0].spec.name):
            return  # another node (or a cancel) got there first
        errors = []
        for inst, plan in usable:
            name = inst.spec.name
            message = SmsMessage(
                row.id, f"twp-{row.id}", row.recipient, row.text, row.sender or inst.obj.default_sender, plan.encoding or "gsm7", plan.parts
            )
            if inst.spec.name != usable[0][0].spec.name:
                await store.run(lambda c, n=name: c.execute(sa.update(t.sms_outbox).where(t.sms_outbox.c.id == row.id).values(provider=n)))
            try:
                sent = await asyncio.wait_for(inst.obj.send(message), self.options.sms_send_timeout)
            except (SmsUnavailable, NotReady) as exc:
                errors.append(f"{name}: {getattr(exc, 'reason', str(exc))}")
                log.info("sms %s: provider %s unavailable (%s); trying the next one", row.id, name, errors[-1])
                continue
            except SmsRejected as exc:
                await self._finish(row.id, "failed", f"provider {name} refused the message: {exc.reason}")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - "maybe sent": never resend
                what = "no answer in time" if isinstance(exc, TimeoutError) else describe_exception(exc)
                log.error("sms %s: provider %s failed (%s); not resent", row.id, name, what)
                await self._finish(row.id, "failed", f"provider {name}: {what}; it may have sent the message, so it is not sent again")
                return
            if not isinstance(sent, SmsSent):
                await self._finish(
                    row.id,
                    "failed",
                    f"provider {name} answered {sent!r} instead of SmsSent (plugin bug); it may have sent the message, so it is not sent again",
                )
                return
            async with self._receipt_lock:  # a receipt that beat this write is in _orphans by now
                message_row = await store.run(self._record_sent, row.id, name, sent, plan)
                early = [(pid, self._orphans.pop((name, pid))) for pid in sent.provider_ids if (name, pid) in self._orphans]
            if message_row is not None:
                log.info("sms %s sent by %s (%s)", row.id, name, ", ".join(sent.provider_ids) or "no id")
                self._publish(message_row)
                for pid, (delivered, reason, _) in early:
                    await self._apply_receipt(name, pid, delivered, reason)
            return
        attempts = row.attempts + 1
        summary = "; ".join(errors)
        if attempts >= self.options.sms_max_attempts:
            await self._finish(row.id, "failed", f"gave up after {attempts} attempts: {summary}")
            return
        later = now + dt.timedelta(seconds=self._backoff(attempts))

        def requeue(conn: sa.Connection) -> dict[str, Any] | None:
            o = t.sms_outbox
            n = conn.execute(
                sa.update(o)
                .where(o.c.id == row.id, o.c.status == "sending", o.c.claimed_by == self.node)
                .values(
                    status="queued",
                    reason=f"attempt {attempts}: {summary}"[:2000],
                    next_attempt_at=later,
                    claimed_by=None,
                    claimed_until=None,
                    updated_at=utcnow(),
                )
            ).rowcount
            return message_json(conn.execute(sa.select(o).where(o.c.id == row.id)).one()) if n else None

        message_row = await store.run(requeue)
        if message_row is not None:
            self._publish(message_row)

    def _claim(self, conn: sa.Connection, ident: int, now: dt.datetime, lease: float, provider: str) -> bool:
        o = t.sms_outbox
        return conn.execute(sa.update(o).where(o.c.id == ident, o.c.status == "queued").values(
            status="sending", claimed_by=self.node, claimed_until=now + dt.timedelta(seconds=lease), attempts=o.c.attempts + 1,
            provider=provider, updated_at=now)).rowcount == 1

    def _record_sent(self, conn: sa.Connection, ident: int, provider: str, sent: SmsSent, plan: Any) -> dict[str, Any] | None:
        o, p = t.sms_outbox, t.sms_outbox_parts
        now = utcnow()
        status = "delivered" if sent.delivered else "sent"
        n = conn.execute(sa.update(o).where(o.c.id == ident, o.c.status == "sending", o.c.claimed_by == self.node).values(
            status=status, provider=provider, reason=None, encoding=plan.encoding, parts=plan.parts, claimed_by=None, claimed_until=None,
            sent_at=now, delivered_at=now if sent.delivered else None, updated_at=now)).rowcount
        if not n:
            log.error("sms %s: sent by %s but the outbox row was no longer ours (lease expired?)", ident, provider)
            return None
        for i, pid in enumerate(sent.provider_ids, start=1):
            conn.execute(sa.insert(p).values(message_id=ident, part=i, provider=provider, provider_message_id=str(pid)[:200],
                                             status="delivered" if sent.delivered else "sent"))
        return message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one())

    async def _finish(self, ident: int, status: str, reason: str, *, claimed: bool = True) -> None:
        def run(conn: sa.Connection) -> dict[str, Any] | None:
            o = t.sms_outbox
            cond = [o.c.id == ident]
            cond += [o.c.status == "sending", o.c.claimed_by == self.node] if claimed else [o.c.status == "queued"]
            n = conn.execute(sa.update(o).where(*cond).values(status=status, reason=reason[:2000], claimed_by=None, claimed_until=None,
                                                              updated_at=utcnow())).rowcount
            return message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one()) if n else None

        row = await self._db().run(run)
        if row is not None:
            log.warning("sms %s %s: %s", ident, status, reason)
            self._publish(row)

    # -- receipts -------------------------------------------------------------------
    def on_receipt(self, provider: SmsProvider, provider_id: str, delivered: bool, reason: str = "") -> None:
        """A provider's delivery receipt; callable from any thread."""
        if self._loop is None or self._receipts is None:
            log.warning("delivery receipt %s from %s before the SMS service started; dropped", provider_id, provider.name)
            return
        item = (provider.name, str(provider_id), bool(delivered), str(reason or ""))
        try:
            self._loop.call_soon_threadsafe(self._receipts.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is gone
            log.warning("delivery receipt %s from %s after shutdown; dropped", provider_id, provider.name)

    async def _receipts_forever(self) -> None:
        assert self._receipts is not None
        while True:
            name, pid, delivered, reason = await self._receipts.get()
            try:
                await self._apply_receipt(name, pid, delivered, reason)
            except Exception:
                log.exception("delivery receipt %s from %s could not be applied", pid, name)

    async def _apply_receipt(self, name: str, pid: str, delivered: bool, reason: str, first_seen: float | None = None) -> None:
        def run(conn: sa.Connection) -> tuple[bool, dict[str, Any] | None]:
            o, p = t.sms_outbox, t.sms_outbox_parts
            parts = conn.execute(sa.select(p).where(p.c.provider == name, p.c.provider_message_id == pid)).all()
            if not parts:
                return False, None
            conn.execute(sa.update(p).where(p.c.provider == name, p.c.provider_message_id == pid).values(
                status="delivered" if delivered else "failed", reason=None if delivered else (reason or "not delivered")[:2000]))
            ident = parts[0].message_id
            statuses = conn.execute(sa.select(p.c.status, p.c.reason).where(p.c.message_id == ident)).all()
            msg = conn.execute(sa.select(o).where(o.c.id == ident)).one()
            now = utcnow()
            failed = [s for s in statuses if s.status == "failed"]
            if failed and msg.status in ("sent", "delivered"):
                conn.execute(
                    sa.update(o).where(o.c.id == ident).values(status="failed", reason=f"not delivered: {failed[0].reason}"[:2000], updated_at=now)
                )
            elif all(s.status == "delivered" for s in statuses) and msg.status == "sent":
                conn.execute(sa.update(o).where(o.c.id == ident).values(status="delivered", delivered_at=now, updated_at=now))
            else:
                return True, None
            return True, message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one())

        async with self._receipt_lock:
            found, message = await self._db().run(run)
            if not found:
                # The receipt beat the write of the "sent" row (or names nothing): keep it a while.
                cutoff = time.monotonic() - 300
                for key in [k for k, v in self._orphans.items() if v[2] < cutoff]:
                    del self._orphans[key]
                if first_seen is None or first_seen >= cutoff:
                    self._orphans[(name, pid)] = (delivered, reason, first_seen or time.monotonic())
                log.debug("delivery receipt %s from %s matches no message yet; kept", pid, name)
                return
        if message is not None:
            log.info("sms %s %s%s", message["id"], message["status"], f" ({message['reason']})" if message["reason"] else "")
            self._publish(message)

    # -- events and views -----------------------------------------------------------
    def _publish(self, message: dict[str, Any]) -> None:
        users = frozenset({message["user_id"]}) if message.get("user_id") else frozenset()
        data = {k: message[k] for k in ("id", "to", "status", "reason", "parts", "provider")}
        self.events.publish(Event(f"sms.{message['status']}", data, message["company_id"], message["domain_id"], users))

    async def messages(self, who: Any, *, status: str | None = None, user_id: int | None = None, company_id: int | None = None,
                   domain_id: int | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A user's own messages, or (admins) the messages of the companies they manage."""
        def run(conn: sa.Connection) -> dict[str, Any]:
            o = t.sms_outbox
            sel = sa.select(o)
            if who.is_admin:
                if not who.super_user:
                    sel = sel.where(o.c.company_id.in_(sorted(who.companies) or [-1]))
                for col, value in (("user_id", user_id), ("company_id", company_id), ("domain_id", domain_id)):
                    if value is not None:
                        sel = sel.where(o.c[col] == value)
            else:
                sel = sel.where(o.c.user_id == who.id)
            if status is not None:
                sel = sel.where(o.c.status == status)
            total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
            rows = conn.execute(sel.order_by(o.c.id.desc()).limit(limit).offset(offset)).all()
            return {"items": [message_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}

        return await self._db().run(run)

    def _visible(self, conn: sa.Connection, who: Any, ident: int) -> Any:
        row = conn.execute(sa.select(t.sms_outbox).where(t.sms_outbox.c.id == ident)).one_or_none()
        if row is None or (who.is_admin and not who.manages(row.company_id)) or (not who.is_admin and row.user_id != who.id):
            raise SmsError(404, "not_found", f"SMS {ident} not found")
        return row

    async def get(self, who: Any, ident: int) -> dict[str, Any]:
        return await self._db().run(lambda c: message_json(self._visible(c, who, ident)))

    async def cancel(self, who: Any, ident: int) -> dict[str, Any]:
        """Stop a queued message (its sender or an admin of its company)."""
        def run(conn: sa.Connection) -> dict[str, Any]:
            o = t.sms_outbox
            row = self._visible(conn, who, ident)
            n = conn.execute(sa.update(o).where(o.c.id == ident, o.c.status == "queued").values(
                status="failed", reason=f"cancelled by {who.type} {who.login}", updated_at=utcnow())).rowcount
            if not n:
                raise SmsError(409, "not_queued", f"SMS {ident} is {row.status}; only a queued message can be cancelled")
            return message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one())

        message = await self._db().run(run)
        self._publish(message)
        return message

    async def retry(self, who: Any, ident: int) -> dict[str, Any]:
        """Queue a failed message again (admins).  A message failed as "may have been sent" may then arrive twice."""
        def run(conn: sa.Connection) -> dict[str, Any]:
            o = t.sms_outbox
            row = self._visible(conn, who, ident)
            now = utcnow()
            n = conn.execute(sa.update(o).where(o.c.id == ident, o.c.status == "failed").values(
                status="queued", reason=f"queued again by admin {who.login} after: {row.reason or 'failure'}"[:2000], attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now)).rowcount
            if not n:
                raise SmsError(409, "not_failed", f"SMS {ident} is {row.status}; only a failed message can be queued again")
            conn.execute(sa.delete(t.sms_outbox_parts).where(t.sms_outbox_parts.c.message_id == ident))
            return message_json(conn.execute(sa.select(o).where(o.c.id == ident)).one())

        message = await self._db().run(run)
        self._publish(message)
        self._wake.set()
        return message
