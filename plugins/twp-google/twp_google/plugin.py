"""Registers the Google Workspace directory connector with the TWP kernel."""

from __future__ import annotations

from twpcore.hookspecs import hookimpl

from twp_google.connector import GoogleConnector


@hookimpl
def twp_register_directory_connectors(register):  # type: ignore[no-untyped-def]
    register(GoogleConnector)
