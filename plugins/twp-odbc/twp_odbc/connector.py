"""The ODBC directory connector (guide 8.4), on pyodbc and the system's driver manager (unixODBC).

A directory reads one table or the result of one SQL query, through a DSN declared
in ``odbc.ini`` or a connection string naming the driver (``Driver={PostgreSQL
Unicode};Server=…``).  Column names become the source fields; ``id_column`` gives each
record a stable id.  pyodbc is blocking, so the query runs in a worker thread and rows
are handed to the kernel ``batch_size`` at a time through a bounded queue
(``twpcore.blocking``).

Failures raise what the kernel needs to keep the previous contacts: ``NotReady`` when
the database cannot be reached or does not answer in time, ``AuthFailed`` when it
refuses the credentials, ``ConnectorError`` naming the query when it fails.  The
password never appears in a message: it is removed from every driver error before it
is raised or logged.  Rows with an empty id are yielded with ``row N`` as their id and
named in the log.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pyodbc

from twpcore.plugin_api import (
    STORE,
    AuthFailed,
    ConnectorError,
    DirectoryConnector,
    Duration,
    NotReady,
    Secret,
    ServerFacts,
    ServerSide,
    SourceRecord,
    is_local_host,
    iterate_in_thread,
    setting,
)

log = logging.getLogger(__name__)

_PLAIN_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_SECRET_IN_STRING = re.compile(r"(?i)\b(pwd|password)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)")

# SQLSTATE classes (ODBC 3 / ISO 9075) the connector explains.
_UNREACHABLE = ("08001", "08S01", "08004", "HYT00", "HYT01")
_AUTH = ("28000",)
_AUTH_WORDS = ("password authentication failed", "authentication failed", "login failed",
               "access denied", "invalid authorization", "password is incorrect", "no password supplied")
_ROLE_MISSING = re.compile(r'\b(role|user|login) "[^"]*" does not exist')
_DATABASE_MISSING = re.compile(r'\b(database|catalog) "[^"]*" does not exist|unknown database|cannot open database')
_UNREACHABLE_WORDS = ("connection refused", "could not connect", "timeout expired", "timed out",
                      "server closed the connection", "no route to host", "could not translate host name")


_PAIR = re.compile(r"\s*([^=;]+?)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)\s*(?:;|$)")
_HOST_KEYS = ("server", "servername", "host", "hostname", "address", "addr", "data source")
_FILE_DRIVERS = re.compile(r"sqlite|mdb|access|excel|\btext\b|csv|dbase|paradox|foxpro|visual foxpro|firebird embedded", re.I)
_PATH = re.compile(r"^(/|\\|~|\.\.?[\\/]|[A-Za-z]:[\\/]|file:)|[\\/]\.\.[\\/]")


def connection_pairs(text: str) -> list[tuple[str, str]]:
    """The ``key=value`` pairs of an ODBC connection string, keys in lower case, braces removed, in order."""
    pairs = []
    for match in _PAIR.finditer(text):
        value = match.group(2).strip()
        if value.startswith("{") and value.endswith("}"):
            value = value[1:-1].replace("}}", "}")
        pairs.append((match.group(1).strip().lower(), value))
    return pairs


def connection_reach(value: object, facts: ServerFacts) -> str | None:
    """Why a connection string reaches the server's own resources (admin guide 15), or None for a network database.

    Every occurrence of a key counts (drivers differ on which of two ``Server=`` wins).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    pairs = connection_pairs(value)
    keys = dict(reversed(pairs))
    for key, item in pairs:
        if key in ("dsn", "filedsn", "savefile"):
            return f"{key.upper()}=: a data source declared on the server"
        if key == "driver" and any(c in item for c in "/\\"):
            return "Driver=: a driver library file on the server"
        if key == "driver" and _FILE_DRIVERS.search(item):
            return f"Driver={{{item}}} reads files on the server"
        if key not in ("pwd", "password") and _PATH.search(item):
            return f"{key}=: a path on the server"
    hosts = [item for key, item in pairs if key in _HOST_KEYS]
    if not hosts:
        return "a database on the server itself (no Server: the driver's default, a local socket)"
    driver = keys.get("driver", "")
    backend = "postgresql" if "postgres" in driver.lower() else "mysql" if re.search("mysql|maria", driver, re.I) else "mssql"
    for host in hosts:
        name, _, port = re.split(r"[,\\]", host.removeprefix("tcp:"), maxsplit=1)[0].partition(":")
        port = keys.get("port") or port or (host.split(",")[1] if "," in host else "")
        if is_local_host(name) or name.strip().lower() in ("(local)", ".", "(localdb)"):  # the last three: SQL Server's spellings
            return f"a database on the server itself (Server={host})"
        database = keys.get("database") or keys.get("dbname") or keys.get("initial catalog")
        if facts.names_store_database(backend, name, int(port) if port.strip().isdigit() else None, database):
            return STORE
    return None


CONNECTION_STRING = ServerSide(check=connection_reach,
                               local=("DSN=contacts", "Driver={SQLite3};Database=/srv/contacts.db", "Driver={PostgreSQL Unicode};Database=crm",
                                      "Driver={PostgreSQL Unicode};Server=127.0.0.1;Database=crm"),
                               network=("Driver={PostgreSQL Unicode};Server=db.example.com;Port=5432;Database=crm",))
"""Network databases named by a driver are for every admin; DSNs, files and local servers for super users."""


@attrs.frozen(kw_only=True)
class OdbcConfig:
    """Options of an ``odbc`` directory (guide 8.4.1: connection string or system DSN, table)."""

    connection_string: str = setting("", help='ODBC connection string, e.g. "Driver={PostgreSQL Unicode};Server=db;Database=crm" or "DSN=contacts"; '
                                         "DSNs, file drivers and local servers: super users only", server_side=CONNECTION_STRING)
    """How to reach the data source; a DSN is declared in odbc.ini."""
    dsn: str = setting("", help='name of a DSN declared in odbc.ini (the guide\'s "Database" field); the same as connection_string = "DSN=name"; '
                           "super users only", server_side=ServerSide("a data source declared in the server's odbc.ini", local=("contacts",)))
    """A data source name."""
    user: str = setting("", help="user name sent as UID (leave empty when the connection string or DSN has it)")
    """Database user."""
    password: Secret | None = setting(None, help='password sent as PWD; write { env = "VAR" } to keep it out of the file')
    """Database password; never shown in errors or logs."""
    table: str = setting("", help='table to read, e.g. "Contacts" or "[Contacts$]"; or use query')
    """The table whose rows are the contacts."""
    query: str = setting("", help="SQL query whose rows are the contacts (instead of table)")
    """A SELECT statement."""
    id_column: str = setting("", help="column holding each row's stable id (the ID field of the mapping); empty numbers rows")
    """Where ``SourceRecord.id`` comes from."""
    timeout: Duration = setting(Duration(15), min=1, max=3600, help="seconds allowed to connect and for the query")
    """Login and query time-out (drivers that support them)."""
    batch_size: int = setting(500, min=1, max=100_000, help="rows fetched at a time")
    """Rows per fetch and per hand-over to the kernel."""

    def __attrs_post_init__(self) -> None:
        if not (self.connection_string or self.dsn):
            raise ValueError("set connection_string (e.g. \"Driver={SQLite3};Database=/srv/contacts.db\") or dsn")
        if bool(self.table) == bool(self.query):
            raise ValueError("set exactly one of table and query")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with ``PWD=…`` / ``Password=…`` values and the given secrets replaced by ``***``."""
    text = _SECRET_IN_STRING.sub(lambda m: f"{m.group(1)}=***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _brace(value: str) -> str:
    """An ODBC connection-string value, braced when ``;``, braces or edge spaces would break it.

    Plain values stay bare: some drivers (psqlODBC) keep the braces of a braced ``UID``.
    """
    if not value or any(c in value for c in ";{}=") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


def text_value(value: Any) -> Any:
    """A column value as a source field: text, bytes for binary columns, or None."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


class OdbcConnector(DirectoryConnector):
    """Reads contacts from any ODBC data source: a table or the rows of a SQL query."""

    type_name = "odbc"
    Config = OdbcConfig
    capabilities = frozenset({"sync", "test_connection"})
    description = "ODBC data source (DSN or connection string; table or SQL query)"

    config: OdbcConfig

    def __init__(self, config: OdbcConfig, context: Any):
        super().__init__(config, context)
        self._columns: list[str] = []

    @property
    def logger(self) -> logging.Logger:
        return self.context.logger if self.context is not None else log

    # -- the kernel's contract --------------------------------------------------------

    def source_fields(self) -> list[str]:
        """The columns seen by the last connection test or sync."""
        return list(self._columns)

    async def test_connection(self) -> str:
        return await asyncio.to_thread(self._test)

    def records(self, user: Any = None) -> Any:
        return iterate_in_thread(self._produce, max_batches=2)

    # -- connecting -------------------------------------------------------------------

    @property
    def _secrets(self) -> list[str]:
        return [self.config.password.reveal()] if self.config.password is not None else []

    def connection_string(self) -> str:
        """The full connection string, password included (never log it: see ``describe``)."""
        parts = []
        if self.config.dsn:
            parts.append(f"DSN={_brace(self.config.dsn) if ';' in self.config.dsn else self.config.dsn}")
        if self.config.connection_string:
            parts.append(self.config.connection_string.strip().strip(";"))
        if self.config.user:
            parts.append(f"UID={_brace(self.config.user)}")
        if self.config.password is not None:
            parts.append(f"PWD={_brace(self.config.password.reveal())}")
        return ";".join(parts)

    def describe(self) -> str:
        """The data source for messages: the connection string without its password."""
        return redact(self.connection_string(), self._secrets)

    def _error(self, exc: pyodbc.Error) -> str:
        state = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        text = " ".join(text.split())
        return redact(f"{text} (SQLSTATE {state})" if state else text, self._secrets)

    def _connect(self) -> pyodbc.Connection:
        timeout = round(float(self.config.timeout))
        try:
            conn = pyodbc.connect(self.connection_string(), timeout=timeout, autocommit=True, readonly=True)
        except pyodbc.Error as exc:
            state = exc.args[0] if exc.args else ""
            message = self._error(exc)
            lower = message.lower()
            where = self.describe()
            if state in _AUTH or any(word in lower for word in _AUTH_WORDS) or _ROLE_MISSING.search(lower):
                raise AuthFailed(f"{where}: the database refused the credentials: {message}; check user and password") from None
            if state in _UNREACHABLE or any(word in lower for word in _UNREACHABLE_WORDS):
                raise NotReady(f"{where}: cannot reach the database: {message}") from None
            if _DATABASE_MISSING.search(lower):
                raise ConnectorError(f"{where}: {message}; check the database name") from None
            if state == "IM002":
                raise ConnectorError(
                    f"{where}: {message}; declare the DSN in odbc.ini or name an installed driver "
                    f"(installed: {', '.join(pyodbc.drivers()) or 'none'})") from None
            raise ConnectorError(f"{where}: cannot connect: {message}") from None
        try:
            conn.timeout = timeout
        except pyodbc.Error:  # the driver has no query time-out
            pass
        return conn

    # -- reading ----------------------------------------------------------------------

    def sql(self, conn: pyodbc.Connection | None = None) -> str:
        """The statement run: the configured query, or ``SELECT * FROM <table>``."""
        if self.config.query:
            return self.config.query.strip().rstrip(";")
        table = self.config.table.strip()
        if table.startswith(("[", '"', "`")) or _PLAIN_TABLE.match(table):
            return f"SELECT * FROM {table}"
        quote = '"'
        if conn is not None:
            try:
                quote = conn.getinfo(pyodbc.SQL_IDENTIFIER_QUOTE_CHAR).strip() or '"'
            except pyodbc.Error:
                pass
        close = "]" if quote == "[" else quote
        return f"SELECT * FROM {quote}{table.replace(close, close * 2)}{close}"

    def _execute(self, conn: pyodbc.Connection) -> pyodbc.Cursor:
        sql = self.sql(conn)
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
        except pyodbc.Error as exc:
            self._raise_query_error(sql, exc)
        if cursor.description is None:
            raise ConnectorError(f'{self.describe()}: the query "{sql}" returns no rows (is it a SELECT?)')
        self._columns = [column[0] for column in cursor.description]
        if self.config.id_column and self.config.id_column not in self._columns:
            lowered = {c.lower(): c for c in self._columns}
            if self.config.id_column.lower() not in lowered:
                raise ConnectorError(
                    f'id_column "{self.config.id_column}" is not a column of "{sql}"; '
                    f"its columns are: {', '.join(self._columns)}")
        return cursor

    def _raise_query_error(self, sql: str, exc: pyodbc.Error) -> None:
        state = exc.args[0] if exc.args else ""
        message = self._error(exc)
        lower = message.lower()
        if state in _UNREACHABLE or any(word in lower for word in _UNREACHABLE_WORDS):
            raise NotReady(f'{self.describe()}: the database stopped answering during "{sql}": {message}') from None
        raise ConnectorError(f'{self.describe()}: the query "{sql}" failed: {message}') from None

    def _produce(self, emit: Callable[[Sequence[SourceRecord]], None]) -> None:
        conn = self._connect()
        try:
            cursor = self._execute(conn)
            columns = self._columns
            id_index = self._id_index(columns)
            row_number = 0
            while True:
                try:
                    rows = cursor.fetchmany(self.config.batch_size)
                except pyodbc.Error as exc:
                    self._raise_query_error(self.sql(conn), exc)
                batch = []
                for row in rows:
                    row_number += 1
                    batch.append(self._record(row_number, columns, row, id_index))
                emit(batch)
                # A short batch is the end.  Asking again is not only useless: the
                # mdbtools driver then starts over from the first row.
                if len(rows) < self.config.batch_size:
                    break
            self.logger.info("%s: read %d rows from %s", self.name, row_number, self.describe())
        finally:
            try:
                conn.close()
            except pyodbc.Error:
                pass

    def _id_index(self, columns: list[str]) -> int | None:
        if not self.config.id_column:
            return None
        lowered = [c.lower() for c in columns]
        name = self.config.id_column
        return columns.index(name) if name in columns else lowered.index(name.lower())

    def _record(self, number: int, columns: list[str], row: Sequence[Any], id_index: int | None) -> SourceRecord:
        fields = {name: text_value(value) for name, value in zip(columns, row, strict=True)}
        record_id = f"row {number}"
        if id_index is not None:
            value = fields[columns[id_index]]
            if value is None or (isinstance(value, str) and not value.strip()):
                self.logger.warning("%s: row %d has an empty %s; it is identified as \"row %d\"",
                                    self.name, number, columns[id_index], number)
            elif isinstance(value, bytes):
                record_id = value.hex()
            else:
                record_id = str(value).strip()
        return SourceRecord(id=record_id, fields=fields)

    def _test(self) -> str:
        conn = self._connect()
        try:
            cursor = self._execute(conn)
            count = 0
            while True:
                rows = cursor.fetchmany(self.config.batch_size)
                count += len(rows)
                if len(rows) < self.config.batch_size:  # the end (see _produce)
                    break
            return f"{self.describe()}: {count:,} rows, columns {', '.join(self._columns)}"
        except pyodbc.Error as exc:
            self._raise_query_error(self.sql(conn), exc)
            raise  # unreachable: _raise_query_error always raises
        finally:
            try:
                conn.close()
            except pyodbc.Error:
                pass
