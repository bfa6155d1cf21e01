"""TWP SMS provider for HTTP gateways: templated requests, status mapping, receipt callbacks."""

from twp_sms_http.provider import HttpConfig, HttpProvider

__all__ = ["HttpConfig", "HttpProvider"]
