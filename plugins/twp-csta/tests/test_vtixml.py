"""VTI-XML (A5000 supervision, TCP 3199): codec round trips, refused input, framing, and a client against the simulated multi-site."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twp_csta.errors import CstaLinkError, FramingError
from twp_csta.sim import PbxSimulator
from twp_csta.sim.vtixml import VtiSite, VtiXmlSimulator, guide_4_2, split_location
from twp_csta.vtixml import VtiClient, VtiCodecError, VtiError, VtiFraming, decode, encode, item, message

# -- codec -------------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", [
    message("Login", id=1, user="twp", password="s3cret & <more>"),
    message("Monitor", id=9999, device="10001"),
    message("Response", id=2, result="ok", device="10001", site="1", cluster="2"),
    message("Response", id=3, result="error", code="capacity", reason='site 1.1 is full "500"'),
    message("Response", (item("Subscriber", number="10001", name="Zoë Martin", site="1.1"), item("Subscriber", number="10002", name="")),
            id=4, result="ok", count=2),
    message("Event", type="ringing", device="10001", callId="77", calling="0612345678", called="10001", state="alerting"),
    message("Event", type="messageWaiting", device="10001", on="true", count=3),
])
def test_every_message_survives_a_round_trip(msg):
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize(("data", "says"), [
    (b"", "malformed XML"),
    (b"<Monitor id='1' device='1'", "malformed XML"),
    (b"<Dial id='1'/>", "unknown message <Dial>"),
    (b"<Monitor device='1'/>", "attribute id is missing"),
    (b"<Monitor id='0' device='1'/>", "id expected an integer 1-9999, got '0'"),
    (b"<Monitor id='10000' device='1'/>", "got '10000'"),
    (b"<Monitor id='x' device='1'/>", "got 'x'"),
    (b"<Monitor id='5'/>", "<Monitor>: attribute device is missing"),
    (b"<Response id='5' result='maybe'/>", 'result expected "ok" or "error"'),
    (b"<Response id='5' result='error' code='oops'/>", "error code expected one of"),
    (b"<Event device='1' type='explode'/>", "type expected one of"),
    (b"<Event type='ringing'/>", "attribute device is missing"),
    (b"<Monitor id='1' device='1'><Call/></Monitor>", "child <Call> not allowed"),
    (b"<Response id='1' result='ok'><Call><Deeper/></Call></Response>", "nested deeper than two levels"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><Monitor id="1" device="&a;"/>', "DOCTYPE or entity declaration refused"),
    (b"\xff\xfe<\x00M", "VTI-XML"),
])
def test_bad_input_is_refused_with_a_sentence_naming_what_is_wrong(data, says):
    with pytest.raises(VtiCodecError) as info:
        decode(data)
    assert says in info.value.message


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(VtiCodecError, match="attribute callId is missing"):
        encode(message("Answer", id=1, device="10001"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_message_or_a_codec_error(data):
    try:
        decode(data)
    except VtiCodecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][A-Za-z0-9]{0,10}", fullmatch=True).filter(lambda k: k not in ("id", "type", "device")),
                       st.text(max_size=50), max_size=5))
def test_any_attribute_text_round_trips_without_control_characters(extra):
    msg = message("Event", type="dialing", device="10001", **extra)
    back = decode(encode(msg))
    assert dict(back.attrs) == {k: "".join(c for c in v if c == "\t" or c >= " ") for k, v in msg.attrs.items()}


# -- framing -----------------------------------------------------------------------------------


def test_messages_cut_anywhere_come_out_whole():
    framing = VtiFraming()
    stream = b"".join(framing.encode(encode(message("KeepAlive", id=i))) for i in range(1, 6))
    for cut in range(1, len(stream)):
        reader = VtiFraming()
        out = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert [decode(p).id for p in out] == [1, 2, 3, 4, 5]


def test_an_oversized_frame_is_skipped_and_the_next_one_read():
    reader = VtiFraming(max_frame_size=100)
    out = reader.feed(b"X" * 80) + reader.feed(b"X" * 80 + b"\x00" + encode(message("KeepAlive", id=7)) + b"\x00")
    assert isinstance(out[0], FramingError) and out[0].kind == "oversized" and out[0].skipped == 160
    assert decode(out[1]).id == 7
    assert reader.buffered == 0


def test_a_nul_inside_a_message_cannot_be_written():
    with pytest.raises(FramingError, match="NUL"):
        VtiFraming().encode(b"<KeepAlive id='1'/>\x00")


# -- client against the simulator --------------------------------------------------------------


@pytest.fixture
async def a5000():
    switch = await PbxSimulator(devices=("10000-10009",), subscribers={"10000": "Alice Martin", "10001": "Bob Durand"}).start()
    sites, locations = guide_4_2()
    sites = (VtiSite("link0", "1.1", 3),) + sites[1:]
    vti = await VtiXmlSimulator(switch, sites, locations=locations, csta_only={"10009"}, directory={"Reception": "9"}).start()
    yield switch, vti
    await vti.stop()
    await switch.stop()


async def connect(vti, site="link0", **kw):
    events = []
    client = await VtiClient.connect("127.0.0.1", vti.port(site), user="twp", password=kw.pop("password", "vti-secret"),
                                     on_event=events.append, request_timeout=2, **kw)
    return client, events


async def test_login_names_the_connection_site_and_a_wrong_password_is_refused(a5000):
    _, vti = a5000
    client, _ = await connect(vti)
    assert client.login_info["site"] == "1.1" and client.login_info["capacity"] == "3"
    await client.close()
    with pytest.raises(VtiError) as info:
        await connect(vti, password="Xy-zz-9")
    assert info.value.code == "badCredentials" and info.value.http_status == 403 and "Xy-zz-9" not in info.value.message


async def test_monitor_tells_where_the_subscriber_is_logged_and_capacity_is_enforced(a5000):
    _, vti = a5000
    client, _ = await connect(vti)
    answer = await client.request("Monitor", device="10001")
    assert (answer.get("site"), answer.get("cluster")) == ("1", "2")
    await client.request("Monitor", device="10002")
    await client.request("Monitor", device="10003")
    with pytest.raises(VtiError) as info:
        await client.request("Monitor", device="10004")
    assert info.value.code == "capacity" and info.value.http_status == 409 and "10004" in info.value.message
    with pytest.raises(VtiError) as i2052:
        await client.request("Monitor", device="10009")
    assert i2052.value.code == "notSupported"
    assert vti.monitored_on("link0") == {"10001", "10002", "10003"}
    await client.close()


async def test_call_details_arrive_when_the_phone_rings(a5000):
    switch, vti = a5000
    client, events = await connect(vti)
    await client.request("Monitor", device="10001")
    call_id = await switch.incoming_call("0612345678", "10001")
    await switch.wait_until(lambda: any(e.get("type") == "ringing" for e in events), 2, "ringing event")
    ringing = next(e for e in events if e.get("type") == "ringing")
    assert (ringing.get("callId"), ringing.get("calling"), ringing.get("state")) == (call_id, "0612345678", "alerting")
    await client.request("Answer", device="10001", callId=call_id)
    await switch.wait_until(lambda: any(e.get("type") == "connected" for e in events), 2, "connected event")
    snap = await client.request("Snapshot", device="10001")
    assert [(c.get("callId"), c.get("state"), c.get("other")) for c in snap.items] == [(call_id, "connected", "0612345678")]
    await client.request("HangUp", device="10001", callId=call_id)
    await switch.wait_until(lambda: any(e.get("type") == "released" for e in events), 2, "released event")
    with pytest.raises(VtiError) as info:
        await client.request("HangUp", device="10001", callId=call_id)
    assert info.value.code == "unknownCall"
    await client.close()


async def test_message_waiting_subscribers_and_directory(a5000):
    _, vti = a5000
    client, events = await connect(vti)
    await client.request("Monitor", device="10001")
    assert vti.leave_message("10001", "0612345678") == 1
    await asyncio.wait_for(_until(lambda: events), 2)
    assert (events[0].get("type"), events[0].get("count"), events[0].get("calling")) == ("messageWaiting", "1", "0612345678")
    subs = await client.request("Subscribers")
    assert [(s.get("number"), s.get("name"), s.get("site")) for s in subs.items] == [("10000", "Alice Martin", "1.1"), ("10001", "Bob Durand", "1.2")]
    directory = await client.request("Directory")
    assert [(e.get("name"), e.get("number")) for e in directory.items] == [("Reception", "9")]
    await client.close()


async def test_garbage_is_skipped_and_a_lost_link_is_reported_once(a5000):
    _, vti = a5000
    lost = []
    client, _ = await connect(vti, on_link_lost=lost.append)
    vti.send_garbage("link0")
    assert (await client.request("KeepAlive")).ok
    assert client.stats.codec_errors == 1 and client.stats.framing_errors == 0
    await vti.drop("link0")
    await asyncio.wait_for(_until(lambda: lost), 2)
    assert len(lost) == 1 and "closed" in lost[0]
    with pytest.raises(CstaLinkError):
        await client.request("KeepAlive")
    await client.close()


async def test_nothing_is_served_before_login(a5000):
    _, vti = a5000
    reader, writer = await asyncio.open_connection("127.0.0.1", vti.port("link1"))
    writer.write(VtiFraming().encode(encode(message("Monitor", id=1, device="10001"))))
    data = await asyncio.wait_for(reader.readuntil(b"\x00"), 2)
    answer = decode(data[:-1])
    assert (answer.get("result"), answer.get("code")) == ("error", "notLoggedIn")
    writer.close()


def test_guide_4_2_layout():
    sites, locations = guide_4_2()
    assert [(s.site, s.capacity) for s in sites] == [("1.1", 500), ("2.1", 250), ("3.1", 200)]
    per_site: dict[str, int] = {}
    for loc in locations.values():
        per_site[loc.split(".")[0]] = per_site.get(loc.split(".")[0], 0) + 1
    assert per_site == {"1": 500, "2": 250, "3": 100, "4": 100}
    assert split_location("4.2") == ("4", "2") and split_location(None) == (None, None)


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0.01)
