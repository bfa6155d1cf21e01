"""TWP PBX drivers for Alcatel-Lucent OmniPCX Enterprise and OmniPCX Office over CSTA BER."""

__version__ = "0.1.0"
