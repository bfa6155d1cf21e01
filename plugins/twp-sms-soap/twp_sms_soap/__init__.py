"""TWP SMS provider for SOAP web services described by a WSDL (the guide's J2S provider)."""

from twp_sms_soap.provider import Operation, SoapConfig, SoapProvider, read_wsdl

__all__ = ["Operation", "SoapConfig", "SoapProvider", "read_wsdl"]
