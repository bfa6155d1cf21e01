"""Registers the Exchange / Office 365 directory connector with the TWP kernel."""

from __future__ import annotations

from twp_exchange.connector import ExchangeConnector
from twpcore.plugin_api import DirectoryConnector, Register, hookimpl

TWP_PLUGIN_API = "1.2"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(ExchangeConnector)
