"""ldap3, imported when first used rather than when the plugin loads.

Importing ldap3 (with pyasn1 and its protocol tables) took about 0.2 s of every server
start on the benchmark machine (docs/benchmarks.md, "Start-up"), paid even by servers that
configure no LDAP directory and no LDAP login.  The connector and the auth method name
ldap3 through ``Deferred`` objects: the first attribute read imports the module (through
``importlib``, so two threads that race get the same module), later reads find it in
``sys.modules``.  Type checkers see the real modules (``if TYPE_CHECKING`` at each use).
"""

from __future__ import annotations

import importlib
from typing import Any


class Deferred:
    """A module imported on the first read of one of its attributes."""

    __slots__ = ("_module",)

    def __init__(self, module: str):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self._module), name)

    def __repr__(self) -> str:
        return f"<deferred module {self._module}>"
