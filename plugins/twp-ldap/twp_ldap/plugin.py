"""Registers the LDAP and Active Directory directory connectors with the TWP kernel."""

from __future__ import annotations

from twp_ldap.connector import ActiveDirectoryConnector, LdapConnector
from twpcore.plugin_api import AuthMethod, DirectoryConnector, Register, hookimpl

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(LdapConnector)
    register(ActiveDirectoryConnector)


@hookimpl
def twp_register_auth_methods(register: Register[type[AuthMethod]]) -> None:
    from twp_ldap.auth import LdapAuth

    register(LdapAuth)
