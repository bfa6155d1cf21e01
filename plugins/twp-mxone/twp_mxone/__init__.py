"""TWP PBX driver for Mitel MiVoice MX-One over CSTA XML."""

__version__ = "0.1.0"
