"""uaCSTA (ECMA TR/87): CSTA XML carried in a SIP dialog with each phone, and the phones' HTTP side.

| module | what it is |
|---|---|
| ``sip`` | ``SipEndpoint`` and ``PhoneDialog``: the SIP endpoint of a link and one INVITE dialog per phone (aiosipua) |
| ``driver`` | ``UaCstaConfig`` and ``UaCstaDriver``: the PBX driver whose switch is each phone |
| ``phone_http`` | action URLs (phone → TWP) as an event source and HTTP remote control (TWP → phone) |
"""

from twp_csta.uacsta.driver import UACSTA_CAPABILITIES, PhoneSession, UaCstaConfig, UaCstaDriver, parse_phone_address
from twp_csta.uacsta.sip import CSTA_CONTENT_TYPE, PhoneDialog, SipEndpoint, SipError, SipStats

__all__ = [
    "CSTA_CONTENT_TYPE", "UACSTA_CAPABILITIES", "PhoneDialog", "PhoneSession", "SipEndpoint", "SipError", "SipStats", "UaCstaConfig",
    "UaCstaDriver", "parse_phone_address",
]
