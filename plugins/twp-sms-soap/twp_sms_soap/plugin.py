"""Entry point of the ``sms-soap`` plugin: registers the SOAP SMS provider type."""

from twpcore.hookspecs import hookimpl

from twp_sms_soap.provider import SoapProvider


@hookimpl
def twp_register_sms_providers(register):
    register(SoapProvider)
