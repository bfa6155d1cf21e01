"""The twp-a5000 plugin: the ``a5000`` PBX driver and the ``a5000`` directory connector.

Configured as (guide 4.2's example, three centres)::

    [pbx.links.a5000-link0]
    driver = "a5000"
    company = "ACME"
    domain = "Paris"
    host = "10.0.1.10"            # the connection site 1.1
    username = "twp"
    password = { env = "TWP_A5000_PASSWORD" }
    capacity = 500
    sites = ["1.*"]
    csta_link = "a5000-csta"

    [pbx.links.a5000-csta]
    driver = "a5000"
    protocol = "csta"
    company = "ACME"
    domain = "Paris"
    host = "10.0.1.10"            # port 3211

``README.md`` of the package has the PBX-side set-up.
"""

from __future__ import annotations

from twp_a5000.directory import A5000Directory
from twp_a5000.driver import A5000Driver
from twpcore.plugin_api import DirectoryConnector, PbxDriver, Register, hookimpl

TWP_PLUGIN_API = "1.1"  # message_waiting events (plugin API 1.1)


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(A5000Driver)


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(A5000Directory)
