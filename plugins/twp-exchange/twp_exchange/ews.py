"""exchangelib and requests, imported when an Exchange directory is first used rather than at plugin load.

Importing exchangelib costs about 250 ms and 20 MiB; a server that loads the plugin but
has no Exchange directory (or a ``twp plugins list``) should not pay for it.  The connector
reaches everything below through :func:`twp_exchange.connector.ews`.
"""

from __future__ import annotations

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
    OAuth2Credentials,
)
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorFolderNotFound,
    ErrorImpersonateUserDenied,
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
from exchangelib.items import DistributionList


class ClientCredentials(OAuth2Credentials):
    """Client-credential OAuth with a configurable token endpoint (Microsoft's by default)."""

    def __init__(self, *, token_endpoint: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.token_endpoint = token_endpoint

    @property
    def token_url(self) -> str:
        return self.token_endpoint


__all__ = [
    "BASIC", "DELEGATE", "IMPERSONATION", "NTLM", "OAUTH2", "Account", "ClientCredentials", "Configuration", "Contact",
    "Credentials", "DistributionList", "EWSError", "ErrorAccessDenied", "ErrorFolderNotFound", "ErrorImpersonateUserDenied",
    "ErrorItemNotFound", "ErrorNonExistentMailbox", "ErrorServerBusy", "ErrorTimeoutExpired", "RateLimitError",
    "ResponseMessageError", "TransportError", "UnauthorizedError", "requests",
]
