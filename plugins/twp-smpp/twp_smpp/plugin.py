"""Entry point of the ``smpp`` plugin: registers the SMPP 3.4 SMS provider type."""

from twp_smpp.provider import SmppProvider
from twpcore.plugin_api import Register, SmsProvider, hookimpl

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_sms_providers(register: Register[type[SmsProvider]]) -> None:
    register(SmppProvider)
