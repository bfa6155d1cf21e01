"""TWP directory connector for ODBC data sources (guide 8.4).

Configure a directory with ``connector = "odbc"``; the options are
``twp_odbc.connector.OdbcConfig``.
"""

from twp_odbc.connector import OdbcConfig, OdbcConnector, redact

__all__ = ["OdbcConfig", "OdbcConnector", "redact"]
