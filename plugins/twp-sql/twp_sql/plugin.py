"""TWP directory connector "sql": contacts from any SQL database reached by a SQLAlchemy URL (guide 8.4's SQL server type).

Options: ``url`` (``postgresql+psycopg://twp@db.example.com/crm``, ``sqlite:////srv/crm.db``,
``mysql+pymysql://...`` with that driver installed), ``password`` (put in the URL, never
shown), and either ``table`` (every row of a table or view) or ``query`` (a SELECT).  The
column names are the source field names the directory's mapping refers to.

Failures, as the directory service reports them: a server that cannot be reached is
``NotReady`` (the sync is retried on schedule, previous contacts kept), refused
credentials are ``AuthFailed``, a missing table or a bad query is ``ConnectorError``.
Database calls are blocking and run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.plugin_api import (
    DATABASE_URL,
    AuthFailed,
    ConnectorError,
    DirectoryConnector,
    NotReady,
    Register,
    Secret,
    SourceRecord,
    hookimpl,
    iterate_in_thread,
    setting,
)

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""

log = logging.getLogger(__name__)
BATCH_ROWS = 1000
"""Rows fetched from the cursor and handed to the sync at a time."""
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_AUTH = re.compile(r"password authentication failed|authentication failed|access denied|login failed|invalid password|"
                   r"no password supplied|role .* does not exist", re.I)
_DOWN = re.compile(r"could not connect|connection refused|unable to open database file|timeout|timed out|"
                   r"server closed the connection|could not translate host name|name or service not known|no route to host|"
                   r"connection reset|database system is (starting up|shutting down)|can't connect", re.I)


@attrs.frozen
class SqlConfig:
    """Options of one SQL directory."""

    url: str = setting(help="SQLAlchemy URL of the database, e.g. postgresql+psycopg://twp@db/crm (the password goes in `password`); "
                            "sqlite files, sockets and this machine: super users only", server_side=DATABASE_URL)
    password: Secret | None = setting(None, help="database password, written into the URL; never shown")
    table: str | None = setting(None, help="table or view whose rows are the contacts (or give `query`)")
    query: str | None = setting(None, help="SELECT returning one row per contact (or give `table`)")
    key_column: str | None = setting(None, help="column naming a row in sync reports (default: the row number)")
    timeout: float = setting(10.0, min=1, max=600, help="seconds to wait for the database to answer a connection")

    def __attrs_post_init__(self) -> None:
        if bool(self.table) == bool(self.query):
            raise ValueError("give exactly one of table (a table or view name) and query (a SELECT)")
        if self.table and not _IDENT.match(self.table):
            raise ValueError(
                f"table: {self.table!r} is not a table name (letters, digits, _ and one optional schema dot); use query for anything else"
            )
        try:
            sa.engine.make_url(self.url)
        except Exception:  # noqa: BLE001 - SQLAlchemy raises several types for a malformed URL
            raise ValueError("url: not a SQLAlchemy URL; write dialect+driver://user@host/database, e.g. postgresql+psycopg://twp@db/crm") from None


def classify(exc: BaseException, where: str) -> Exception:
    """A database error as the directory service wants it: NotReady, AuthFailed or ConnectorError."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _AUTH.search(text):
        return AuthFailed(f"{where}: {text}")
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, TimeoutError, OSError)) and _DOWN.search(text):
        return NotReady(f"{where}: {text}")
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return NotReady(f"{where}: {text}")
    return ConnectorError(f"{where}: {text}")


class SqlDirectory(DirectoryConnector):
    """Rows of a SQL table or query as directory records."""

    type_name = "sql"
    Config = SqlConfig
    capabilities = frozenset({"sync", "test_connection"})
    description = "any SQL database by SQLAlchemy URL: a table or a query (guide 8.4)"

    def __init__(self, config: SqlConfig, context: Any):
        super().__init__(config, context)
        self.engine: sa.Engine | None = None

    @property
    def where(self) -> str:
        return f"database {self._url().render_as_string(hide_password=True)}"

    def _url(self) -> sa.URL:
        url = sa.engine.make_url(self.config.url)
        if self.config.password is not None:
            url = url.set(password=self.config.password.reveal())
        return url

    def _statement(self) -> sa.TextClause:
        return sa.text(self.config.query) if self.config.query else sa.text(f"SELECT * FROM {self.config.table}")

    async def setup(self) -> None:
        url = self._url()
        args: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            args["connect_timeout"] = int(self.config.timeout)
        elif url.get_backend_name() == "sqlite":
            # Never create an empty database where a directory file is missing.
            database = url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                url = url.set(database=f"file:{database}?mode=ro", query={**url.query, "uri": "true"})
        try:
            self.engine = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
        except Exception as exc:  # noqa: BLE001 - a missing driver, a bad URL
            raise ConnectorError(f"{self.where}: {exc}") from None

    async def close(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await asyncio.to_thread(engine.dispose)  # closes pooled connections: network I/O, not on the event loop

    def _count(self) -> int:
        assert self.engine is not None
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(self._statement().columns().subquery())).scalar_one()
        except sa.exc.SQLAlchemyError as exc:
            raise classify(exc, self.where) from None

    def _produce(self, emit: Callable[[Sequence[SourceRecord]], None]) -> None:
        """Runs in a worker thread: the rows, ``BATCH_ROWS`` at a time, never the whole table in memory."""
        assert self.engine is not None
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(self._statement())
                columns = list(result.keys())
                key = self.config.key_column
                if key is not None and key not in columns:
                    raise ConnectorError(f"{self.where}: key_column {key!r} is not a column; columns: {', '.join(columns)}")
                n = 0
                while rows := result.fetchmany(BATCH_ROWS):
                    batch = []
                    for row in rows:
                        n += 1
                        fields = dict(zip(columns, row, strict=True))
                        rid = fields.get(key) if key else None
                        batch.append(SourceRecord(str(rid) if rid not in (None, "") else f"row {n}", fields))
                    emit(batch)
        except sa.exc.SQLAlchemyError as exc:
            raise classify(exc, self.where) from None

    async def test_connection(self) -> str:
        n = await asyncio.to_thread(self._count)
        what = f"table {self.config.table}" if self.config.table else "the query"
        return f"{self.where}: {n} rows in {what}"

    def source_fields(self) -> list[str]:
        return []

    def records(self, user: Any = None) -> AsyncIterator[SourceRecord]:
        return iterate_in_thread(self._produce, max_batches=2)


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(SqlDirectory)
