"""TWP directory connectors for LDAP servers and Active Directory (guide 8.3 and 7.2.2).

Configure a directory with ``connector = "ldap"`` or ``connector = "active_directory"``;
the options are ``twp_ldap.connector.LdapConfig`` and ``ActiveDirectoryConfig``.
"""

from twp_ldap.connector import (
    AD_DEFAULT_FIELDS,
    AD_FILTER,
    LDAP_DEFAULT_FIELDS,
    ActiveDirectoryConfig,
    ActiveDirectoryConnector,
    LdapConfig,
    LdapConnector,
    format_guid,
    format_sid,
)

__all__ = [
    "AD_DEFAULT_FIELDS", "AD_FILTER", "LDAP_DEFAULT_FIELDS", "ActiveDirectoryConfig", "ActiveDirectoryConnector",
    "LdapConfig", "LdapConnector", "format_guid", "format_sid",
]
