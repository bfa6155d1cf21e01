"""The call model: normalized PBX events in, call states and client events out."""

from twpcore.telephony.events import CallSnapshot, PbxEvent
from twpcore.telephony.model import CallModel


def types(changes):
    return [c.type for c in changes]


def test_incoming_call_rings_is_answered_and_cleared():
    m = CallModel()
    ch = m.apply(PbxEvent("delivered", "201", "c1", calling="0612345678", called="201", other="201"))
    assert types(ch) == ["call.delivered", "presence.changed"]
    call = m.call("201", "c1")
    assert (call.state, call.direction, call.remote) == ("alerting", "incoming", "0612345678")
    assert m.presence["201"] == "ringing"
    m.apply(PbxEvent("established", "201", "c1", calling="0612345678", called="201", other="201"))
    assert m.call("201", "c1").state == "connected" and m.presence["201"] == "busy"
    ch = m.apply(PbxEvent("cleared", "201", "c1", cause="normalClearing"))
    assert types(ch) == ["call.cleared", "presence.changed"]
    assert m.calls_of("201") == [] and m.presence["201"] == "idle"


def test_repeated_event_is_not_sent_twice():
    m = CallModel()
    e = PbxEvent("delivered", "201", "c1", calling="300", called="201")
    m.apply(e)
    assert m.apply(e) == []


def test_outgoing_call_shows_remote_alerting_then_connected():
    m = CallModel()
    m.apply(PbxEvent("originated", "201", "c2", calling="201", called="0155171889"))
    m.apply(PbxEvent("delivered", "201", "c2", calling="201", called="0155171889", other="0155171889"))
    call = m.call("201", "c2")
    assert (call.direction, call.state, call.remote_state, call.remote) == ("outgoing", "initiated", "alerting", "0155171889")
    m.apply(PbxEvent("established", "201", "c2", calling="201", called="0155171889", other="0155171889"))
    assert (m.call("201", "c2").state, m.call("201", "c2").remote_state) == ("connected", None)


def test_transfer_clears_the_transferring_device_and_renames_the_survivor():
    m = CallModel()
    m.apply(PbxEvent("established", "201", "a", calling="300", called="201"))
    m.apply(PbxEvent("held", "201", "a"))
    m.apply(PbxEvent("established", "201", "b", calling="201", called="202"))
    ch = m.apply(PbxEvent("transferred", "201", "n", calling="201", old_call_ids=("a", "b"), other="202"))
    assert types(ch)[:2] == ["call.transferred", "call.transferred"] and m.calls_of("201") == []
    m.apply(PbxEvent("established", "202", "b", calling="201", called="202"))
    m.apply(PbxEvent("transferred", "202", "n", calling="201", old_call_ids=("b",), other="300", state="connected"))
    survivor = m.call("202", "n")
    assert survivor is not None and survivor.remote == "300" and m.call("202", "b") is None


def test_reconcile_clears_ghosts_keeps_survivors_and_adds_new_calls():
    m = CallModel()
    m.apply(PbxEvent("established", "201", "kept", calling="300", called="201"))
    m.apply(PbxEvent("delivered", "201", "ghost", calling="301", called="201"))
    ch = m.reconcile("201", [CallSnapshot("kept", "connected", "300"), CallSnapshot("new", "held", "302")])
    assert [(c.type, c.data["call"]["call_id"]) for c in ch if c.type.startswith("call.")] == [("call.cleared", "ghost"), ("call.snapshot", "new")]
    assert {c.call_id for c in m.calls_of("201")} == {"kept", "new"}


def test_forwarding_and_dnd():
    m = CallModel()
    m.apply(PbxEvent("forwarding", "201", forwarding={"type": "busy", "number": "202", "on": True}))
    assert m.forwarding["201"] == {"busy": "202"}
    m.apply(PbxEvent("forwarding", "201", forwarding={"type": "busy", "on": False}))
    assert m.forwarding["201"] == {}
    assert m.apply(PbxEvent("do_not_disturb", "201", dnd=True))[0].data == {"on": True}
