"""The files connector: CSV (delimiters, encodings, malformed lines) and Excel .xlsx through openpyxl."""

from __future__ import annotations

import openpyxl

from twpcore.testing.directories import directory_world, granted_directory

FIELDS = {"id": "Id", "last_name": "Nom", "first_name": "Prenom", "company": "Societe", "phone": "Telephone|p::0{0}::^[1-9][0-9]{8}$"}


async def directory(admin, domain, user, options, name="File"):
    return await granted_directory(admin, domain, user, name=name, connector="files", options=options, fields=FIELDS)


async def test_csv_with_semicolons_cp1252_and_malformed_lines(twp_app, tmp_path):
    server, admin, domain, user = await directory_world(twp_app)
    path = tmp_path / "annuaire.csv"
    path.write_bytes("Id;Nom;Prenom;Societe;Telephone\r\n1;Lefèvre;Élodie;Société Générale;155171889\r\n"
                     "2;Martin;Paul;ACME;01 55 17 18 90;extra;cells\r\n\r\n3;Durand;Léa;;0155171891\r\n4;;;;\r\n".encode("cp1252"))
    d = await directory(admin, domain, user, {"path": str(path), "encoding": "cp1252"})
    assert (await admin.post(f"/api/v1/directories/{d['id']}/test"))["message"].endswith("; 1 malformed rows")
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["status"], report["created"], report["ignored"]) == ("ok", 2, 2)
    assert report["problems"] == [{"record": "line 3", "reason": "7 cells, the header has 5: a delimiter or quote is probably wrong in this line"},
                                  {"record": "line 6", "reason": "no name and no number"}]
    alice = await server.login("alice", "a-long-password-1")
    elodie = (await alice.get("/api/v1/directories/search", params={"q": "lefevre"}))["items"][0]
    assert elodie["company"] == "Société Générale" and elodie["numbers"] == [{"type": "phone", "number": "0155171889"}]
    # Read as UTF-8, the same bytes are refused, naming the fix; the contacts stay.
    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"path": str(path)}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and "set the encoding option" in report["error"]
    # A missing file: not ready, contacts kept.
    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"path": str(tmp_path / "gone.csv")}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and report["error"].startswith("source not ready: file") and "not found" in report["error"]
    assert len((await alice.get("/api/v1/directories/search", params={"q": "durand"}))["items"]) == 1


async def test_excel_sheet_numbers_and_errors(twp_app, tmp_path):
    server, admin, domain, user = await directory_world(twp_app)
    path = tmp_path / "annuaire.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Intro"
    sheet = book.create_sheet("Contacts")
    sheet.append(["Id", "Nom", "Prenom", "Societe", "Telephone"])
    sheet.append([1, "Dupont", "Jean", "SSDEI", 155171889])  # Excel keeps the number, without its leading 0
    sheet.append([2, "Martin", None, None, None, None, "oops"])
    sheet.append([3, None, None, "Standard", "01 55 17 18 00"])
    book.save(path)
    d = await directory(admin, domain, user, {"path": str(path), "sheet": "Contacts"})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["status"], report["created"], report["ignored"]) == ("ok", 2, 1)
    assert report["problems"][0]["record"] == "row 3"
    alice = await server.login("alice", "a-long-password-1")
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "+33 1 55 17 18 89"}))["contact"]["last_name"] == "Dupont"
    assert (await alice.get("/api/v1/directories/search", params={"q": "standard"}))["items"][0]["numbers"][0]["number"] == "01 55 17 18 00"
    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"path": str(path), "sheet": "Nope"}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and "no sheet 'Nope' among the workbook's 2 sheets" in report["error"]
    path.write_bytes(b"not a zip")
    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"path": str(path)}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and "not a readable .xlsx workbook" in report["error"]
    assert len((await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"]) == 1
