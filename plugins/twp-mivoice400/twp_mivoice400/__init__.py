"""TWP PBX driver for Mitel MiVoice Office 400 over CSTA XML."""

__version__ = "0.1.0"
