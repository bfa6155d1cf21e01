"""TWP SMS provider for SMPP 3.4 SMSCs (guide 9.1.9; prerequisites: SMPP port 2775)."""

from twp_smpp.provider import SmppConfig, SmppProvider

__all__ = ["SmppConfig", "SmppProvider"]
