"""Registers the Exchange / Office 365 directory connector with the TWP kernel."""

from __future__ import annotations

from twpcore.hookspecs import hookimpl

from twp_exchange.connector import ExchangeConnector


@hookimpl
def twp_register_directory_connectors(register):  # type: ignore[no-untyped-def]
    register(ExchangeConnector)
