"""Parameters of the SMS service and of e-mail alerts (guide 9.1.5 and 9.1.9).

The SMTP parameters keep the guide's names (``smtp``, ``SmtpServerPort``,
``SmtpAuthUserName``, ``SmtpAuthPassword``); like every parameter they are set as a
server default and overridden per domain, group or user.  ``AuthorizeSms`` and
``AuthorizedEmailNotification`` are Caller features defined with the others in
``twpcore.default_plugins.parameters``.
"""

from __future__ import annotations

from typing import Any

import attrs

from twpcore.hookspecs import hookimpl
from twpcore.parameters import ParameterDefinition as P
from twpcore.schema import ConfigErrors, Duration, setting, structure

PLUGIN = "notifications"
"""This plugin's name: ``[plugins.notifications]`` holds the options below, and listing it in
``[plugins] disabled`` switches SMS sending and e-mail alerts off."""


@attrs.frozen
class NotificationOptions:
    """``[plugins.notifications]``: how the SMS outbox retries and how e-mail alerts are sent."""

    sms_retry_delay: Duration = setting(
        Duration(30), min=0.01, help="wait before the first retry of an SMS no provider could take; doubles at each attempt"
    )
    sms_retry_max_delay: Duration = setting(Duration(1800), min=0.01, help="longest wait between two attempts of one SMS")
    sms_max_attempts: int = setting(12, min=1, max=1000, help="attempts before an SMS is failed")
    sms_max_age: Duration = setting(Duration(86400), min=1, help="an SMS still not sent after this long is failed")
    sms_send_timeout: Duration = setting(Duration(30), min=0.1, help="longest a provider may take to accept one SMS")
    sms_poll_interval: Duration = setting(Duration(2), min=0.01, help="how often the outbox is checked for due messages and returning providers")
    mail_retries: int = setting(3, min=0, max=20, help="new attempts of an e-mail alert after a temporary failure (server down, 4xx answer)")
    mail_retry_delay: Duration = setting(Duration(30), min=0.01, help="wait before the first new attempt of an e-mail; doubles at each attempt")
    mail_timeout: Duration = setting(Duration(20), min=0.1, help="longest wait for the SMTP server at each step")


def load_options(config: Any) -> tuple[NotificationOptions, list[str]]:
    """The ``[plugins.notifications]`` table of a ``Config``, checked: (options, problems).

    With problems the options are the defaults, and the services that read them stay off.
    """
    raw = getattr(config, "plugin_options", {}).get(PLUGIN, {})
    try:
        return structure(NotificationOptions, raw, source=getattr(config, "source", ""), path=f"plugins.{PLUGIN}"), []
    except ConfigErrors as exc:
        return NotificationOptions(), [str(p) for p in exc.problems]

SMTP = [
    P("smtp", "", "SMTP server host name or address for e-mail alerts of missed calls and voicemail; empty: no e-mail (guide 9.1.5)", "Server"),
    P(
        "SmtpServerPort",
        "25",
        "SMTP server port: 25 or 587 with STARTTLS, 465 with SmtpSecurity = tls (guide 9.1.5)",
        "Server",
        "integer",
        expert=True,
    ),
    P("SmtpAuthUserName", "", "user name to log in to the SMTP server; empty: no login (guide 9.1.5)", "Server", expert=True),
    P("SmtpAuthPassword", "", "password to log in to the SMTP server (guide 9.1.5)", "Server", expert=True, secret=True),
    P(
        "SmtpSecurity",
        "auto",
        "auto: STARTTLS when the server offers it; starttls: STARTTLS required; tls: TLS from the first byte (port 465); none: plain text",
        "Server",
        "choice",
        expert=True,
        choices=("auto", "starttls", "tls", "none"),
    ),
    P("SmtpTlsVerify", "Yes", "check the SMTP server's TLS certificate (name and issuer); No only for a test server", "Server", "yesno", expert=True),
    P("SmtpCaFile", "", "PEM file of the certificate authorities trusted for the SMTP server; empty: the system's", "Server", expert=True),
    P("SmtpSender", "", 'From address of e-mail alerts, such as "TWP <twp@example.com>"; empty: twp@<this server\'s name>', "Server"),
]
ALERTS = [
    P(
        "EmailMissedCalls",
        "Yes",
        "Yes to e-mail the user of each missed call (needs AuthorizedEmailNotification and an e-mail address)",
        "Caller",
        "yesno",
    ),
    P(
        "EmailVoicemail",
        "Yes",
        "Yes to e-mail the user of each new voicemail message (needs AuthorizedEmailNotification and an e-mail address)",
        "Caller",
        "yesno",
    ),
]
SMS = [
    P("SmsMaxPerHour", "20", "SMS a user may send in any hour; 0 for no limit (guide 9.1.9)", "Caller", "integer"),
    P("SmsSender", "", "originator of the user's SMS (a number, or up to 11 letters and digits); empty: the provider's sender", "Server"),
]


@hookimpl
def twp_register_options(register):
    register(NotificationOptions)


@hookimpl
def twp_register_parameters(register):
    for d in SMTP + ALERTS + SMS:
        register(d)
