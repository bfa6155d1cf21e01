"""Turning TOML tables into typed attrs objects, with errors a person can act on.

Config schemas are plain attrs classes.  ``setting()`` declares a field with its
default, bounds and help; ``structure()`` checks a table against the class and returns
an instance, or raises ``ConfigErrors`` listing every problem as
``<file>: <key.path>: expected <what>, got <value>`` with a hint where one helps.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Secret``, ``Duration``,
``Literal[...]``, ``X | None``, ``list[X]``, ``dict[str, X]`` and nested attrs classes.
Any ``str`` or ``Secret`` setting may be written ``{ env = "VAR" }`` to read it from the
environment.  A value whose key looks secret (``password``, ``api_key``...) or whose type
is ``Secret`` is never repeated in an error message, nor is a value read from the
environment.  ``setting(server_side=...)`` marks an option that reaches the server's own
resources (``twpcore.server_side``): only a super user or ``twp.toml`` may set it.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

MISSING = attrs.NOTHING
SECRET_KEY = re.compile(r"(passw|secret|(^|[_-])token$|api[_-]?key|private[_-]?key|credential|^key$|[_-]key$)", re.I)
"""Keys whose values are treated as secrets: redacted in output, never shown in errors."""


def looks_secret(key: str) -> bool:
    """Whether a config key (or the last part of a key path) names a secret."""
    last = re.split(r"[.\[]", key)[-1].strip('"]')
    return bool(SECRET_KEY.search(last))


class Secret:
    """A secret value: the real text is only reachable through ``reveal()``.

    In TOML a secret is written either as a string or, better, as ``{ env = "VAR" }``
    so the value stays out of the file.  ``repr`` and ``str`` never show it.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "inline"):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Duration(float):
    """A duration in seconds; TOML may say ``90``, ``"90s"``, ``"15m"``, ``"8h"`` or ``"2d"``."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@typing.runtime_checkable
class ServerSideRule(typing.Protocol):
    """What ``setting(server_side=...)`` takes besides a bool: a ``twpcore.server_side.ServerSide`` (defined there, above this module)."""

    def reaches(self, value: Any, facts: Any) -> str | None: ...


def setting(
    default: Any = MISSING,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    factory: Any = None,
    secret: bool = False,
    server_side: bool | ServerSideRule = False,
) -> Any:
    """Declare a config field: default (or required), help text and numeric bounds.

    ``server_side=True`` marks an option whose every value reaches the server's own
    resources (a file or directory path); a ``twpcore.server_side.ServerSide`` decides
    from the value (a database URL is server-side when it names a local file or socket).
    Only super users and ``twp.toml`` may set such an option (admin guide 15).
    """
    if not isinstance(server_side, (bool, ServerSideRule)):
        raise TypeError(f"setting(server_side=...): expected True, False or a twpcore.server_side.ServerSide, got {server_side!r}")
    meta = {"help": help, "min": min, "max": max, "secret": secret, "server_side": server_side}
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    return attrs.field(default=default, metadata=meta)


@attrs.frozen
class ConfigProblem:
    """One problem in a config file."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigErrors(Exception):
    """One or more config problems; ``str()`` lists them one per line."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def show(value: Any) -> str:
    """Render a received value for an error message, short and quoted like TOML."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return '"' + text.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def is_env(value: Any) -> bool:
    """Whether a raw config value is an ``{ env = "VAR" }`` reference."""
    return isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str)


HIDDEN_MIN_LENGTH = 4
"""Values shorter than this are not searched for in messages (they would garble them, and say little)."""


def env_values(value: Any) -> set[str]:
    """The values of the environment variables that ``{ env = "VAR" }`` references anywhere in ``value`` name."""
    if is_env(value):
        found = os.environ.get(value["env"])
        return {found} if found else set()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return set().union(*(env_values(v) for v in items)) if items else set()


def hide_values(text: str, values: Any) -> str:
    """``text`` with each of ``values`` (secrets, values read from the environment) replaced by ``***``."""
    for value in sorted((v for v in values if isinstance(v, str) and len(v) >= HIDDEN_MIN_LENGTH), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        key = '"' + key + '"'
    return f"{path}.{key}" if path else key


class _Structurer:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[ConfigProblem] = []
        self.hide = False
        """True while checking a secret value: errors then say its type, never the value."""
        self.revealed: set[str] = set()
        """Values read from the environment: never repeated in a message (a plugin's own check may quote them)."""

    def show(self, value: Any) -> str:
        if self.hide and not isinstance(value, (dict, list)):
            return f"a value of type {type(value).__name__} (not shown: it is a secret)"
        return show(value)

    def fail(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.source, path, hide_values(message, self.revealed)))

    def structure(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any] | None = None) -> Any:
        meta = meta or {}
        if not self.hide and (tp is Secret or meta.get("secret") or looks_secret(path)):
            self.hide = True
            try:
                return self.structure(tp, value, path, meta)
            finally:
                self.hide = False
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            if value is None:
                return None
            if len(non_none) == 1:
                return self.structure(non_none[0], value, path, meta)
            for alt in non_none:
                probe = _Structurer(self.source)
                result = probe.structure(alt, value, path, meta)
                if not probe.problems:
                    self.revealed |= probe.revealed
                    return result
            self.fail(path, f"expected {' or '.join(describe(a) for a in non_none)}, got {self.show(value)}")
            return None
        if origin is Literal:
            if value in args:
                return value
            choices = ", ".join(show(a) for a in args)
            hint = ""
            if isinstance(value, str):
                close = difflib.get_close_matches(value, [str(a) for a in args], n=1)
                if close:
                    hint = f' (did you mean "{close[0]}"?)'
            self.fail(path, f"expected one of {choices}, got {self.show(value)}{hint}")
            return None
        if origin in (list, tuple, frozenset, set):
            if not isinstance(value, list):
                self.fail(path, f"expected an array, got {self.show(value)}")
                return None
            item_tp = args[0] if args else Any
            items = [self.structure(item_tp, v, join(path, i)) for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else (frozenset(items) if origin is frozenset else items)
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected a table, got {self.show(value)}")
                return None
            val_tp = args[1] if len(args) == 2 else Any
            return {k: self.structure(val_tp, v, join(path, k)) for k, v in value.items()}
        if tp is Any:
            return value
        if attrs.has(tp):
            return self.structure_class(tp, value, path)
        if tp is Secret:
            return self.secret(value, path)
        if tp is Duration:
            return self.duration(value, path, meta)
        if tp is bool:
            if isinstance(value, bool):
                return value
            self.fail(path, f"expected true or false, got {self.show(value)}")
            return None
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return self.bounded(value, path, meta, "an integer")
            self.fail(path, f"expected {describe_bounded('an integer', meta)}, got {self.show(value)}")
            return None
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return self.bounded(float(value), path, meta, "a number")
            self.fail(path, f"expected {describe_bounded('a number', meta)}, got {self.show(value)}")
            return None
        if tp is str:
            if isinstance(value, str):
                return value
            if is_env(value):
                return self.env(value["env"], path)
            self.fail(path, f"expected a string, got {self.show(value)}")
            return None
        raise TypeError(f"config schema field {path} has an unsupported type {tp!r}")

    def bounded(self, value: float, path: str, meta: Mapping[str, Any], what: str) -> Any:
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(path, f"expected {describe_bounded(what, meta)}, got {self.show(value)}")
            return None
        return value

    def duration(self, value: Any, path: str, meta: Mapping[str, Any]) -> Duration | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        else:
            self.fail(path, f'expected a duration such as 30, "30s", "15m" or "8h", got {self.show(value)}')
            return None
        result = self.bounded(seconds, path, meta, "a duration in seconds")
        return None if result is None else Duration(result)

    def env(self, var: str, path: str) -> str | None:
        if var not in os.environ:
            self.fail(path, f'environment variable "{var}" is not set (from {{ env = "{var}" }}); export it, or write the value inline')
            return None
        self.revealed.add(os.environ[var])
        return os.environ[var]

    def secret(self, value: Any, path: str) -> Secret | None:
        if isinstance(value, str):
            return Secret(value)
        if is_env(value):
            var = value["env"]
            revealed = self.env(var, path)
            return None if revealed is None else Secret(revealed, source=f"env:{var}")
        self.fail(path, f'expected a string or {{ env = "VARIABLE" }}, got {self.show(value)}')
        return None

    def structure_class(self, cls: type, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path, f"expected a table, got {self.show(value)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in attrs.fields(cls)}
        known = {f.alias if f.alias else f.name: f for f in fields.values()}
        kwargs: dict[str, Any] = {}
        suggested: set[str] = set()
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(key, [k for k in known if k not in value], n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                suggested.update(close)
                allowed = ", ".join(sorted(known)) or "none"
                self.fail(join(path, key), f"unknown key{hint}; allowed keys here: {allowed}")
        for key, field in known.items():
            if key in value:
                kwargs[field.name] = self.structure(hints.get(field.name, Any), value[key], join(path, key), dict(field.metadata))
            elif field.default is MISSING and key not in suggested:  # a misspelt key already says it
                help_text = field.metadata.get("help")
                self.fail(join(path, key), "is required" + (f": {help_text}" if help_text else ""))
        if any(p.path.startswith(path) for p in self.problems):
            return None
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            self.fail(path, str(exc))
            return None


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(show(a) for a in typing.get_args(tp))
    if origin in (list, tuple, frozenset, set):
        return "an array"
    if origin is dict or attrs.has(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            Secret: "a secret", Duration: "a duration"}.get(tp, getattr(tp, "__name__", str(tp)))


def describe_bounded(what: str, meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")

    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    if lo is not None and hi is not None:
        return f"{what} {fmt(lo)}-{fmt(hi)}"
    if lo is not None:
        return f"{what} >= {fmt(lo)}"
    if hi is not None:
        return f"{what} <= {fmt(hi)}"
    return what


def structure(cls: type, value: Any, *, source: str = "", path: str = "") -> Any:
    """Check ``value`` against the attrs class ``cls``; return an instance or raise ``ConfigErrors``."""
    s = _Structurer(source)
    result = s.structure_class(cls, value, path)
    if s.problems:
        raise ConfigErrors(s.problems)
    return result


def field_docs(cls: type) -> list[dict[str, Any]]:
    """Describe a schema's fields (name, type, default, help, server-side or not) for docs, the CLI and the API."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in attrs.fields(cls):
        default: Any = None if f.default is MISSING else f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # attrs' stubs declare Factory a function; it is a class
            default = default.factory()
        out.append(
            {
                "name": f.alias or f.name,
                "type": describe_bounded(describe(hints.get(f.name, Any)), dict(f.metadata)),
                "required": f.default is MISSING,
                "default": "***" if isinstance(default, Secret) else default,
                "help": f.metadata.get("help", ""),
                "server_side": bool(f.metadata.get("server_side")),
            }
        )
    return out
