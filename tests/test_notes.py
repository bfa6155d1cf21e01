"""Personal notes and the event journal (user guide 4.1, 4.1.4, 2.2.9.4), against a PBX simulator.

Alice takes a call from Jean Dupont (one of her private contacts), comments the call,
writes a note on the contact and one on his number in another format; the event journal
of the contact shows the call and both notes, newest first, and only Alice reads them.
"""

from __future__ import annotations

import time

import pytest

from twp_csta.testing import EXTERNAL, DriverConformance, renamed_driver, start_lab
from twpcore.testing.call_logs import wait_call_log
from twpcore.testing.office import office

BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)
"""The scenario on both stores: the queries are plain SQLAlchemy Core, the proof is running them."""


async def test_a_call_comment_and_notes_on_a_contact_make_its_event_journal(twp_app):
    lab = await start_lab(twp_app, "csta_notes", plugins=renamed_driver("csta_notes"))
    try:
        alice, bob = lab.users["alice"], lab.users["bob"]
        private = await lab.admin.create("directories", domain_id=lab.domain_id, name="[TwsPrivate]", connector="private", type="private")
        await lab.admin.create("authorizations", object_type="directory", object_ref=f"directory:{private['id']}", subject_type="user",
                               subject_id=lab.user_ids["alice"])
        jean = await alice.post("/api/v1/me/contacts", {"last_name": "Dupont", "first_name": "Jean", "phone": "06 12 34 56 78"}, status=201)
        call_id = await DriverConformance.incoming_answered(lab, "alice")
        ws = await lab.ws("alice")
        mark = ws.mark()
        lab.sim.hang_up(EXTERNAL, call_id)
        await ws.expect("call.cleared", after=mark, call={"call_id": call_id})
        await lab.kernel.telephony.call_logs.flush()
        [call] = (await wait_call_log(alice, 1))["items"]

        comment = await alice.post("/api/v1/journal/entries", {"text": "Wants a quote by Friday", "call_log_id": call["id"]}, status=201)
        assert (comment["kind"], comment["audience"], comment["call_log_id"]) == ("note", "me", call["id"])
        on_contact = await alice.post("/api/v1/journal/entries", {"text": "Prefers mornings", "contact_id": jean["id"]}, status=201)
        on_number = await alice.post("/api/v1/journal/entries", {"text": "Mobile, not office", "number": "+33 6 12 34 56 78"}, status=201)

        of_call = await alice.get("/api/v1/journal", params={"call_log_id": str(call["id"])})
        assert [(e["kind"], e.get("text")) for e in of_call["items"]] == [("note", "Wants a quote by Friday"), ("call", None)]
        of_contact = await alice.get("/api/v1/journal", params={"contact_id": str(jean["id"])})
        kinds = [(e["kind"], e["id"]) for e in of_contact["items"]]
        assert ("note", on_contact["id"]) in kinds and ("note", on_number["id"]) in kinds and ("call", call["id"]) in kinds
        assert of_contact["items"][-1]["kind"] == "call" and of_contact["items"][-1]["number"] == EXTERNAL
        by_number = await alice.get("/api/v1/journal", params={"number": "0612345678", "calls": "false"})
        assert [e["id"] for e in by_number["items"]] == [on_number["id"]]

        # Personal notes are for their author only.
        await bob.get("/api/v1/journal", params={"call_log_id": str(call["id"])}, status=404)
        await bob.get("/api/v1/journal", params={"contact_id": str(jean["id"])}, status=404)
        assert (await bob.get("/api/v1/journal", params={"number": "0612345678"}))["items"] == []
        assert (await bob.get("/api/v1/notifications/received"))["items"] == []
        await bob.delete(f"/api/v1/journal/entries/{on_number['id']}", status=404)
        await alice.delete(f"/api/v1/journal/entries/{on_number['id']}")
        assert (await alice.get("/api/v1/journal", params={"number": "0612345678", "calls": "false"}))["items"] == []
    finally:
        await lab.close()


@BOTH
async def test_a_note_names_exactly_one_contact_of_the_authors_company(twp_app):
    o = await office(twp_app)
    ann = o["ann"]["client"]
    both = await ann.post("/api/v1/journal/entries", {"text": "x", "user_id": o["bob"]["id"], "number": "0612345678"}, status=400)
    assert "exactly one" in both["detail"]
    none = await ann.post("/api/v1/journal/entries", {"text": "x"}, status=400)
    assert "exactly one" in none["detail"]
    foreign = await ann.post("/api/v1/journal/entries", {"text": "x", "user_id": o["zoe"]["id"]}, status=404)
    assert foreign["field"] == "user_id"
    await ann.post("/api/v1/journal/entries", {"text": "x", "contact_id": 999999}, status=404)
    await ann.post("/api/v1/journal/entries", {"text": "x", "call_log_id": 999999}, status=404)
    await ann.get("/api/v1/journal", params={"user_id": str(o["zoe"]["id"])}, status=404)
    await ann.get("/api/v1/journal", status=400)
    note = await ann.post("/api/v1/journal/entries", {"text": "Knows the Lyon customers", "user_id": o["bob"]["id"]}, status=201)
    assert [e["id"] for e in (await ann.get("/api/v1/journal", params={"user_id": str(o["bob"]["id"])}))["items"]] == [note["id"]]
    # Bob does not see Ann's personal note about him.
    assert (await o["bob"]["client"].get("/api/v1/journal", params={"user_id": str(o["ann"]["id"])}))["items"] == []
    await o["root"].post("/api/v1/journal/entries", {"text": "x", "number": "1"}, status=403)  # administrators write no notes


async def test_the_daily_purge_applies_notification_number_days_of_storage(twp_app):
    o = await office(twp_app)
    await o["ann"]["client"].post("/api/v1/journal/entries", {"text": "old", "number": "0612345678"}, status=201)
    await o["zoe"]["client"].post("/api/v1/journal/entries", {"text": "kept for ever", "number": "0612345678"}, status=201)
    await o["root"].create("parameter_values", name="Notification-NumberDaysOfStorage", scope="domain", scope_id=o["Bravo"]["domain"], value="0")
    teamwork = o["server"].kernel.teamwork
    assert (await teamwork.purge(time.time() + 364 * 86400))["journal_notes"] == 0
    assert (await teamwork.purge(time.time() + 366 * 86400))["journal_notes"] == 1
    assert len((await o["zoe"]["client"].get("/api/v1/journal", params={"number": "0612345678"}))["items"]) == 1
