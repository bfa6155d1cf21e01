"""exchangelib and requests, imported when an Exchange directory is first used rather than at plugin load.

Importing exchangelib costs about 250 ms and 20 MiB; a server that loads the plugin but
has no Exchange directory (or a ``twp plugins list``) should not pay for it.  The connector
reaches everything below through :func:`twp_exchange.connector.ews`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Configuration,
    Contact,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    OAuth2Credentials,
)
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorFolderNotFound,
    ErrorImpersonateUserDenied,
    ErrorInvalidSyncStateData,
    ErrorItemNotFound,
    ErrorNonExistentMailbox,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    EWSError,
    RateLimitError,
    ResponseMessageError,
    TransportError,
    UnauthorizedError,
)
from exchangelib.items import CalendarItem, DistributionList

_AUTHORIZATION = re.compile(r"""(['"]?Authorization['"]?\s*[:=]\s*['"]?)(Basic|Bearer|NTLM|Negotiate)?\s*[^'",}\s]+""", re.IGNORECASE)


class HideCredentials(logging.Filter):
    """exchangelib's DEBUG log shows each request's headers, Basic credentials and bearer tokens included: hide them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "uthorization" in text:
            record.msg, record.args = _AUTHORIZATION.sub(lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}***", text), ()
        return True


for _name in ("exchangelib.util", "exchangelib.util.xml", "exchangelib.protocol"):
    logging.getLogger(_name).addFilter(HideCredentials())


class ClientCredentials(OAuth2Credentials):
    """Client-credential OAuth with a configurable token endpoint (Microsoft's by default)."""

    def __init__(self, *, token_endpoint: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.token_endpoint = token_endpoint

    @property
    def token_url(self) -> str:
        return self.token_endpoint


__all__ = [
    "BASIC", "DELEGATE", "IMPERSONATION", "NTLM", "OAUTH2", "Account", "CalendarItem", "ClientCredentials", "Configuration", "Contact",
    "EWSDateTime", "EWSTimeZone", "ErrorInvalidSyncStateData",
    "Credentials", "DistributionList", "EWSError", "ErrorAccessDenied", "ErrorFolderNotFound", "ErrorImpersonateUserDenied",
    "ErrorItemNotFound", "ErrorNonExistentMailbox", "ErrorServerBusy", "ErrorTimeoutExpired", "RateLimitError",
    "ResponseMessageError", "TransportError", "UnauthorizedError", "requests",
]
