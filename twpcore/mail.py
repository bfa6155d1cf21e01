"""E-mail alerts (guide 9.1.5): missed calls and new voicemail messages, mailed through SMTP.

The notifier subscribes to the event bus.  A **missed call** is a ``call.cleared`` event
of an incoming call that was never connected (``answered_at`` is empty) at a device the
user owns; a lost monitor is not a missed call.  A **new voicemail message** is a
``device.voicemail`` event (``voicemail_event`` builds one), which a PBX driver or a
voicemail integration publishes on ``kernel.events``.

For each alert the user's parameters are resolved (user > group > domain > default):
nothing is sent unless ``AuthorizedEmailNotification`` and ``EmailMissedCalls`` /
``EmailVoicemail`` are Yes, the user has an e-mail address and ``smtp`` names a server.
``SmtpServerPort``, ``SmtpAuthUserName``, ``SmtpAuthPassword``, ``SmtpSecurity`` (auto,
starttls, tls, none), ``SmtpTlsVerify``, ``SmtpCaFile`` and ``SmtpSender`` say how to
reach it.  The message is written in the user's culture (French, English or German,
from ``twpcore/templates/mail/<language>.toml``).  ``smtplib`` is blocking, so each send
runs in a thread; a temporary failure (server down, a 4xx answer) is retried
``mail_retries`` times, then logged; alerts are not kept across a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import re
import smtplib
import socket
import ssl
import string
import time
import tomllib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.config import Config
from twpcore.events import Event, EventBus
from twpcore.parameters import ParameterRegistry
from twpcore.store import Store
from twpcore.store import schema as t

log = logging.getLogger(__name__)

VOICEMAIL_EVENT = "device.voicemail"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "mail"
LANGUAGES = ("en", "fr", "de")
SMTP_PARAMETERS = ("smtp", "SmtpServerPort", "SmtpAuthUserName", "SmtpAuthPassword", "SmtpSecurity", "SmtpTlsVerify", "SmtpCaFile", "SmtpSender")
ALERT_PARAMETER = {"missed_call": "EmailMissedCalls", "voicemail": "EmailVoicemail"}
PARAMETERS = (*SMTP_PARAMETERS, "AuthorizedEmailNotification", *ALERT_PARAMETER.values())


def voicemail_event(*, company_id: int, domain_id: int, device: str, caller: str | None = None, caller_name: str | None = None,
                    new_messages: int | None = None, user_ids: frozenset[int] = frozenset(), link: str = "") -> Event:
    """A ``device.voicemail`` event: a new message was left in the mailbox of ``device``.

    ``user_ids`` may stay empty: the notifier then mails the device's owner.
    """
    data = {"device": device, "caller": caller, "caller_name": caller_name, "new_messages": new_messages, "link": link}
    return Event(VOICEMAIL_EVENT, data, company_id, domain_id, user_ids)


def is_missed_call(event: Event) -> bool:
    """An incoming call cleared at the device without ever being connected there."""
    if event.type != "call.cleared":
        return False
    call = event.data.get("call") or {}
    if not isinstance(call, dict) or call.get("direction") != "incoming" or call.get("answered_at"):
        return False
    return event.data.get("cause") != "monitor_lost"


class MailError(Exception):
    """Sending an e-mail failed; ``temporary`` failures are retried."""

    def __init__(self, message: str, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


@attrs.frozen
class SmtpSettings:
    """How to reach the SMTP server, from a user's resolved parameters."""

    host: str
    port: int = 25
    username: str = ""
    password: str = attrs.field(default="", repr=False)
    security: str = "auto"
    verify: bool = True
    ca_file: str = ""
    sender: str = ""
    timeout: float = 20.0

    @classmethod
    def from_parameters(cls, values: dict[str, Any], timeout: float) -> SmtpSettings:
        return cls(values["smtp"].value.strip(), int(values["SmtpServerPort"].value), values["SmtpAuthUserName"].value,
                   values["SmtpAuthPassword"].value, values["SmtpSecurity"].value, values["SmtpTlsVerify"].as_bool(),
                   values["SmtpCaFile"].value.strip(), values["SmtpSender"].value.strip(), timeout)

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(
            f"parameter SmtpCaFile: cannot read {settings.ca_file!r} ({exc}); give a PEM file of CA certificates", temporary=False
        ) from None
    if not settings.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def send_blocking(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message over SMTP (blocking: run it in a thread).  Raises ``MailError``."""
    ctx = tls_context(settings) if settings.security != "none" else None
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=ctx)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except ssl.SSLCertVerificationError as exc:
        raise _untrusted(settings, exc) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot reach {settings.where}: {exc}", temporary=True) from None
    try:
        with client:
            client.ehlo()
            encrypted = settings.security == "tls"
            if settings.security in ("auto", "starttls"):
                if client.has_extn("starttls"):
                    client.starttls(context=ctx)
                    client.ehlo()
                    encrypted = True
                elif settings.security == "starttls":
                    raise MailError(f"{settings.where} does not offer STARTTLS; set parameter SmtpSecurity to tls (port 465), "
                                    "or to none on a trusted network only", temporary=False)
            if settings.username:
                if not encrypted and settings.security != "none":
                    raise MailError(f"{settings.where} offers no STARTTLS: logging in would send SmtpAuthPassword in clear text; "
                                    "use a server with TLS, or set SmtpSecurity to none to allow it", temporary=False)
                client.login(settings.username, settings.password)
            client.send_message(message)
    except MailError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise _untrusted(settings, exc) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"{settings.where}: {exc}; check SmtpSecurity and SmtpAuthUserName", temporary=False) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"{settings.where} refused SmtpAuthUserName {settings.username!r} and its password ({exc.smtp_code}); check both parameters",
            temporary=False,
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        address, (code, answer) = next(iter(exc.recipients.items()))
        text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        raise MailError(f"{settings.where} refused the recipient {address}: {code} {text}", temporary=400 <= code < 500) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise MailError(f"{settings.where} answered {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{settings.where}: {type(exc).__name__}: {exc}", temporary=True) from None


def _untrusted(settings: SmtpSettings, exc: ssl.SSLCertVerificationError) -> MailError:
    return MailError(f"{settings.where}: its TLS certificate is not trusted ({exc.verify_message}); set parameter SmtpCaFile to the PEM file of "
                     "its certificate authority (or, for a test server only, SmtpTlsVerify to No)", temporary=False)


# --------------------------------------------------------------------------- messages
_templates: dict[str, dict[str, Any]] = {}


def language_of(culture: str | None) -> str:
    """``fr-FR`` → ``fr``; a culture without a translation falls back to English."""
    lang = (culture or "").replace("_", "-").split("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def templates(lang: str) -> dict[str, Any]:
    if lang not in _templates:
        with open(TEMPLATES / f"{lang}.toml", "rb") as f:
            _templates[lang] = tomllib.load(f)
    return _templates[lang]


def render(kind: str, lang: str, values: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of an alert in a language (``string.Template`` placeholders)."""
    tpl = templates(lang)
    values = dict(values)
    when = values.pop("when", None)
    if isinstance(when, (int, float)):
        local = dt.datetime.fromtimestamp(when).astimezone()
        values["date"] = local.strftime(tpl["date_format"])
        values["time"] = local.strftime(tpl["time_format"])
    number, name = values.pop("caller_number", None), values.pop("caller_name", None)
    if number and name:
        values["caller"] = f"{name} ({number})"
    else:
        values["caller"] = name or number or tpl["unknown_caller"]
    known = bool(number or name)
    values["from_caller"] = string.Template(tpl["from_caller"]).safe_substitute(values) if known else tpl["from_unknown"]
    count = values.get("new_messages")
    values["count_line"] = string.Template(tpl["count_line"]).safe_substitute(values) if isinstance(count, int) else ""
    section = tpl[kind]
    subject = string.Template(section["subject"]).safe_substitute(values)
    body = string.Template(section["body"]).safe_substitute(values)
    return " ".join(subject.split()), re.sub(r"\n{3,}", "\n\n", body.strip()) + "\n"


def build_message(settings: SmtpSettings, to_name: str, to_address: str, subject: str, body: str, lang: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender or f"TWP <twp@{socket.getfqdn() or 'localhost'}>"
    msg["To"] = email.utils.formataddr((to_name, to_address)) if to_name else to_address
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid(domain="twp.invalid")
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to an alert
    msg.set_content(body)
    msg["Content-Language"] = lang  # after set_content, which resets the Content-* headers
    return msg


@attrs.frozen
class Alert:
    """One e-mail to send: to whom, how, what."""

    kind: str
    user_id: int
    address: str
    settings: SmtpSettings
    message: EmailMessage = attrs.field(eq=False, repr=False)


class MailNotifier:
    """Turns missed calls and voicemail events into e-mails."""

    def __init__(self, config: Config, parameters: ParameterRegistry, events: EventBus):
        from twpcore.default_plugins.notifications import load_options

        self.parameters = parameters
        """The SMTP and alert parameters (defined by the notifications plugin) are resolved per user."""
        self.events = events
        """Missed calls and voicemail events are read from here."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): users, devices and parameter values are read from it."""
        self.options, self.problems = load_options(config)
        self.enabled = False
        self.sent = 0
        """E-mails the SMTP server accepted since start."""
        self.failed = 0
        """Alerts given up (permanent error, or retries used up)."""
        self._sub: Any = None
        self._task: asyncio.Task | None = None
        self._sends: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(4)
        self._preparing = 0

    async def start(self) -> None:
        missing = [n for n in PARAMETERS if n not in self.parameters.definitions]
        if missing:
            log.info("e-mail alerts off: parameters %s are not defined (is the notifications plugin disabled?)", ", ".join(missing))
            return
        if self.problems:
            log.error("e-mail alerts off: %s", "; ".join(self.problems))
            return
        # Events of this node only: in a cluster the node serving the call's link sends the e-mail, once (docs/cluster.md).
        self._sub = self.events.subscribe(lambda e: e.origin is None and (e.type == VOICEMAIL_EVENT or is_missed_call(e)), name="e-mail alerts")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="e-mail alerts")
        self.enabled = True

    async def stop(self) -> None:
        self.enabled = False
        if self._sub is not None:
            self.events.unsubscribe(self._sub)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sends:
            # An alert already being sent may finish; its retries are abandoned.
            await asyncio.wait(self._sends, timeout=self.options.mail_timeout)
            for task in self._sends:
                task.cancel()
            await asyncio.gather(*self._sends, return_exceptions=True)

    async def _run(self) -> None:
        assert self.store is not None  # given by start
        store = self.store
        while True:
            event = await self._sub.get()
            if event.type == "system.resync":
                log.warning("e-mail alerts fell behind: %s events were dropped", event.data.get("dropped"))
                continue
            kind = "voicemail" if event.type == VOICEMAIL_EVENT else "missed_call"
            self._preparing += 1
            try:
                alerts = await store.run(self._prepare, kind, event)
            except Exception:  # one bad event must not stop alerts
                log.exception("e-mail alert for %s event %s could not be prepared", event.type, event.id)
                continue
            finally:
                self._preparing -= 1
            for alert in alerts:
                task = asyncio.get_running_loop().create_task(self._deliver(alert))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)

    def _prepare(self, conn: sa.Connection, kind: str, event: Event) -> list[Alert]:
        data = event.data
        user_ids = set(event.user_ids)
        if kind == "voicemail" and not user_ids and event.domain_id is not None:
            owner = conn.execute(
                sa.select(t.devices.c.user_id).where(t.devices.c.domain_id == event.domain_id, t.devices.c.number == str(data.get("device")))
            ).scalar()
            if owner is not None:
                user_ids.add(owner)
        call = data.get("call") or {}
        if kind == "missed_call":
            values = {"caller_number": call.get("remote"), "caller_name": call.get("remote_name"), "when": call.get("started_at") or event.at}
        else:
            values = {
                "caller_number": data.get("caller"),
                "caller_name": data.get("caller_name"),
                "when": event.at,
                "new_messages": data.get("new_messages"),
            }
        values["device"] = str(data.get("device") or "")
        alerts = []
        for user_id in sorted(user_ids):
            user = conn.execute(sa.select(t.users).where(t.users.c.id == user_id)).one_or_none()
            if user is None or not user.enabled or not user.email.strip():
                log.debug("no %s e-mail for user %s: unknown, disabled or without e-mail address", kind, user_id)
                continue
            params = self.parameters.resolve(conn, user_id, PARAMETERS)
            if not params["AuthorizedEmailNotification"].as_bool() or not params[ALERT_PARAMETER[kind]].as_bool():
                log.debug("no %s e-mail for user %s: AuthorizedEmailNotification or %s is No", kind, user.login, ALERT_PARAMETER[kind])
                continue
            settings = SmtpSettings.from_parameters(params, self.options.mail_timeout)
            if not settings.host:
                log.debug("no %s e-mail for user %s: parameter smtp is empty", kind, user.login)
                continue
            lang = language_of(user.culture)
            name = " ".join(x for x in (user.first_name, user.last_name) if x)
            subject, body = render(kind, lang, {**values, "first_name": user.first_name or user.login, "name": name or user.login})
            message = build_message(settings, name, user.email.strip(), subject, body, lang)
            alerts.append(Alert(kind, user_id, user.email.strip(), settings, message))
        return alerts

    async def _deliver(self, alert: Alert) -> None:
        async with self._slots:
            delay: float = self.options.mail_retry_delay
            for attempt in range(self.options.mail_retries + 1):
                try:
                    await asyncio.to_thread(send_blocking, alert.settings, alert.message)
                except MailError as exc:
                    last = attempt == self.options.mail_retries or not exc.temporary
                    if last:
                        self.failed += 1
                        log.error("%s e-mail to user %s not sent: %s%s", alert.kind, alert.user_id, exc,
                                  f" (after {attempt + 1} attempts)" if exc.temporary else "")
                        return
                    log.warning("%s e-mail to user %s: %s; new attempt in %.0f s", alert.kind, alert.user_id, exc, delay)
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                self.sent += 1
                log.info("%s e-mail sent to user %s via %s", alert.kind, alert.user_id, alert.settings.where)
                return

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every alert in progress is sent or given up (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        def idle() -> bool:
            return self._sub is None or (self._sub.queue.empty() and not self._preparing and not self._sends)

        while time.monotonic() < deadline:
            if idle():
                await asyncio.sleep(0.05)
                if idle():
                    return
            await asyncio.sleep(0.02)
