"""The ``openscape-business`` and ``hipath3000`` PBX drivers: Unify's small and medium switches over CSTA phase III BER.

OpenScape Business (and OpenScape Office before it) and HiPath 3000 offer CSTA phase III
in ASN.1 BER (ECMA-269 services, ECMA-285 encoding) over TCP, per Unify's own pages
(wiki "OpenScape Business Interfaces", "HiPath 3000 open interfaces"; OpenScape Business
V1 sales information, "CSTA Interface").  ``docs/csta.md`` cites them.

**The port.**  Unify documents a default CSTA port per product: 8800 for OpenScape
Business (sales information V1: "CSTA Link ... at Port 8800") and OpenScape Office MX
(wiki: "Default port number is 8800"), 7001 for HiPath 3000 (wiki: "Default port number
for CSTA access is 7001").  The prerequisites of the product this gateway re-imagines
give 7001 for "OSO, OSV, OSB", adding that it is the default defined on the PBX "or
another one, as set up on the PBX".  We follow the vendor's documentation of each
product, which is the switch's own default: ``openscape-business`` listens by default on
8800, ``hipath3000`` on 7001; where an OpenScape Business was set up on 7001, as the
prerequisites suggest, set ``port = 7001``.

The framing (``hipath``: ``0x26`` then a 15-bit length with the top bit set) and the ACSE
association before CSTA come from our design notes, not from a document we could read
(Unify's CSTA interface manuals are for registered partners): both are options.

Configured as::

    [pbx.links.hq]
    driver = "openscape-business"
    company = "ACME"
    domain = "HQ"
    host = "10.0.0.30"
"""

from __future__ import annotations

from typing import Literal

import attrs

from twp_csta.driver import CSTA_CAPABILITIES
from twp_csta.driver_ber import CstaBerConfig, CstaBerDriver
from twpcore.plugin_api import PbxDriver, Register, hookimpl, setting

TWP_PLUGIN_API = "1.0"

OPENSCAPE_BUSINESS_PORT = 8800
"""Default CSTA port of OpenScape Business and OpenScape Office (Unify sales information / wiki)."""
HIPATH3000_PORT = 7001
"""Default CSTA port of HiPath 3000 (Unify wiki, "HiPath 3000 open interfaces")."""

_FRAMING_HELP = '"hipath": 0x26 + 15-bit length (default); "len2" or "tlv" if the switch frames otherwise'


@attrs.frozen(kw_only=True)
class OpenScapeBusinessConfig(CstaBerConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "openscape-business"``."""

    port: int = setting(OPENSCAPE_BUSINESS_PORT, min=1, max=65535,
                        help="TCP port of the CSTA interface (8800 by default, Unify's; 7001 where the switch was set up so)")
    framing: Literal["len2", "hipath", "tlv"] = setting("hipath", help=_FRAMING_HELP)


@attrs.frozen(kw_only=True)
class HiPath3000Config(CstaBerConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "hipath3000"``."""

    port: int = setting(HIPATH3000_PORT, min=1, max=65535, help="TCP port of the HiPath 3000 CSTA interface (7001 by default)")
    framing: Literal["len2", "hipath", "tlv"] = setting("hipath", help=_FRAMING_HELP)


class OpenScapeBusinessDriver(CstaBerDriver):
    """Unify OpenScape Business / OpenScape Office over CSTA phase III BER, TCP 8800."""

    type_name = "openscape-business"
    Config = OpenScapeBusinessConfig
    capabilities = CSTA_CAPABILITIES
    description = "Unify OpenScape Business / OpenScape Office over CSTA phase III BER (ECMA-285), TCP 8800"


class HiPath3000Driver(CstaBerDriver):
    """Unify (Siemens) HiPath 3000 over CSTA phase III BER, TCP 7001."""

    type_name = "hipath3000"
    Config = HiPath3000Config
    capabilities = CSTA_CAPABILITIES
    description = "Unify (Siemens) HiPath 3000 over CSTA phase III BER (ECMA-285), TCP 7001"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(OpenScapeBusinessDriver)
    register(HiPath3000Driver)
