"""An admin adds ODBC directories and synchronizes them through the API (guide 8.4).

End to end: the installed ``twp-odbc`` plugin, the kernel's directory service (mapping,
one-transaction replacement, sync reports) and real unixODBC drivers.  Malformed rows
are counted and named in the report; a database that goes down, or a query that
breaks, fails the sync and leaves the previous contacts searchable.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from twpcore.testing.directories import admin_and_domain, reverse
from twpcore.testing.servers import OdbcEnvironment, PostgresServer, write_mdb


@pytest.fixture(scope="module")
def odbc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = OdbcEnvironment(tmp_path_factory.mktemp("odbc"))
    for driver in ("SQLite3", "PostgreSQL Unicode"):
        if not env.has_driver(driver):
            if os.environ.get("CI"):
                pytest.fail(f"ODBC driver {driver} is not installed; run scripts/install-system-deps.sh")
            pytest.skip(f"ODBC driver {driver} is not installed")
    with env.activated():
        yield env


async def test_a_sqlite_address_book_syncs_and_its_malformed_rows_are_reported(
    twp_app: Any, odbc: OdbcEnvironment, tmp_path: Path
) -> None:
    path = tmp_path / "Annuaire.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE Contacts (ContactID INTEGER, Nom TEXT, Prenom TEXT, Telephone TEXT, Societe TEXT)")
        db.executemany("INSERT INTO Contacts VALUES (?,?,?,?,?)",
                       [(i, f"Bernard{i:03d}", "Anne", f"+33 2 40 {i:06d}", "Garage Martin") for i in range(1, 301)])
        db.executemany("INSERT INTO Contacts VALUES (?,?,?,?,?)", [
            (None, "Sans-Id", "Luc", "+33 2 40 999999", None),      # no id
            (301, None, None, None, None),                          # nothing to show
            (7, "Doublon", "Eve", "+33 2 40 888888", None),         # the id of another row
        ])
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server, company="Garage Martin", domain="Nantes")
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Annuaire", "connector": "odbc",
        "options": {"connection_string": f"Driver={{SQLite3}};Database={path}", "table": "Contacts", "id_column": "ContactID"},
        "fields": {"id": "ContactID", "last_name": "Nom|u", "first_name": "Prenom", "phone": "Telephone", "company": "Societe"},
    }, status=201)

    test = await admin.post(f"/api/v1/directories/{directory['id']}/test", status=200)
    assert test["ok"] is True and "303 rows, columns ContactID, Nom, Prenom, Telephone, Societe" in test["message"]

    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert report["status"] == "ok", report
    assert (report["records"], report["created"], report["ignored"]) == (303, 300, 3)
    assert sorted(report["problems"], key=lambda p: p["record"]) == [
        {"record": "301", "reason": "no name and no number"},
        {"record": "7", "reason": "duplicate id '7' (already given by record 7)"},
        {"record": "row 301", "reason": "empty ID field (ContactID)"},
    ]
    found = await reverse(admin, "+33240000042", domain_id=domain_id)
    assert found["found"] is True and found["contact"]["last_name"] == "BERNARD042"

    # The table is renamed by a careless migration: the sync fails, naming the query.
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE Contacts RENAME TO Contacts_old")
    failed = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert failed["status"] == "failed"
    assert 'the query "SELECT * FROM Contacts" failed: ' in failed["error"] and "no such table: Contacts" in failed["error"]
    assert failed["error"].endswith("previous contacts kept")
    assert (await reverse(admin, "+33240000042", domain_id=domain_id))["found"] is True


async def test_a_postgresql_crm_going_down_keeps_the_previous_contacts(twp_app: Any, odbc: OdbcEnvironment) -> None:
    with PostgresServer() as pg:
        pg.create_database("crm")
        pg.create_role("twp_reader", "Reader-pass-1")
        with psycopg.connect(pg.conninfo("crm"), autocommit=True) as conn:
            conn.execute("CREATE TABLE contacts (id int PRIMARY KEY, last_name text, mobile text)")
            conn.execute("INSERT INTO contacts SELECT i, 'Client' || i, '+33 6 40 ' || lpad(i::text, 6, '0') "
                         "FROM generate_series(1, 2000) AS i")
            conn.execute("GRANT SELECT ON contacts TO twp_reader")
        server = await twp_app()
        admin, domain_id = await admin_and_domain(server, company="Garage Martin", domain="Nantes")
        directory = await admin.post("/api/v1/directories", {
            "domain_id": domain_id, "name": "CRM", "connector": "odbc",
            "options": {"connection_string": f"Driver={{PostgreSQL Unicode}};Server={pg.host};Port={pg.port};Database=crm",
                        "user": "twp_reader", "password": "Reader-pass-1", "table": "contacts", "id_column": "id"},
            "fields": {"id": "id", "last_name": "last_name", "mobile": "mobile"},
        }, status=201)
        report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
        assert (report["status"], report["created"]) == ("ok", 2000), report
        pg.stop()

        failed = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
        assert failed["status"] == "failed"
        assert failed["error"].startswith("source not ready: ")
        assert "cannot reach the database" in failed["error"]
        assert "Reader-pass-1" not in failed["error"]
        assert failed["error"].endswith("previous contacts kept")
        found = await reverse(admin, "+33640001999", domain_id=domain_id)
        assert found["found"] is True and found["contact"]["last_name"] == "Client1999"


async def test_an_access_file_syncs_through_mdbtools(twp_app: Any, odbc: OdbcEnvironment, tmp_path: Path) -> None:
    if not odbc.has_driver("MDBTools"):
        if os.environ.get("CI"):
            pytest.fail("ODBC driver MDBTools is not installed; run scripts/install-system-deps.sh")
        pytest.skip("ODBC driver MDBTools is not installed")
    path = write_mdb(tmp_path / "Annuaire.mdb", "Contacts", [("ContactID", "long"), ("Nom", "text"), ("Telephone", "text")],
                     [(i, f"Moreau{i:03d}", f"+33 3 80 {i:06d}") for i in range(1, 1001)] + [(None, "Sans-Id", "+33 3 80 999999")])
    server = await twp_app()
    admin, domain_id = await admin_and_domain(server, company="Garage Martin", domain="Nantes")
    directory = await admin.post("/api/v1/directories", {
        "domain_id": domain_id, "name": "Access", "connector": "odbc",
        "options": {"connection_string": f"Driver={{MDBTools}};DBQ={path}", "table": "Contacts", "id_column": "ContactID"},
        "fields": {"id": "ContactID", "last_name": "Nom", "phone": "Telephone"},
    }, status=201)
    report = await admin.post(f"/api/v1/directories/{directory['id']}/sync", status=200)
    assert (report["status"], report["records"], report["created"], report["ignored"]) == ("ok", 1001, 1000, 1), report
    assert report["problems"] == [{"record": "row 1001", "reason": "empty ID field (ContactID)"}]
    found = await reverse(admin, "+33380000777", domain_id=domain_id)
    assert found["found"] is True and found["contact"]["last_name"] == "Moreau777"
