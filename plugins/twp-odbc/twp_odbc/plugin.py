"""Registers the ODBC directory connector with the TWP kernel."""

from __future__ import annotations

from twpcore.hookspecs import hookimpl

from twp_odbc.connector import OdbcConnector


@hookimpl
def twp_register_directory_connectors(register):  # type: ignore[no-untyped-def]
    register(OdbcConnector)
