"""Application parameters: named settings with a default overridden per domain, group or user.

Plugins declare parameters with ``twp_register_parameters(register)``; admins set values
through the API.  Resolution for a user (guide 6.1, 9.1.8, 10.2), first match wins:

1. a value set on the **user**;
2. a value set on one of the user's **groups**: when several of the user's groups carry
   a value, the group with the lowest ``priority`` number wins, and among equal
   priorities the group created first (lowest id) wins;
3. a value set on the user's **domain**;
4. a value set as the server-wide **default** (super users only);
5. the parameter's **built-in** default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

import attrs
import sqlalchemy as sa

from twpcore.store import schema as t

ParameterKind = Literal["text", "yesno", "integer", "time", "choice", "methods"]
SCOPES = ("default", "domain", "group", "user")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
YES = ("yes", "true", "1", "y", "on")
NO = ("no", "false", "0", "n", "off")


class ParameterError(ValueError):
    """A parameter value or definition is not acceptable; the message names it and says why."""

    def __init__(self, message: str, field: str = "value"):
        super().__init__(message)
        self.field = field


@attrs.frozen
class ParameterDefinition:
    """A parameter as a plugin declares it."""

    name: str
    """Name as admins search for it (``AuthMethods``, ``AuthorizeSms``)."""
    default: str
    """Built-in default value, as text."""
    description: str = ""
    """One sentence for admins."""
    application: str = "Server"
    """Where the guide files it: Server, Caller, Alerter, System..."""
    kind: ParameterKind = "text"
    """How values are checked: text, yesno, integer, time (HH:MM), choice, methods (A|B)."""
    expert: bool = False
    """Only shown in expert mode (guide 10.2)."""
    choices: tuple[str, ...] = ()
    """Allowed values for ``choice``; allowed names for ``methods``."""
    secret: bool = False
    """Never shown back in API output (passwords)."""

    def normalize(self, value: Any) -> str:
        """Check a value and return its stored text form, or raise ParameterError."""
        if isinstance(value, bool):
            value = "Yes" if value else "No"
        if isinstance(value, int):
            value = str(value)
        if not isinstance(value, str):
            raise ParameterError(f"parameter {self.name}: expected text, got {type(value).__name__}")
        v = value.strip()
        if self.kind == "yesno":
            if v.lower() in YES:
                return "Yes"
            if v.lower() in NO:
                return "No"
            raise ParameterError(f'parameter {self.name}: expected Yes or No, got "{value}"')
        if self.kind == "integer":
            if not re.fullmatch(r"-?\d{1,12}", v):
                raise ParameterError(f'parameter {self.name}: expected a whole number, got "{value}"')
            return str(int(v))
        if self.kind == "time":
            if not _TIME.match(v):
                raise ParameterError(f'parameter {self.name}: expected a time HH:MM (24 h), got "{value}"')
            return v
        if self.kind == "choice":
            if v not in self.choices:
                raise ParameterError(f'parameter {self.name}: expected one of {", ".join(self.choices)}, got "{value}"')
            return v
        if self.kind == "methods":
            names = [p.strip() for p in v.split("|")]
            if not v or any(not n for n in names):
                raise ParameterError(f'parameter {self.name}: expected method names separated by "|" such as "WindowsSecurity|TWS", got "{value}"')
            if self.choices:
                unknown = [n for n in names if n not in self.choices]
                if unknown:
                    raise ParameterError(f'parameter {self.name}: unknown method {unknown[0]!r}; installed methods: {", ".join(self.choices)}')
            if len(set(names)) != len(names):
                raise ParameterError(f'parameter {self.name}: a method is listed twice in "{value}"')
            return "|".join(names)
        if len(v) > 4000:
            raise ParameterError(f"parameter {self.name}: value longer than 4000 characters")
        return v

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": "***" if self.secret and self.default else self.default,
            "description": self.description,
            "application": self.application,
            "kind": self.kind,
            "expert": self.expert,
            "choices": list(self.choices),
        }


@attrs.frozen
class Resolved:
    """A parameter's effective value for a user, and where it came from."""

    name: str
    value: str
    source: str
    """``user``, ``group:<name>``, ``domain``, ``default`` or ``built-in``."""

    def as_bool(self) -> bool:
        return self.value.lower() in YES


class ParameterRegistry:
    """All parameter definitions known to the running kernel."""

    def __init__(self, definitions: Iterable[ParameterDefinition] = ()):
        self.definitions: dict[str, ParameterDefinition] = {}
        for d in definitions:
            self.add(d)

    def add(self, definition: ParameterDefinition) -> None:
        if not isinstance(definition, ParameterDefinition):
            raise TypeError(f"register() takes a twpcore.parameters.ParameterDefinition, got {definition!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,127}", definition.name):
            raise ParameterError(f"parameter name {definition.name!r} is not valid")
        if definition.name in self.definitions and self.definitions[definition.name] != definition:
            raise ParameterError(f"parameter {definition.name} is already defined by another plugin")
        definition.normalize(definition.default)
        self.definitions[definition.name] = definition

    def get(self, name: str) -> ParameterDefinition:
        try:
            return self.definitions[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, list(self.definitions), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ParameterError(f"unknown parameter {name!r}{hint}", field="name") from None

    # -- resolution (blocking; call through store.run) -----------------------------
    def resolve(self, conn: sa.Connection, user_id: int, names: Iterable[str] | None = None) -> dict[str, Resolved]:
        """Resolve parameters for one user; every name when ``names`` is None."""
        wanted = list(self.definitions) if names is None else [self.get(n).name for n in names]
        user = conn.execute(sa.select(t.users.c.id, t.users.c.domain_id).where(t.users.c.id == user_id)).one_or_none()
        if user is None:
            raise ParameterError(f"user {user_id} does not exist", field="user_id")
        groups = conn.execute(
            sa.select(t.groups.c.id, t.groups.c.name, t.groups.c.priority)
            .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
            .where(t.group_members.c.user_id == user_id)
            .order_by(t.groups.c.priority, t.groups.c.id)
        ).all()
        group_rank = {g.id: (i, g.name) for i, g in enumerate(groups)}
        pv = t.parameter_values
        rows = conn.execute(
            sa.select(pv.c.name, pv.c.scope, pv.c.scope_id, pv.c.value).where(
                pv.c.name.in_(wanted),
                sa.or_(
                    sa.and_(pv.c.scope == "user", pv.c.scope_id == user_id),
                    sa.and_(pv.c.scope == "group", pv.c.scope_id.in_(list(group_rank) or [-1])),
                    sa.and_(pv.c.scope == "domain", pv.c.scope_id == user.domain_id),
                    pv.c.scope == "default",
                ),
            )
        ).all()
        best: dict[str, tuple[tuple[int, int], str, str]] = {}
        for r in rows:
            if r.scope == "user":
                rank, source = (0, 0), "user"
            elif r.scope == "group":
                pos, gname = group_rank[r.scope_id]
                rank, source = (1, pos), f"group:{gname}"
            elif r.scope == "domain":
                rank, source = (2, 0), "domain"
            else:
                rank, source = (3, 0), "default"
            if r.name not in best or rank < best[r.name][0]:
                best[r.name] = (rank, r.value, source)
        out = {}
        for name in wanted:
            if name in best:
                out[name] = Resolved(name, best[name][1], best[name][2])
            else:
                out[name] = Resolved(name, self.definitions[name].default, "built-in")
        return out

    def resolve_one(self, conn: sa.Connection, user_id: int, name: str) -> Resolved:
        return self.resolve(conn, user_id, [name])[name]

    def domain_value(self, conn: sa.Connection, domain_id: int, name: str) -> Resolved:
        """A parameter's value for a domain as a whole (domain value, else default)."""
        d = self.get(name)
        pv = t.parameter_values
        rows = {r.scope: r.value for r in conn.execute(
            sa.select(pv.c.scope, pv.c.value).where(pv.c.name == name, sa.or_(
                sa.and_(pv.c.scope == "domain", pv.c.scope_id == domain_id), pv.c.scope == "default")))}
        if "domain" in rows:
            return Resolved(name, rows["domain"], "domain")
        if "default" in rows:
            return Resolved(name, rows["default"], "default")
        return Resolved(name, d.default, "built-in")
