"""Registers the Google Workspace directory connector with the TWP kernel."""

from __future__ import annotations

from twp_google.connector import GoogleConnector
from twpcore.plugin_api import DirectoryConnector, Register, hookimpl

TWP_PLUGIN_API = "1.2"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(GoogleConnector)
