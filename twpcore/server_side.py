"""Options that reach the server's own resources, and who may set them (admin guide 15).

Some plugin options reach the machine TWP runs on rather than a system of the company:
a file or directory path, a certificate or key file, a local database file or socket,
a DSN of the server's ``odbc.ini``, and every ``{ env = "VAR" }`` reference.  A plugin
marks such an option in its ``Config`` with ``setting(server_side=...)``:

- ``server_side=True``: every value set is server-side (a path);
- ``server_side=ServerSide(check=...)``: the check decides from the value, and says why
  (``DATABASE_URL`` here: ``sqlite:///...``, a socket or a loopback host are, a network
  ``postgresql://db.example.com/crm`` is not).

``check_options`` is the one rule every API that creates or changes a plugin instance
applies: a limited admin may not set a server-side value (403 naming the option and why);
a super user may; instances declared in ``twp.toml`` are never checked.  The store's own
database is refused to everyone through the API: a directory over it would hand every
company's users and password hashes to whoever searches it.
"""

from __future__ import annotations

import ipaddress
import os
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.schema import env_values, is_env, join, looks_secret

STORE = "the TWP store's own database"
"""The reason given for the store's database or file: refused to everyone through the API."""
ENV = "an environment variable of the server ({ env = ... })"
PATH = "a path on the server"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}


@attrs.frozen
class ServerFacts:
    """What the kernel knows of its own resources, for the checks: where the store is."""

    store_url: str = ""
    """The store's SQLAlchemy URL (``storage.url``)."""

    @classmethod
    def of(cls, kernel: Any) -> ServerFacts:
        store = getattr(kernel, "store", None)
        return cls(str(getattr(store, "url", "") or ""))

    @property
    def store(self) -> sa.URL | None:
        try:
            return sa.engine.make_url(self.store_url) if self.store_url else None
        except Exception:  # noqa: BLE001 - an unparsable store URL names nothing
            return None

    def names_store_file(self, path: str) -> bool:
        """Whether ``path`` is the SQLite store's file (or its journal), however it is spelt."""
        store = self.store
        if store is None or store.get_backend_name() != "sqlite" or not store.database or store.database == ":memory:":
            return False
        mine = _sqlite_file(store.database)
        path = _sqlite_file(path)
        return any(_same_file(path, mine + suffix) for suffix in ("", "-wal", "-shm", "-journal"))

    def names_store_database(self, backend: str, host: str | None, port: int | None, database: str | None) -> bool:
        """Whether a network database (host, port, name) is the store's, loopback and sockets counting as one host."""
        store = self.store
        if store is None or store.get_backend_name() == "sqlite" or not database:
            return False
        if backend.split("+")[0] != store.get_backend_name() or database != store.database:
            return False
        default = DEFAULT_PORTS.get(store.get_backend_name())
        if (port or default) != (store.port or default):
            return False
        here = {is_local_host(host), is_local_host(store.host)}
        return here == {True} or (host or "").lower() == (store.host or "").lower()


def _sqlite_file(database: str) -> str:
    if database.startswith("file:"):
        database = database[5:].split("?")[0]
    return os.path.realpath(os.path.expanduser(database))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a == b


def is_local_host(host: str | None) -> bool:
    """Whether a host name is this machine: empty (a socket), a socket path, a loopback name or address."""
    if not host:
        return True
    host = host.strip().strip("[]").lower()
    if host.startswith("/") or host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


Check = Callable[[Any, ServerFacts], "str | None"]


@attrs.frozen
class ServerSide:
    """How an option reaches the server: always (``check`` None), or as ``check(value, facts)`` says.

    ``local`` and ``network`` are example values that are and are not server-side: the
    test kit tries them, and the admin guide's table quotes them.
    """

    reason: str = PATH
    """Why any value set is server-side (when ``check`` is None)."""
    check: Check | None = None
    """Returns why a value is server-side, or None for a network endpoint."""
    local: tuple[Any, ...] = ("/etc/passwd",)
    network: tuple[Any, ...] = ()

    def reaches(self, value: Any, facts: ServerFacts) -> str | None:
        """Why ``value`` reaches the server's own resources, or None."""
        if value is None or value == "" or value == [] or value == {}:
            return None
        if self.check is not None:
            return self.check(value, facts)
        if isinstance(value, str) and facts.names_store_file(value):
            return STORE
        return self.reason


def declared(field: attrs.Attribute[Any]) -> ServerSide | None:
    """The ``ServerSide`` rule a ``Config`` field declares, if any."""
    rule = field.metadata.get("server_side")
    if rule is True:
        return ServerSide()
    return rule if isinstance(rule, ServerSide) else None


def database_url(value: Any, facts: ServerFacts) -> str | None:
    """A SQLAlchemy URL: server-side when it names a SQLite file, a socket or this machine; the store's database always."""
    if not isinstance(value, str):
        return None
    try:
        url = sa.engine.make_url(value)
    except Exception:  # noqa: BLE001 - the connector's own check explains a bad URL
        return None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return STORE if url.database and facts.names_store_file(url.database) else "a local database file (sqlite)"
    if facts.names_store_database(backend, url.host, url.port, url.database):
        return STORE
    for key, item in url.query.items():
        values = item if isinstance(item, tuple) else (item,)
        if key in ("unix_socket", "unix_sock") or any(str(v).startswith(("/", "~", ".", "@")) for v in values):
            return f"a local file or socket (?{key}=)"
        if key in ("host", "hostaddr") and any(is_local_host(h) for v in values for h in str(v).split(",")):
            return f"a database on the server itself (?{key}=)"
        if key in ("service", "servicefile", "passfile", "read_default_file", "ssl_ca", "ssl_cert", "ssl_key"):
            return f"a file or service declared on the server (?{key}=)"
    if not url.host:
        return "a database on the server itself (no host: a local socket)"
    if any(is_local_host(host.rsplit(":", 1)[0] if host.count(":") == 1 else host) for host in url.host.split(",")):
        return f"a database on the server itself ({url.host})"
    return None


DATABASE_URL = ServerSide(check=database_url, local=("sqlite:////var/lib/twp/twp.db", "postgresql:///crm", "postgresql://crm@127.0.0.1/crm"),
                          network=("postgresql+psycopg://crm@db.example.com/crm",))
"""A SQLAlchemy URL option: network databases are for everyone, local ones for super users."""


@attrs.frozen
class ServerSideUse:
    """One option of an instance that reaches the server: where, why, and the value (never shown)."""

    path: str
    reason: str
    value: Any = attrs.field(repr=False)


def uses(tp: Any, value: Any, facts: ServerFacts, path: str = "options") -> list[ServerSideUse]:
    """Every server-side value of raw options ``value`` read against schema type ``tp`` (None: references only)."""
    if is_env(value):
        return [ServerSideUse(path, ENV, value)]
    tp = _fitting(tp, value)
    found: list[ServerSideUse] = []
    if isinstance(tp, type) and attrs.has(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        fields = {f.alias or f.name: f for f in attrs.fields(tp)}
        for key, item in value.items():
            field = fields.get(key)
            rule = declared(field) if field is not None else None
            reason = rule.reaches(item, facts) if rule is not None and not is_env(item) else None
            if reason is not None:
                found.append(ServerSideUse(join(path, key), reason, item))
            else:
                found += uses(hints.get(field.name) if field is not None else None, item, facts, join(path, key))
        return found
    args = typing.get_args(tp)
    if isinstance(value, dict):
        inner = args[1] if typing.get_origin(tp) is dict and len(args) == 2 else None
        for key, item in value.items():
            found += uses(inner, item, facts, join(path, str(key)))
    elif isinstance(value, list):
        inner = args[0] if typing.get_origin(tp) in (list, tuple, set, frozenset) and args else None
        for i, item in enumerate(value):
            found += uses(inner, item, facts, join(path, i))
    return found


def _fitting(tp: Any, value: Any) -> Any:
    """The member of a union type that fits the shape of ``value`` (a table, an array); other types as they are."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return tp
    for alt in typing.get_args(tp):
        origin = typing.get_origin(alt)
        if isinstance(value, dict) and (origin is dict or (isinstance(alt, type) and attrs.has(alt))):
            return alt
        if isinstance(value, list) and origin in (list, tuple, set, frozenset):
            return alt
    return None


class ServerSideRefused(Exception):
    """An API caller set a server-side option it may not set; ``str()`` names the option, why, and what to do."""

    status = 403

    def __init__(self, use: ServerSideUse):
        self.path, self.reason = use.path, use.reason
        if use.reason == STORE:
            message = (f"{use.path}: names {STORE}, which no plugin instance may read through the API (it holds every "
                       "company's users and password hashes); point it at another database")
        else:
            message = (f"{use.path}: only a super user or twp.toml may set a server-side option ({use.reason}); "
                       "give a network endpoint, or ask a super user (admin guide 15)")
        super().__init__(message)


def check_options(cls: type | None, options: Any, *, super_user: bool, facts: ServerFacts, previous: Any = None,
                  path: str = "options") -> None:
    """Refuse the server-side values an API caller may not set in a plugin instance's ``options``.

    ``cls`` is the type's ``Config`` (None when the type is not installed: references are
    still refused).  ``previous`` are the options stored before a change: a server-side
    value a super user set may be kept unchanged by a limited admin, never replaced.
    Raises ``ServerSideRefused`` for the first refused option.
    """
    before = uses(cls, previous, facts, path) if previous else []
    for use in uses(cls, options, facts, path):
        if use.reason == STORE:
            raise ServerSideRefused(use)
        if super_user or any(old.path == use.path and old.value == use.value for old in before):
            continue
        raise ServerSideRefused(use)


def hidden_values(options: Any) -> set[str]:
    """What a message about an instance must not repeat: values read from the environment, inline secrets."""
    found = env_values(options)
    if isinstance(options, dict):
        for key, value in options.items():
            if isinstance(value, str) and looks_secret(str(key)):
                found.add(value)
            elif isinstance(value, (dict, list)):
                found |= hidden_values(value)
    elif isinstance(options, list):
        for value in options:
            found |= hidden_values(value)
    return found
