"""The ``openscape_voice`` PBX driver: Unify (Atos, Mitel) OpenScape Voice over CSTA XML.

OpenScape Voice speaks CSTA XML of ECMA-323 **edition 4**, so the driver writes that
edition and asks for it in the ECMA-354 session (a switch granting another edition
is followed; every edition is read).

The port is configurable and must be checked on the switch.  Our default, 1040, is the
default TCP port of the CSTA connection in Genesys' T-Server documentation for CSTA
("Link-tcp Section", option ``port``, default 1040:
https://docs.genesys.com/Documentation/TS/latest/TSCSTA/TSCSTALinkTCPSection).  The
prerequisites of the product this gateway re-imagines list TCP 7001 for "Siemens UNIFY
OSO, OSV, OSB": use ``port = 7001`` where the switch is set up that way.

Configured as::

    [pbx.links.osv]
    driver = "openscape_voice"
    company = "ACME"
    domain = "HQ"
    host = "osv.example.com"
"""

from __future__ import annotations

from typing import Literal

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlConfig, CstaXmlDriver
from twpcore.plugin_api import PbxDriver, Register, hookimpl, setting

TWP_PLUGIN_API = "1.0"

DEFAULT_PORT = 1040
"""Default CSTA TCP port (Genesys T-Server for CSTA, "Link-tcp Section"); configurable."""


@attrs.frozen(kw_only=True)
class OpenScapeVoiceConfig(CstaXmlConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "openscape_voice"``."""

    port: int = setting(DEFAULT_PORT, min=1, max=65535, help="TCP port of the OpenScape Voice CSTA interface (1040 by default; check the switch)")
    edition: Literal[3, 4, 5] = setting(4, help="ECMA-323 edition written; OpenScape Voice speaks edition 4")


class OpenScapeVoiceDriver(CstaXmlDriver):
    """Unify OpenScape Voice over CSTA XML, ECMA-323 edition 4."""

    type_name = "openscape_voice"
    Config = OpenScapeVoiceConfig
    capabilities = CSTA_CAPABILITIES
    description = "Unify OpenScape Voice over CSTA XML (ECMA-323 edition 4)"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(OpenScapeVoiceDriver)
