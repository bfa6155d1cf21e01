"""Registers the ``WindowsSecurity`` auth method with the TWP kernel."""

from __future__ import annotations

from twpcore.plugin_api import AuthMethod, Register, hookimpl

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_auth_methods(register: Register[type[AuthMethod]]) -> None:
    from twp_windows_auth.method import WindowsSecurity

    register(WindowsSecurity)
