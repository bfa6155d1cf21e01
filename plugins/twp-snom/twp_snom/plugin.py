"""The ``snom`` PBX driver: Snom SIP phones supervised and controlled by TWP itself, on any SIP PBX.

Two paths, chosen from the phones' firmware (``firmware`` on the link) or forced with ``control``:

- **uaCSTA** from firmware 8.7.3.25 (the prerequisites: "Support du protocole UA-CSTA
  (gratuit) / Firmware minimum supporté : 8.7.3.25"): TWP opens a SIP dialog with each phone
  and sends CSTA XML in INFO (``twp_csta.uacsta``); the phone must have CSTA control enabled;
- **HTTP** before that: the phone's action URLs report its calls (Snom's runtime variables
  ``$remote``, ``$local``, ``$call-id``, ``$active_user``; wiki "Action URLs/Runtime
  Variables") and TWP drives the phone through its web server (``/command.htm?number=…`` to
  dial, ``?key=…`` to press a key; Snom wiki "Can I control my snom phone remotely").

Commands over HTTP (docs/sip-phones.md says which are documented and which inferred): dial
``number=<N>``; answer ``key=OFFHOOK`` (lifting the handset answers the ringing call:
inferred); hang up ``key=CANCEL`` ("e.g. a call can be terminated"); hold and retrieve
``key=F_HOLD`` (the hold key, pressed again to retrieve: inferred).

Configured as::

    [pbx.links.snom-paris]
    driver = "snom"
    company = "ACME"
    domain = "Paris"
    port = 7060                       # TCP port the phones reach (chosen when the link is created)
    firmware = "10.1.46.16"
    phones = { "201" = "10.0.0.21", "202" = "10.0.0.22" }
    http_username = "admin"
    http_password = { env = "SNOM_HTTP_PASSWORD" }
    action_url_secret = { env = "SNOM_ACTION_KEY" }
"""

from __future__ import annotations

import re
from typing import ClassVar

import attrs

from twp_csta.uacsta import UACSTA_CAPABILITIES
from twp_csta.uacsta.phone import Command, SipPhoneConfig, SipPhoneDriver
from twp_csta.uacsta.phone_http import ActionEvent
from twp_csta.uacsta.routes import register_phone_routes
from twpcore.plugin_api import PbxDriver, Register, RegisterRoute, hookimpl, setting

TWP_PLUGIN_API = "1.2"

UACSTA_FROM = (8, 7, 3, 25)
"""First Snom firmware with uaCSTA that TWP supports (prerequisites)."""

#: Event names in TWP's action URLs (the last path segment) → what they mean. One per field of
#: the phone's "Action URL Settings" page (Snom wiki "Web Interface/V8/Action URL Settings").
SNOM_ACTION_EVENTS: dict[str, ActionEvent] = {
    "incoming": ActionEvent("delivered"), "outgoing": ActionEvent("originated"), "connected": ActionEvent("established"),
    "disconnected": ActionEvent("cleared"), "missed": ActionEvent("missed"), "dnd_on": ActionEvent("dnd_on"),
    "dnd_off": ActionEvent("dnd_off"), "redirection_on": ActionEvent("forward_on"), "redirection_off": ActionEvent("forward_off"),
    "offhook": ActionEvent("none"), "onhook": ActionEvent("none"), "setup_finished": ActionEvent("none"),
    "registration": ActionEvent("none"),
}


def firmware_version(text: str) -> tuple[int, ...]:
    """``"8.7.3.25"`` (or ``"snomD785-SIP 10.1.46.16"``) → (8, 7, 3, 25); ValueError naming the value otherwise."""
    match = re.search(r"(\d+(?:\.\d+){1,3})\s*$", text.strip())
    if not match:
        raise ValueError(f'firmware: expected the Snom firmware version like "8.7.3.25", got {text!r}')
    return tuple(int(p) for p in match.group(1).split("."))


@attrs.frozen(kw_only=True)
class SnomConfig(SipPhoneConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "snom"``."""

    firmware: str = setting(help='firmware of the link\'s Snom phones ("8.7.3.25" or later: uaCSTA; older: action URLs and HTTP)')

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        firmware_version(self.firmware)


class SnomDriver(SipPhoneDriver):
    """Snom SIP phones: uaCSTA from 8.7.3.25, action URLs and HTTP remote control otherwise."""

    type_name = "snom"
    Config = SnomConfig
    capabilities = UACSTA_CAPABILITIES
    description = "Snom SIP phones: uaCSTA (CSTA XML in SIP INFO) from firmware 8.7.3.25, action URLs and HTTP remote control"
    vendor: ClassVar[str] = "snom"
    action_events: ClassVar[dict[str, ActionEvent]] = SNOM_ACTION_EVENTS

    commands: ClassVar[dict[str, Command]] = {
        "dial": ("/command.htm", {"number": "{number}"}), "answer": ("/command.htm", {"key": "OFFHOOK"}),
        "hang_up": ("/command.htm", {"key": "CANCEL"}), "hold": ("/command.htm", {"key": "F_HOLD"}),
        "retrieve": ("/command.htm", {"key": "F_HOLD"}), "keys": ("/command.htm", {"key": "{keys}"}),
    }

    @classmethod
    def uacsta_from_firmware(cls, firmware: str) -> bool:
        return firmware_version(firmware) >= UACSTA_FROM


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(SnomDriver)


@hookimpl
def twp_register_routes(register: RegisterRoute) -> None:
    register_phone_routes(register, SnomDriver)
