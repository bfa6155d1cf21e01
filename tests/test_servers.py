"""The test kit starts a real, throw-away PostgreSQL cluster (as the ``postgres`` user when root)."""

from __future__ import annotations

import os

import psycopg
import pytest
import sqlalchemy

from twpcore.testing.servers import PostgresServer, ServerStartError, find_free_port

pytestmark = pytest.mark.skipif(
    not PostgresServer.available() and not os.environ.get("CI"),
    reason="PostgreSQL server binaries not installed (run scripts/install-system-deps.sh)",
)


def test_postgres_server_serves_a_new_database_then_leaves_nothing_behind() -> None:
    server = PostgresServer()
    with server:
        tmpdir = server.tmpdir
        assert tmpdir is not None and server.data_dir.is_dir()

        url = server.create_database("twp_directory")
        assert url == f"postgresql+psycopg://twp@127.0.0.1:{server.port}/twp_directory"

        with psycopg.connect(server.conninfo("twp_directory")) as conn:
            version = conn.execute("select version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL ")

        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sqlalchemy.text("select version()")).scalar() == version[0]
                assert conn.execute(sqlalchemy.text("select current_database()")).scalar() == (
                    "twp_directory"
                )
                assert conn.execute(sqlalchemy.text("show fsync")).scalar() == "off"
                assert conn.execute(sqlalchemy.text("show server_encoding")).scalar() == "UTF8"
        finally:
            engine.dispose()

    assert not tmpdir.exists()
    assert server.process is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={server.port} user=twp dbname=postgres", connect_timeout=2)
    server.stop()  # stopping twice is harmless


def test_two_postgres_servers_run_side_by_side() -> None:
    with PostgresServer() as first, PostgresServer() as second:
        assert first.port != second.port
        first.create_database("one")
        with psycopg.connect(second.conninfo()) as conn:
            names = {row[0] for row in conn.execute("select datname from pg_database")}
        assert "one" not in names


def test_a_server_that_cannot_start_says_why() -> None:
    server = PostgresServer()
    server.command = lambda: [server.binary("postgres"), "-D", str(server.data_dir), "-c", "no_such_setting=1"]  # type: ignore[method-assign]
    with pytest.raises(ServerStartError, match="no_such_setting"):
        server.start()
    assert server.tmpdir is None


def test_find_free_port_returns_a_bindable_port() -> None:
    import socket

    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
