"""What an SMS text becomes before any provider sees it: alphabet, parts, and the number it goes to.

GSM 03.38 (7-bit) carries 160 characters in one SMS and 153 per part of a concatenated
one; a character of the extension table (€, [, ]...) takes two septets and is never cut
between parts.  Any other character needs UCS-2: 70 characters, 67 per part.
"""

from __future__ import annotations

import pytest

from twpcore.kinds import SmsMessage
from twpcore.sms import (
    MESSAGE_PLACEHOLDERS,
    InvalidNumber,
    check_template,
    gsm7_decode,
    gsm7_encode,
    message_values,
    normalize_mobile,
    plan_text,
    split_text,
    udh_concat,
)

ALL = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})


def test_gsm7_round_trip_with_extension_characters():
    text = "Réunion à 10h [salle B] prix ~5€ {ok}\n@£$¥ Ñandù"
    raw = gsm7_encode(text)
    assert len(raw) == len(text) + 6  # [, ], ~, €, {, } are escaped
    assert all(b < 0x80 for b in raw)
    assert gsm7_decode(raw) == text


def test_a_character_outside_gsm7_is_named():
    with pytest.raises(ValueError, match=r"'Ł' \(U\+0141\) has no GSM 7-bit form"):
        gsm7_encode("Łódź")


@pytest.mark.parametrize("length, parts", [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_part_boundaries(length, parts):
    assert len(split_text("a" * length, "gsm7")) == parts


@pytest.mark.parametrize("length, parts", [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_part_boundaries(length, parts):
    assert len(split_text("ж" * length, "ucs2")) == parts


def test_an_escaped_character_is_never_cut_between_parts():
    text = "a" * 152 + "€" + "b" * 10
    first, second = split_text(text, "gsm7")
    assert len(first) == 152  # the € (two septets) would make 154: it moves to part 2
    assert second.startswith(b"\x1b\x65")
    assert gsm7_decode(first + second) == text


def test_a_surrogate_pair_is_never_cut_between_parts():
    text = "x" * 66 + "😀" + "y" * 10
    first, second = split_text(text, "ucs2")
    assert len(first) == 66 * 2
    assert (first + second).decode("utf-16-be") == text


def test_udh_names_reference_total_and_sequence():
    assert udh_concat(0x1A2, 3, 2) == bytes([5, 0, 3, 0xA2, 3, 2])


def test_plan_prefers_gsm7_and_falls_back_to_ucs2():
    assert (plan_text("Café à 5€", ALL, 6).encoding, plan_text("Café à 5€", ALL, 6).parts) == ("gsm7", 1)
    plan = plan_text("Встреча в 10", ALL, 6)
    assert (plan.encoding, plan.parts, plan.ok) == ("ucs2", 1, True)


def test_plan_refuses_what_the_provider_cannot_carry():
    no_ucs2 = plan_text("Rendez-vous 😀", frozenset({"gsm7", "concatenation"}), 6, "provider ovh")
    assert not no_ucs2.ok and "'😀'" in no_ucs2.reason and "provider ovh sends GSM 7-bit only" in no_ucs2.reason
    single = plan_text("x" * 200, frozenset({"gsm7", "ucs2"}), 1, "provider old")
    assert not single.ok
    assert single.reason == ("the text (200 GSM 7-bit characters) needs 2 SMS parts; provider old sends single SMS only, "
                             "at most 160 GSM 7-bit characters; shorten it")
    too_long = plan_text("x" * 1000, ALL, 6, "provider smpp")
    assert not too_long.ok and "needs 7 SMS parts" in too_long.reason and "at most 6 parts (918 characters)" in too_long.reason


@pytest.mark.parametrize("typed, region, e164", [
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("+33 6 12 34 56 78", "DE", "+33612345678"),
    ("0033 6.12.34.56.78", "FR", "+33612345678"),
    ("0151 12345678", "DE", "+4915112345678"),
    ("(202) 555-0100", "US", "+12025550100"),
])
def test_numbers_are_read_with_the_dialing_plan_region(typed, region, e164):
    assert normalize_mobile(typed, region) == e164


@pytest.mark.parametrize("typed, reason", [
    ("", "the number is empty"),
    ("06 12 34 56 7a", "is not a phone number: only digits"),
    ("06 12", '"06 12" is too short for numbers of +33 (FR)'),
    ("06 12 34 56 78 9", "is too long for numbers of +33 (FR)"),
    ("01 23 45 67 89", '"01 23 45 67 89" is a fixed-line number; an SMS needs a mobile number'),
    ("0800 123 456", "is a toll-free number"),
    ("0899 123 456", "is a premium-rate number"),
    ("+44 7700 900123", "is not a valid number of +44 (GB)"),
    ("+999 1234 5678", "is not a phone number"),
])
def test_invalid_numbers_are_refused_with_the_reason(typed, reason):
    with pytest.raises(InvalidNumber) as exc:
        normalize_mobile(typed, "FR")
    assert reason in exc.value.reason


# -- templates of template-driven providers (twp-sms-http, twp-sms-soap) --------------------

def test_message_values_fill_every_message_placeholder():
    message = SmsMessage(id=7, reference="twp-7", to="+33612345678", text="Hi", sender="ACME", encoding="gsm7", parts=1)
    values = message_values(message)
    assert set(values) == set(MESSAGE_PLACEHOLDERS)
    assert "{to_digits} {reference} {parts}".format_map(values) == "33612345678 twp-7 1"


def test_a_template_error_names_where_it_is_and_the_fix():
    known = (*MESSAGE_PLACEHOLDERS, "secret")
    check_template("json", {"to": "{to}", "list": ["{text}", 3]}, known)
    with pytest.raises(ValueError, match=r"^json\.messages\[1\]: unknown placeholder \{phone\}; known: \{to\}, .*\{secret\}$"):
        check_template("json", {"messages": ["{to}", "{phone}"]}, known)
    with pytest.raises(ValueError, match=r"^body: .* write a literal brace as \{\{ or \}\}$"):
        check_template("body", '{"to": "{to}"', known)
