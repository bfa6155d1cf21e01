"""TWP directory connector for Google Workspace (guide 8.9).

Configure a directory with ``connector = "google"``; the options are
``twp_google.connector.GoogleConfig``.
"""

from twp_google.connector import GoogleConfig, GoogleConnector, signed_assertion

__all__ = ["GoogleConfig", "GoogleConnector", "signed_assertion"]
