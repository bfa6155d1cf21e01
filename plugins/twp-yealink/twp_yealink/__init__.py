"""TWP PBX driver for Yealink SIP phones: uaCSTA (v81+), action URLs (v73+), action URI remote control."""

__version__ = "0.1.0"
