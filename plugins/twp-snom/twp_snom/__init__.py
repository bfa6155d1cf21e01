"""TWP PBX driver for Snom SIP phones: uaCSTA, action URLs, HTTP remote control."""

__version__ = "0.1.0"
