"""The CSTA driver test kit: the conformance suite any CSTA driver runs against the PBX simulator.

A driver's tests subclass ``DriverConformance`` (one scenario per capability, through the
HTTP API and the WebSocket, as a user sees it); ``start_lab`` starts a kernel with one
link to a simulator, a tenant and users on their own; ``sim_config_for`` sets a
simulator up like a driver's defaults; ``EventStream`` reads ``/api/v1/events`` (``event_stream`` opens one).  It runs
on TWP's pytest kit (``twp_app``, entry point ``pytest11: twp``), which needs no set-up.
"""

from twp_csta.testing.conformance import (
    DIALED_EXTERNAL,
    EXTERNAL,
    FAST_LINK_OPTIONS,
    FAST_SIM_OPTIONS,
    LAB_USERS,
    DriverConformance,
    EventStream,
    Lab,
    admin_client,
    driver_class,
    event_stream,
    renamed_driver,
    sim_config_for,
    start_lab,
    tenant_lab,
    user_client,
)

__all__ = [
    "DIALED_EXTERNAL",
    "EXTERNAL",
    "FAST_LINK_OPTIONS",
    "FAST_SIM_OPTIONS",
    "LAB_USERS",
    "DriverConformance",
    "EventStream",
    "Lab",
    "admin_client",
    "driver_class",
    "event_stream",
    "renamed_driver",
    "sim_config_for",
    "start_lab",
    "tenant_lab",
    "user_client",
]
