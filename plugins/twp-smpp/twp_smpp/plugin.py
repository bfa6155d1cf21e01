"""Entry point of the ``smpp`` plugin: registers the SMPP 3.4 SMS provider type."""

from twpcore.hookspecs import hookimpl

from twp_smpp.provider import SmppProvider


@hookimpl
def twp_register_sms_providers(register):
    register(SmppProvider)
