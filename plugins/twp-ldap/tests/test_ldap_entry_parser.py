"""The connector's SearchResultEntry parser gives what ldap3's own decoder gives, for any entry.

Entries are encoded with ldap3's ASN.1 definitions (RFC 4511) and pyasn1's BER encoder,
so lengths in short and long form, empty values, many values, binary values and large
message ids are all exercised; a message the parser does not handle (another
operation, an entry with controls) is left to ldap3.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.operation.search import search_result_entry_response_to_dict_fast
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    AttributeDescription,
    AttributeValue,
    LDAPMessage,
    MessageID,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    SearchResultEntry,
    Vals,
)
from ldap3.utils.asn1 import decode_message_fast, encode

from twp_ldap.connector import _stub, parse_search_entry


def encode_entry(message_id: int, dn: str, attributes: list[tuple[str, list[bytes]]]) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    partial = PartialAttributeList()
    for i, (name, values) in enumerate(attributes):
        attribute = PartialAttribute()
        attribute["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals.setComponentByPosition(j, AttributeValue(value))
        attribute["vals"] = vals
        partial.setComponentByPosition(i, attribute)
    entry["attributes"] = partial
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    op = ProtocolOp()
    op.setComponentByName("searchResEntry", entry)
    message["protocolOp"] = op
    return encode(message)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-;=", min_size=1, max_size=40)
values = st.one_of(st.binary(max_size=20), st.binary(min_size=120, max_size=70_000))
entries = st.tuples(
    st.integers(min_value=1, max_value=2**31 - 1),
    st.text(max_size=300).map(lambda s: "cn=" + s),
    st.lists(st.tuples(names, st.lists(values, min_size=1, max_size=6)), max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(entries)
def test_the_parser_agrees_with_ldap3(entry: tuple[int, str, list[tuple[str, list[bytes]]]]) -> None:
    message_id, dn, attributes = entry
    raw = encode_entry(message_id, dn, attributes)
    expected = decode_message_fast(raw)
    expected_entry = search_result_entry_response_to_dict_fast(expected["payload"], None, None, False)

    parsed = parse_search_entry(raw)
    assert parsed is not None
    parsed_id, parsed_dn, parsed_attributes = parsed
    assert parsed_id == expected["messageID"] == message_id
    assert parsed_dn == expected_entry["raw_dn"] == dn.encode("utf-8")
    assert [(n.decode(), v) for n, v in parsed_attributes] == [(n, [bytes(x) for x in v]) for n, v in attributes]


@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_the_stand_in_keeps_the_message_id(message_id: int) -> None:
    decoded = decode_message_fast(_stub(message_id))
    assert decoded["messageID"] == message_id
    assert decoded["protocolOp"] == 4


def test_other_messages_and_entries_with_controls_are_left_to_ldap3() -> None:
    entry = encode_entry(3, "cn=a", [("cn", [b"a"])])
    # The same entry followed by a Controls element ([0] constructed, one control).
    control = b"\x30\x06\x04\x04" + b"1.2."
    controls = b"\xa0" + bytes([len(control)]) + control
    body = entry[2:] + controls
    with_controls = b"\x30" + bytes([len(body)]) + body
    assert parse_search_entry(with_controls) is None
    # A SearchResultDone (APPLICATION 5).
    done = b"\x30\x0c\x02\x01\x03\x65\x07\x0a\x01\x00\x04\x00\x04\x00"
    assert parse_search_entry(done) is None
    assert parse_search_entry(b"") is None
    assert parse_search_entry(entry[:-3]) is None  # truncated: no exception, ldap3 decides
