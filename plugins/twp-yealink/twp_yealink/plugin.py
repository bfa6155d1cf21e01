"""The ``yealink`` PBX driver: Yealink SIP phones supervised and controlled by TWP itself, on any SIP PBX.

The prerequisites accept "any phone with firmware >= v81 supporting uaCSTA" and "any phone with
firmware >= v73 supporting action URLs" (minimum x.73.x.x); DECT is not supported.  A Yealink
firmware reads ``<model>.<version>.<x>.<y>`` (``66.86.0.15``): the second field is the version.
``firmware`` on the link picks the path (``control`` forces one):

- **uaCSTA** from v81: CSTA XML in SIP INFO (``twp_csta.uacsta``); the phone needs
  ``features.csta_control.enable = 1`` (it reboots to apply it; Yealink admin guide, "CSTA Control");
- **action URLs** from v73: the phone's GET requests report its calls (variables ``$remote``,
  ``$local``, ``$call_id``, ``$active_user``), and TWP drives it with **action URI** requests
  ``/servlet?key=…`` from an address in the phone's trusted list (``features.action_uri_limit_ip``);
  the phone asks "Allow remote control?" on the first request.

Action URI commands (Yealink admin guide, "Action URI"; docs/sip-phones.md says what is inferred):
dial ``key=number=<N>`` (inferred from the guide's "number=xxx" variable value); answer
``key=ASW:<call_id>``; hang up ``key=CANCEL:<call_id>``; hold ``key=HOLD:<call_id>``; retrieve
``key=UNHOLD:<call_id>``; any key ``key=OK``, ``key=F_TRANSFER`` ...

Configured as::

    [pbx.links.yealink-lyon]
    driver = "yealink"
    company = "ACME"
    domain = "Lyon"
    port = 7061
    firmware = "66.86.0.15"
    phones = { "301" = "10.1.0.31" }
    http_username = "admin"
    http_password = { env = "YEALINK_HTTP_PASSWORD" }
    action_url_secret = { env = "YEALINK_ACTION_KEY" }
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

UACSTA_FROM = 81
"""First Yealink firmware version with uaCSTA (prerequisites: "firmware >= v81")."""
ACTION_URL_FROM = 73
"""First Yealink firmware version with action URLs (prerequisites: "firmware >= v73", "x.73.x.x")."""

#: Event names in TWP's action URLs → what they mean; one per action-URL parameter of the phone
#: (``action_url.incoming_call``, ``action_url.outgoing_call``, ``action_url.call_established`` ...).
YEALINK_ACTION_EVENTS: dict[str, ActionEvent] = {
    "incoming_call": ActionEvent("delivered"), "outgoing_call": ActionEvent("originated"),
    "call_established": ActionEvent("established"), "call_terminated": ActionEvent("cleared"), "missed_call": ActionEvent("missed"),
    "reject_incoming_call": ActionEvent("cleared"), "open_dnd": ActionEvent("dnd_on"), "close_dnd": ActionEvent("dnd_off"),
    "open_always_fwd": ActionEvent("forward_on"), "close_always_fwd": ActionEvent("forward_off"), "off_hook": ActionEvent("none"),
    "on_hook": ActionEvent("none"), "setup_completed": ActionEvent("none"), "registered": ActionEvent("none"),
}


def firmware_version(text: str) -> int:
    """``"66.86.0.15"`` → 86 (the second field); ValueError naming the value otherwise."""
    match = re.search(r"(\d+)\.(\d+)\.\d+\.\d+\s*$", text.strip())
    if not match:
        raise ValueError(f'firmware: expected the Yealink firmware like "66.86.0.15" (model.version.x.y), got {text!r}')
    return int(match.group(2))


@attrs.frozen(kw_only=True)
class YealinkConfig(SipPhoneConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "yealink"``."""

    firmware: str = setting(help='firmware of the link\'s Yealink phones, e.g. "66.86.0.15" (v81+: uaCSTA; v73+: action URLs)')

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        version = firmware_version(self.firmware)
        if version < ACTION_URL_FROM:
            raise ValueError(f"firmware: {self.firmware} is version {version}; TWP needs Yealink firmware v{ACTION_URL_FROM} or later "
                             f"(action URLs; v{UACSTA_FROM} for uaCSTA): upgrade the phones")
        if self.control == "uacsta" and version < UACSTA_FROM:
            raise ValueError(f'control: "uacsta" needs Yealink firmware v{UACSTA_FROM} or later, the phones run v{version}; '
                             'use control = "auto" or "http"')


class YealinkDriver(SipPhoneDriver):
    """Yealink SIP phones: uaCSTA from v81, action URLs and action URI from v73."""

    type_name = "yealink"
    Config = YealinkConfig
    capabilities = UACSTA_CAPABILITIES
    description = "Yealink SIP phones: uaCSTA (CSTA XML in SIP INFO) from firmware v81, action URLs and action URI from v73"
    vendor: ClassVar[str] = "yealink"
    action_events: ClassVar[dict[str, ActionEvent]] = YEALINK_ACTION_EVENTS

    commands: ClassVar[dict[str, Command]] = {
        "dial": ("/servlet", {"key": "number={number}"}), "answer": ("/servlet", {"key": "ASW:{call_id}"}),
        "hang_up": ("/servlet", {"key": "CANCEL:{call_id}"}), "hold": ("/servlet", {"key": "HOLD:{call_id}"}),
        "retrieve": ("/servlet", {"key": "UNHOLD:{call_id}"}), "keys": ("/servlet", {"key": "{keys}"}),
    }

    @classmethod
    def uacsta_from_firmware(cls, firmware: str) -> bool:
        return firmware_version(firmware) >= UACSTA_FROM


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(YealinkDriver)


@hookimpl
def twp_register_routes(register: RegisterRoute) -> None:
    register_phone_routes(register, YealinkDriver)
