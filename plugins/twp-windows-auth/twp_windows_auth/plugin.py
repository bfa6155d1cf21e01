"""Registers the ``WindowsSecurity`` auth method with the TWP kernel."""

from __future__ import annotations

from twpcore.hookspecs import hookimpl


@hookimpl
def twp_register_auth_methods(register):  # type: ignore[no-untyped-def]
    from twp_windows_auth.method import WindowsSecurity

    register(WindowsSecurity)
