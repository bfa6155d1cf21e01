"""The ``mivoice400`` PBX driver: Mitel MiVoice Office 400 over CSTA XML.

The prerequisites of the product this gateway re-imagines open TCP port 7001 on the PBX
for the MiVoice Office 400 ("MiVoice Office 400 : ouvrir le port TCP 7001 du PABX"), so
that is the default ``port``.  The system's CSTA interface is reserved to a configured
CTI user, so the link usually carries ``username`` and ``password``: the driver sends
them in the ECMA-354 session's ``applicationSpecificInfo`` (``userID``, ``password``),
and a refused session with credentials makes the instance ``auth_failed`` (the kernel
does not retry until the config changes) instead of retrying forever.  Everything else
is the CSTA toolkit's XML driver (``twp_csta.driver``, distribution ``twp-csta``).

Configured as::

    [pbx.links.office]
    driver = "mivoice400"
    company = "ACME"
    domain = "Office"
    host = "192.168.1.20"
    username = "twp"
    password = { env = "TWP_MIVOICE_PASSWORD" }
"""

from __future__ import annotations

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlConfig, CstaXmlDriver
from twpcore.plugin_api import PbxDriver, Register, hookimpl, setting

TWP_PLUGIN_API = "1.0"

DEFAULT_PORT = 7001
"""TCP port of the MiVoice Office 400 CSTA interface (prerequisites, "Ports à ouvrir")."""


@attrs.frozen(kw_only=True)
class MiVoice400Config(CstaXmlConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "mivoice400"``."""

    port: int = setting(DEFAULT_PORT, min=1, max=65535, help="TCP port of the MiVoice Office 400 CSTA interface (7001 by default)")
    capacity: int = setting(250, min=0, max=1_000_000, help="maximum devices this link supervises (guide 4.1)")


class MiVoice400Driver(CstaXmlDriver):
    """Mitel MiVoice Office 400 over CSTA XML."""

    type_name = "mivoice400"
    Config = MiVoice400Config
    capabilities = CSTA_CAPABILITIES
    description = "Mitel MiVoice Office 400 over CSTA XML, TCP 7001, CTI user log-in"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(MiVoice400Driver)
