"""Entry point of the ``sms-soap`` plugin: registers the SOAP SMS provider type."""

from twp_sms_soap.provider import SoapProvider
from twpcore.plugin_api import Register, SmsProvider, hookimpl

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""


@hookimpl
def twp_register_sms_providers(register: Register[type[SmsProvider]]) -> None:
    register(SoapProvider)
