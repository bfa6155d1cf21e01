"""Entry point of the ``sms-http`` plugin: the HTTP SMS provider type and its receipt callback route."""

from twp_sms_http.provider import HttpProvider, receipt_callback
from twpcore.plugin_api import Register, RegisterRoute, SmsProvider, hookimpl

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""

RECEIPTS = "/api/v1/sms-http/{instance}/receipts"


@hookimpl
def twp_register_sms_providers(register: Register[type[SmsProvider]]) -> None:
    register(HttpProvider)


@hookimpl
def twp_register_routes(register: RegisterRoute) -> None:
    # Gateways call back without a TWP login: the instance's receipt_token is checked instead.
    register("POST", RECEIPTS, receipt_callback, access="public", summary="Delivery receipt from an HTTP SMS gateway (JSON or form; ?token=)")
    register("GET", RECEIPTS, receipt_callback, access="public", summary="Delivery receipt from an HTTP SMS gateway (query; ?token=)")
