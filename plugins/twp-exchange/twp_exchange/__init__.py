"""TWP directory connector for Exchange 2010+ and Office 365 over EWS (guide 8.7).

Configure a directory with ``connector = "exchange"``; the options are
``twp_exchange.connector.ExchangeConfig``.
"""

from twp_exchange.connector import ExchangeConfig, ExchangeConnector, parse_connection_string

__all__ = ["ExchangeConfig", "ExchangeConnector", "parse_connection_string"]
