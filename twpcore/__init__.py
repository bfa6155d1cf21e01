"""TWP: the kernel of an open-source gateway for business telephony."""

__version__ = "0.1.0"
