"""TWP PBX driver for Unify OpenScape Voice over CSTA XML."""

__version__ = "0.1.0"
