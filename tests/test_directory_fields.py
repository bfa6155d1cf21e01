"""Field options (guide 8.1) and mapping of a source record, without a server."""

from __future__ import annotations

import hashlib

import pytest

from twpcore.directory.fields import Ignored, Mapping, MappingError, fold, parse_spec, search_tokens, words


def test_options_apply_in_the_written_order():
    spec = parse_spec("last_name", "Surname | h, u")
    assert spec.source == "Surname" and [o.letter for o in spec.options] == ["h", "u"]
    assert spec.transform("dupont") == hashlib.sha256(b"dupont").hexdigest().upper()
    assert parse_spec("last_name", "sn|u").transform("Dupont") == "DUPONT"
    assert parse_spec("last_name", "sn|l").transform("DuPont") == "dupont"
    assert parse_spec("last_name", "sn|I").transform("DuPont") == "dupont"  # the guide's PDF prints "l" as "I"
    assert parse_spec("last_name", "sn|m").transform("dUPONT") == "Dupont"


def test_prefix_option_with_and_without_regex():
    spec = parse_spec("phone", r"PhoneNumber|p::9{0}::^[0-9]{4}$")
    assert spec.transform("6660") == "96660"          # four digits: 9 added
    assert spec.transform("0155171889") == "0155171889"  # not four digits: unchanged
    assert parse_spec("phone", "tel|p::+33 {0}").transform("155171889") == "+33 155171889"
    combined = parse_spec("phone", "tel | u,p::0{0}::^[1-9][0-9]{8}$")
    assert [o.letter for o in combined.options] == ["u", "p"] and combined.transform("155171889") == "0155171889"
    # A regex may hold commas: it runs to the end of the spec.
    assert parse_spec("phone", "tel|p::9{0}::^[0-9]{3,4}$").transform("123") == "9123"


@pytest.mark.parametrize("field, spec, message", [
    ("last_name", "sn|x", 'option "x" is unknown'),
    ("last_name", "sn|u,,m", "empty option"),
    ("phone", "tel|p::9::^[0-9]{4}$", "must contain {0}"),
    ("phone", "tel|p::9{0}::^[0-9{4}$", "regular expression"),
    ("last_name", "|u", "names no source field"),
    ("last_name", "sn|", "nothing after"),
    ("surname", "sn", "unknown TWP field"),
])
def test_a_bad_spec_names_the_field_and_the_option(field, spec, message):
    with pytest.raises(MappingError) as info:
        parse_spec(field, spec)
    assert str(info.value).startswith(f"fields.{field}: ") and message in str(info.value)


def test_mapping_reads_lists_bytes_numbers_and_case_insensitive_names():
    m = Mapping({"id": "objectGUID", "last_name": "SN", "first_name": "givenName", "phone": "telephoneNumber", "mobile": "mobile"})
    guid = bytes(range(16))
    c = m.apply(
        "cn=x", {"objectguid": guid, "sn": ["Dupont"], "givenname": "Élodie", "telephonenumber": ["0155171889", "0155171890"], "mobile": 612345678.0}
    )
    assert c.source_id == "03020100-0504-0706-0809-0a0b0c0d0e0f"
    assert c.data == {"last_name": "Dupont", "first_name": "Élodie"}
    assert [(n.type, n.number) for n in c.numbers] == [("phone", "0155171889"), ("phone", "0155171890"), ("mobile", "612345678")]


def test_records_without_name_and_number_or_id_are_ignored_with_a_reason():
    m = Mapping({"id": "uid", "last_name": "sn", "department": "ou", "phone": "tel"})
    assert m.apply("row 3", {"uid": "7", "ou": "Compta"}) == Ignored("row 3", "no name and no number")
    assert m.apply("row 4", {"sn": "Dupont"}) == Ignored("row 4", "empty ID field (uid)")


def test_red_list_per_number_type_and_vip_label():
    m = Mapping({"last_name": "sn", "phone": "phoneNumber", "mobile": "gsmPhone", "assistant": "secretaire",
                 "redlist_phone": "private", "redlist_mobile": "private", "private3": "Vip"}, {"private3": "[VIP]"})
    noa = m.apply("2", {"sn": "Hollande", "phoneNumber": "4594", "gsmPhone": "0601020304", "secretaire": "4694", "private": "1", "Vip": "Président"})
    assert [(n.type, n.redlisted) for n in noa.numbers] == [("phone", True), ("mobile", True), ("assistant", False)]
    assert noa.vip == "Président"
    for value in ("1", "true", "YES", "y", "lr", "rf"):
        assert all(n.redlisted for n in m.apply("x", {"sn": "A", "phoneNumber": "1", "private": value}).numbers)
    assert not any(n.redlisted for n in m.apply("x", {"sn": "A", "phoneNumber": "1", "private": "0"}).numbers)
    with pytest.raises(MappingError, match=r"only one private field may be labelled \[VIP\]"):
        Mapping({}, {"private1": "[VIP]", "private2": "[vip]"})


def test_folding_and_search_words():
    assert fold("Élodie ØRSTED Straße") == "elodie orsted strasse"
    assert words("Jean-Pierre O'Brien") == ["jean", "pierre", "o", "brien"]
    assert search_tokens({"last_name": "O'Brien", "first_name": "Zoë", "email": "z.obrien@acme.fr"}) == [
        "o",
        "brien",
        "obrien",
        "zoe",
        "z",
        "acme",
        "fr",
    ]


def test_a_field_set_to_empty_is_not_mapped_but_must_be_a_twp_field():
    """A directory's ``fields`` drop a connector default with "" (or null): the field is then not mapped."""
    mapping = Mapping({"last_name": "sn", "mobile": "", "home": None})
    assert set(mapping.specs) == {"last_name"}
    contact = mapping.apply("uid=1", {"sn": "Dupont", "mobile": "0611223344", "home": "0155171889"})
    assert contact.data == {"last_name": "Dupont"} and contact.numbers == ()
    with pytest.raises(MappingError) as err:
        Mapping.check({"nickname": ""}, {})
    assert err.value.field == "nickname" and "unknown TWP field" in str(err.value)
