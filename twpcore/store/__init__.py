"""The store: one SQLAlchemy engine, Alembic migrations, and a thread pool for blocking calls.

SQLite (the default, under ``var/``) and PostgreSQL are both supported through the same
Core queries.  Database calls are blocking, so code on the event loop goes through
``await store.run(fn, *args)``, where ``fn`` receives a connection inside a transaction.

On SQLite the driver's own transaction handling is switched off and the store emits
``BEGIN IMMEDIATE`` itself: Python's ``sqlite3`` otherwise starts transactions only at the
first write and commits when a SAVEPOINT is released, so a failed request could leave
half of its writes behind, and reads would not share one snapshot.  Read-only snapshots
(backups) ask for ``execution_options(sqlite_begin="DEFERRED")`` so they never block writers.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from twpcore.store import schema

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


class StoreError(Exception):
    """The store cannot be opened or used; the message says which database and what to do."""


def redact_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises several types for a malformed URL
        return "<invalid url>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The store issues BEGIN itself (see the module docstring).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # SQLite's own lower() folds ASCII letters only, so a search for "élodie" would miss
    # "Élodie".  Python's str.lower knows every script; it replaces the built-in.
    dbapi_conn.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin must be IMMEDIATE, DEFERRED or EXCLUSIVE, got {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def scripted_head(versions: Path | None = None) -> str | None:
    """The head revision of the migration scripts, read from their ``revision`` and ``down_revision`` lines.

    Alembic is not imported.  None (so the caller asks Alembic) unless every script names its
    revision and its parent as literals and exactly one revision is nobody's parent.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (versions or Path(MIGRATIONS) / "versions").glob("*.py"):
        if path.name.startswith("__"):
            continue
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        try:
            revision = ast.literal_eval(found["revision"])
            parent = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(parent, str):
            parents.add(parent)
        elif isinstance(parent, tuple | list):
            parents.update(p for p in parent if isinstance(p, str))
        elif parent is not None:
            return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


class Store:
    """The kernel's database handle."""

    def __init__(self, url: str, *, workers: int = 4):
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for a malformed URL
            raise StoreError(
                f'storage.url: "{url}" is not a database URL ({exc}); use sqlite:///var/twp.db or postgresql+psycopg://user@host/db'
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"future": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                try:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f'storage.url: cannot create the folder of the SQLite file "{parsed.database}" ({exc.strerror}); '
                                     "use a path the server may write to") from None
            kwargs["connect_args"] = {"check_same_thread": False}
        elif self.dialect == "postgresql":
            kwargs.update(pool_pre_ping=True, pool_size=workers, max_overflow=workers)
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a missing driver or a bad option: each raises its own type
            raise StoreError(f"storage.url: cannot use {redact_url(url)}: {exc}") from None
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twp-store")
        self.migrated: str | None = None
        """The revision this process migrated the store to; a second ``upgrade`` is then a no-op."""

    # -- lifecycle ---------------------------------------------------------------
    def alembic_config(self, connection: sa.Connection | None = None) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig  # Alembic is imported only to migrate (about 0.2 s)

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", MIGRATIONS)
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _stored_revision(self) -> str | None:
        """The one revision in ``alembic_version``, read without Alembic; None when there is no such table or not one row."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        return rows[0] if len(rows) == 1 else None

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply every pending migration; return (revision before, revision after)."""
        if self.migrated is not None:  # `twp serve` migrates before the kernel starts: once is enough
            return self.migrated, self.migrated
        try:
            # A store already at the head (every start but the first) is not handed to Alembic:
            # importing it and reading its scripts was about 0.2 s of each start (docs/benchmarks.md).
            stored = self._stored_revision()
            if stored is not None and stored == scripted_head():
                self.migrated = stored
                return stored, stored
            from alembic import command

            before = self.current_revision()
            with self.engine.begin() as conn:
                command.upgrade(self.alembic_config(conn), "head")
            after = self.current_revision()
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"cannot open the store {redact_url(self.url)}: {exc.orig}; check storage.url and that the database server runs"
            ) from None
        if before != after:
            log.info("store %s migrated from %s to %s", redact_url(self.url), before, after)
        self.migrated = after
        return before, after

    def check_ready(self) -> None:
        """Raise ``StoreError`` unless the database is reachable and fully migrated."""
        try:
            current = self.current_revision()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store {redact_url(self.url)}: {exc.orig}") from None
        head = self.head_revision()
        if current != head:
            raise StoreError(f"the store {redact_url(self.url)} is at revision {current}, the code expects {head}; run `twp db upgrade`")

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.engine.dispose()

    # -- running -----------------------------------------------------------------
    def transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction, in the calling thread."""
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the store's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(self.transaction, fn, *args, **kwargs))

    def read_transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in a read-only snapshot that never waits for, nor blocks, writers.

        On SQLite the transaction begins DEFERRED (a WAL reader); elsewhere it is an
        ordinary transaction.  ``fn`` must not write: on SQLite a write would have to
        upgrade the lock and could fail with "database is locked".
        """
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn, conn.begin():
            return fn(conn, *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read_transaction`` on the store's thread pool: for request handlers that only read."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(self.read_transaction, fn, *args, **kwargs))


__all__ = ["Store", "StoreError", "redact_url", "schema"]
