"""The ODBC connector through the real unixODBC driver manager and real drivers (guide 8.4).

The kit's ``OdbcEnvironment`` writes a private ``odbcinst.ini`` listing Debian's SQLite
(libsqliteodbc), PostgreSQL (odbc-postgresql) and MDB (odbc-mdbtools) drivers and points
``ODBCSYSINI`` at it, so nothing here depends on ``/etc/odbcinst.ini``.  SQLite files
are made with the standard library, Access files with the kit's ``write_mdb``;
PostgreSQL is the kit's real server.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from twp_odbc import OdbcConnector, redact
from twpcore.kinds import AuthFailed, ConnectorError, InstanceContext, Kind, NotReady, SourceRecord
from twpcore.schema import ConfigErrors, structure
from twpcore.testing.servers import OdbcEnvironment, PostgresServer, find_free_port, write_mdb

ROWS = 1_200


@pytest.fixture(scope="module")
def odbc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = OdbcEnvironment(tmp_path_factory.mktemp("odbc"))
    if not env.drivers and not os.environ.get("CI"):
        pytest.skip("no ODBC driver installed (run scripts/install-system-deps.sh)")
    with env.activated():
        yield env


def need(env: OdbcEnvironment, driver: str) -> None:
    if not env.has_driver(driver):
        if os.environ.get("CI"):
            pytest.fail(f"ODBC driver {driver} is not installed; run scripts/install-system-deps.sh")
        pytest.skip(f"ODBC driver {driver} is not installed")


@pytest.fixture(scope="module")
def contacts_db(odbc: OdbcEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite address book: 1,200 people, then rows a careless export would hold."""
    need(odbc, "SQLite3")
    path = tmp_path_factory.mktemp("sqlite") / "Annuaire.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE Contacts (ContactID INTEGER, LastName TEXT, FirstName TEXT, Phone TEXT, "
                   "Mobile TEXT, Born DATE, Balance DECIMAL(10,2), Vip BOOLEAN, Photo BLOB)")
        db.executemany("INSERT INTO Contacts VALUES (?,?,?,?,?,?,?,?,?)", [
            (i, f"Lefebvre{i:04d}", "Marc", f"+33 2 40 {i:06d}", None, "1980-05-17", "12.50", i % 2, None)
            for i in range(1, ROWS + 1)
        ])
        db.executemany("INSERT INTO Contacts VALUES (?,?,?,?,?,?,?,?,?)", [
            (None, "Sans-Identifiant", "Paul", "+33 2 40 999999", None, None, None, 0, None),   # no id
            (ROWS + 2, "Élodie-Ørsted", "Zoé", None, "+33 6 12 34 56 78", None, None, 1, b"\xff\xd8\xff\xe0"),
            (ROWS + 3, None, None, None, None, "not a date", "n/a", None, None),              # nothing usable
        ])
        db.execute('CREATE TABLE "Annuaire client" (id INTEGER, nom TEXT)')
        db.execute("INSERT INTO \"Annuaire client\" VALUES (1, 'Martin')")
    return path


def make(name: str = "crm", **options: Any) -> OdbcConnector:
    config = structure(OdbcConnector.Config, options, source="twp.toml", path=f"directories.{name}")
    return OdbcConnector(config, InstanceContext(name, Kind.DIRECTORY_CONNECTOR, logger=logging.getLogger(f"twp.directory_connector.{name}")))


async def read_all(connector: OdbcConnector) -> list[SourceRecord]:
    return [record async for record in connector.records()]


# -- SQLite ------------------------------------------------------------------------------


async def test_a_table_is_read_through_the_sqlite_driver_with_columns_as_fields(contacts_db: Path) -> None:
    connector = make(connection_string=f"Driver={{SQLite3}};Database={contacts_db}", table="Contacts", id_column="ContactID")
    records = await read_all(connector)

    assert len(records) == ROWS + 3
    assert connector.source_fields() == ["ContactID", "LastName", "FirstName", "Phone", "Mobile", "Born", "Balance", "Vip", "Photo"]
    by_id = {r.id: r for r in records}
    assert by_id["7"].fields == {
        "ContactID": "7", "LastName": "Lefebvre0007", "FirstName": "Marc", "Phone": "+33 2 40 000007", "Mobile": None,
        "Born": "1980-05-17", "Balance": "12.5", "Vip": "true", "Photo": None,
    }
    accents = by_id[str(ROWS + 2)].fields
    assert accents["LastName"] == "Élodie-Ørsted" and accents["FirstName"] == "Zoé"
    assert accents["Photo"] == b"\xff\xd8\xff\xe0"


async def test_a_dsn_and_a_query_select_the_rows(odbc: OdbcEnvironment, contacts_db: Path) -> None:
    odbc.add_dsn("annuaire", "SQLite3", Database=str(contacts_db))
    connector = make(dsn="annuaire", query="SELECT ContactID AS id, LastName, Phone FROM Contacts WHERE ContactID <= 10 ORDER BY ContactID",
                     id_column="id")
    records = await read_all(connector)
    assert [r.id for r in records] == [str(i) for i in range(1, 11)]
    assert records[0].fields == {"id": "1", "LastName": "Lefebvre0001", "Phone": "+33 2 40 000001"}
    text = await connector.test_connection()
    assert text == "DSN=annuaire: 10 rows, columns id, LastName, Phone"


async def test_a_table_name_with_a_space_is_quoted_for_the_driver(contacts_db: Path) -> None:
    connector = make(connection_string=f"Driver={{SQLite3}};Database={contacts_db}", table="Annuaire client")
    [record] = await read_all(connector)
    assert record.fields == {"id": "1", "nom": "Martin"}
    assert record.id == "row 1"  # no id_column: rows are numbered


async def test_malformed_rows_are_yielded_and_named_so_the_sync_report_can_count_them(
    contacts_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connector = make(connection_string=f"Driver={{SQLite3}};Database={contacts_db}", table="Contacts", id_column="contactid")
    with caplog.at_level(logging.WARNING):
        records = await read_all(connector)
    no_id = records[ROWS]
    assert no_id.id == f"row {ROWS + 1}"
    assert no_id.fields["LastName"] == "Sans-Identifiant" and no_id.fields["ContactID"] is None
    assert f'crm: row {ROWS + 1} has an empty ContactID; it is identified as "row {ROWS + 1}"' in caplog.text
    empty = records[ROWS + 2]
    # A date column holding "not a date": the driver gives no value rather than failing the read.
    assert empty.id == str(ROWS + 3) and empty.fields["Born"] is None and empty.fields["LastName"] is None


async def test_an_id_column_that_does_not_exist_lists_the_columns(contacts_db: Path) -> None:
    connector = make(connection_string=f"Driver={{SQLite3}};Database={contacts_db}", table="Contacts", id_column="Ident")
    with pytest.raises(ConnectorError) as failure:
        await read_all(connector)
    assert str(failure.value) == (
        'id_column "Ident" is not a column of "SELECT * FROM Contacts"; its columns are: '
        "ContactID, LastName, FirstName, Phone, Mobile, Born, Balance, Vip, Photo")


async def test_a_bad_query_fails_with_the_query_and_the_drivers_message(contacts_db: Path) -> None:
    source = f"Driver={{SQLite3}};Database={contacts_db}"
    with pytest.raises(ConnectorError) as failure:
        await read_all(make(connection_string=source, query="SELECT Nom FROM Contacts"))
    message = str(failure.value)
    assert f'{source}: the query "SELECT Nom FROM Contacts" failed: ' in message
    assert "no such column: Nom" in message

    with pytest.raises(ConnectorError, match=r'the query "SELECT \* FROM Contactz" failed: .*no such table: Contactz'):
        await read_all(make(connection_string=source, table="Contactz"))


async def test_an_unknown_dsn_names_the_installed_drivers(odbc: OdbcEnvironment) -> None:
    with pytest.raises(ConnectorError) as failure:
        await read_all(make(dsn="nowhere", table="Contacts"))
    message = str(failure.value)
    assert message.startswith("DSN=nowhere: ")
    assert "Data source name not found" in message and "(SQLSTATE IM002)" in message
    assert f"declare the DSN in odbc.ini or name an installed driver (installed: {', '.join(odbc.drivers)})" in message


def test_config_needs_a_source_and_exactly_one_of_table_and_query() -> None:
    with pytest.raises(ConfigErrors) as failure:
        make(table="Contacts")
    assert "twp.toml: directories.crm: set connection_string" in str(failure.value)
    with pytest.raises(ConfigErrors, match="set exactly one of table and query"):
        make(dsn="x", table="Contacts", query="SELECT 1")
    with pytest.raises(ConfigErrors, match="set exactly one of table and query"):
        make(dsn="x")


def test_passwords_are_removed_from_connection_strings_and_messages() -> None:
    assert redact("Driver={X};Server=db;Uid=sa;Pwd=s3cr;et") == "Driver={X};Server=db;Uid=sa;Pwd=***;et"
    assert redact("DSN=crm;PASSWORD={a;b}}c};Port=1") == "DSN=crm;PASSWORD=***;Port=1"
    assert redact("login failed for s3cr", ["s3cr"]) == "login failed for ***"
    connector = make(connection_string="Driver={PostgreSQL Unicode};Server=db;PWD=inline-secret", user="crm",
                     password="other;secret}", table="Contacts")
    assert connector.connection_string().endswith("UID=crm;PWD={other;secret}}}")
    assert connector.describe() == "Driver={PostgreSQL Unicode};Server=db;PWD=***;UID=crm;PWD=***"


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crm(odbc: OdbcEnvironment, postgres_server: PostgresServer) -> dict[str, Any]:
    """A PostgreSQL CRM database with a contacts view, read by a password-protected role."""
    need(odbc, "PostgreSQL Unicode")
    postgres_server.create_database("crm")
    postgres_server.create_role("twp_reader", "Reader-pass-1")
    with psycopg.connect(postgres_server.conninfo("crm"), autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, city text, phone text, "
                     "created timestamp, score numeric(5,1))")
        conn.execute("INSERT INTO customers SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, "
                     "'Client ' || i, CASE WHEN i % 2 = 0 THEN 'Nantes' END, '+33 2 51 ' || lpad(i::text, 6, '0'), "
                     "timestamp '2024-01-02 03:04:05', i / 10.0 FROM generate_series(1, 1500) AS i")
        conn.execute("GRANT SELECT ON customers TO twp_reader")
    source = f"Driver={{PostgreSQL Unicode}};Server={postgres_server.host};Port={postgres_server.port};Database=crm"
    return {"server": postgres_server, "connection_string": source, "user": "twp_reader", "password": "Reader-pass-1"}


async def test_postgresql_through_psqlodbc_reads_every_row_in_batches(crm: dict[str, Any]) -> None:
    connector = make(connection_string=crm["connection_string"], user=crm["user"], password=crm["password"],
                     query="SELECT * FROM customers ORDER BY name", id_column="id", batch_size=200)
    records = await read_all(connector)
    assert len(records) == 1500
    one = next(r for r in records if r.fields["name"] == "Client 42")
    assert one.id == "00000000-0000-4000-8000-000000000042"
    assert one.fields == {"id": one.id, "name": "Client 42", "city": "Nantes", "phone": "+33 2 51 000042",
                          "created": "2024-01-02T03:04:05", "score": "4.2"}
    assert "1,500 rows" in await connector.test_connection()


async def test_postgresql_refusing_the_password_is_auth_failed_without_the_password(crm: dict[str, Any]) -> None:
    connector = make(connection_string=crm["connection_string"], user=crm["user"], password="Wrong-pass-9", table="customers")
    with pytest.raises(AuthFailed) as failure:
        await read_all(connector)
    message = str(failure.value)
    assert 'password authentication failed for user "twp_reader"' in message
    assert "check user and password" in message
    assert "Wrong-pass-9" not in message and "PWD=***" in message

    # The same password written into the connection string is hidden as well.
    inline = make(connection_string=crm["connection_string"] + ";Uid=twp_reader;Pwd=Wrong-pass-9", table="customers")
    with pytest.raises(AuthFailed) as failure:
        await read_all(inline)
    assert "Wrong-pass-9" not in str(failure.value)


async def test_a_database_that_is_down_is_not_ready(odbc: OdbcEnvironment) -> None:
    need(odbc, "PostgreSQL Unicode")
    port = find_free_port()
    connector = make(connection_string=f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={port};Database=crm",
                     user="twp_reader", password="Reader-pass-1", table="customers", timeout=3)
    with pytest.raises(NotReady) as failure:
        await read_all(connector)
    assert "cannot reach the database" in str(failure.value)
    assert "Connection refused" in str(failure.value)


async def test_rows_the_database_cannot_convert_fail_the_sync_naming_the_query(crm: dict[str, Any]) -> None:
    """A Latin-1 name in a SQL_ASCII database cannot be sent as UTF-8: the server refuses the query."""
    server: PostgresServer = crm["server"]
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE legacy ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    with psycopg.connect(server.conninfo("legacy"), autocommit=True) as conn:
        conn.execute("SET client_encoding TO 'SQL_ASCII'")
        conn.execute(b"CREATE TABLE contacts (id int, name text); INSERT INTO contacts VALUES (1, 'Ren\xe9')")
    connector = make(connection_string=f"Driver={{PostgreSQL Unicode}};Server={server.host};Port={server.port};Database=legacy;Uid=twp",
                     table="contacts")
    with pytest.raises(ConnectorError) as failure:
        await read_all(connector)
    message = str(failure.value)
    assert 'the query "SELECT * FROM contacts" failed: ' in message
    assert 'invalid byte sequence for encoding "UTF8": 0xe9' in message and "(SQLSTATE 22021)" in message


# -- Microsoft Access (.mdb) through mdbtools ----------------------------------------------


@pytest.fixture(scope="module")
def access_file(odbc: OdbcEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Access address book written by the kit (mdbtools reads .mdb files but cannot write them)."""
    need(odbc, "MDBTools")
    rows: list[tuple[Any, ...]] = [(i, f"Girard{i:04d}", "Hélène", f"+33 4 72 {i:06d}") for i in range(1, ROWS + 1)]
    rows += [(None, "Sans-Identifiant", None, "+33 4 72 999999"), (ROWS + 2, None, None, None)]
    return write_mdb(tmp_path_factory.mktemp("mdb") / "Annuaires.mdb", "Contacts",
                     [("ContactID", "long"), ("Nom", "text"), ("Prenom", "text"), ("Telephone", "text")], rows)


def test_the_kits_access_file_is_one_mdbtools_reads(access_file: Path) -> None:
    tables = subprocess.run(["mdb-tables", "-1", str(access_file)], capture_output=True, text=True, check=True).stdout
    assert tables.split() == ["Contacts"]
    export = subprocess.run(["mdb-export", str(access_file), "Contacts"], capture_output=True, text=True, check=True).stdout
    lines = export.splitlines()
    assert lines[0] == "ContactID,Nom,Prenom,Telephone"
    assert lines[1] == '1,"Girard0001","Hélène","+33 4 72 000001"'
    assert len(lines) == 1 + ROWS + 2


async def test_an_access_table_is_read_through_the_mdbtools_odbc_driver(access_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The guide's connection string names Microsoft's driver; on Linux it is mdbtools'.
    connector = make(connection_string=f"Driver={{MDBTools}};DBQ={access_file}", table="Contacts", id_column="ContactID")
    with caplog.at_level(logging.WARNING):
        records = await read_all(connector)
    assert len(records) == ROWS + 2
    assert connector.source_fields() == ["ContactID", "Nom", "Prenom", "Telephone"]
    assert records[41].id == "42"
    assert records[41].fields == {"ContactID": "42", "Nom": "Girard0042", "Prenom": "Hélène", "Telephone": "+33 4 72 000042"}
    assert records[ROWS].id == f"row {ROWS + 1}" and records[ROWS].fields["Nom"] == "Sans-Identifiant"
    assert f"row {ROWS + 1} has an empty ContactID" in caplog.text
    assert records[ROWS + 1].fields == {"ContactID": str(ROWS + 2), "Nom": None, "Prenom": None, "Telephone": None}


async def test_a_query_mdbtools_cannot_run_is_named_in_the_error(access_file: Path) -> None:
    connector = make(connection_string=f"Driver={{MDBTools}};DBQ={access_file}", query="SELECT Name FROM Contacts")
    with pytest.raises(ConnectorError) as failure:
        await read_all(connector)
    assert 'the query "SELECT Name FROM Contacts" failed: ' in str(failure.value)
    assert "Couldn't parse SQL" in str(failure.value)
