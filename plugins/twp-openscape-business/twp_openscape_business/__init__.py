"""TWP PBX drivers for Unify OpenScape Business / OpenScape Office and HiPath 3000 over CSTA phase III BER."""

__version__ = "0.1.0"
