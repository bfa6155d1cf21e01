"""Registers the LDAP and Active Directory directory connectors with the TWP kernel."""

from __future__ import annotations

from twpcore.hookspecs import hookimpl

from twp_ldap.connector import ActiveDirectoryConnector, LdapConnector


@hookimpl
def twp_register_directory_connectors(register):  # type: ignore[no-untyped-def]
    register(LdapConnector)
    register(ActiveDirectoryConnector)


@hookimpl
def twp_register_auth_methods(register):  # type: ignore[no-untyped-def]
    from twp_ldap.auth import LdapAuth

    register(LdapAuth)
