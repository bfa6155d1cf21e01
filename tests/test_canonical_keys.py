"""Canonical keys of the forms numbers take in real directories, in ten countries (guide chapter 5, issue 13).

Each written form of a number must give the keys a directory is indexed under, the same
keys ``phonenumbers`` gives after a full parse, and without that parse: the fast reader
of :mod:`twpcore.numberkeys` must answer every one of these forms by itself.
"""

from __future__ import annotations

import pytest

import twpcore.numberkeys as numberkeys
from twpcore.dialplan import DialingPlan
from twpcore.numberkeys import E164Reader, reference_e164

# region, how the number is written, its keys
FORMS = [
    ("FR", "01 23 45 67 89", ("+33123456789",)),
    ("FR", "01.23.45.67.89", ("+33123456789",)),
    ("FR", "01-23-45-67-89", ("+33123456789",)),
    ("FR", "(01) 23 45 67 89", ("+33123456789",)),
    ("FR", "+33 1 23 45 67 89", ("+33123456789",)),
    ("FR", "+33 (0)1 23 45 67 89", ("+33123456789",)),
    ("FR", "0033 1 23 45 67 89", ("+33123456789",)),
    ("FR", "06 12 34 56 78", ("+33612345678",)),
    ("FR", "00155171889", ("+33155171889",)),  # behind the external prefix, as a PBX presents it
    ("FR", "00298962246", ("+33298962246", "+298962246")),  # Brittany behind "0", or the Faroe Islands
    ("FR", "+41 22 123 45 67", ("+41221234567",)),
    ("DE", "030 1234567", ("+49301234567",)),
    ("DE", "030/1234567", ("+49301234567",)),
    ("DE", "(030) 123 45 67", ("+49301234567",)),
    ("DE", "+49 30 1234567", ("+49301234567",)),
    ("DE", "+49 (0)30 1234567", ("+49301234567",)),
    ("DE", "0049 30 1234567", ("+49301234567",)),
    ("DE", "0151 23456789", ("+4915123456789",)),
    ("DE", "+49 89 1234-5678", ("+498912345678",)),
    ("GB", "020 7946 0018", ("+442079460018",)),
    ("GB", "(020) 7946 0018", ("+442079460018",)),
    ("GB", "+44 20 7946 0018", ("+442079460018",)),
    ("GB", "+44 (0)20 7946 0018", ("+442079460018",)),
    ("GB", "0044 20 7946 0018", ("+442079460018",)),
    ("GB", "07700 900123", ("+447700900123",)),
    ("US", "(201) 555-0123", ("+12015550123",)),
    ("US", "201.555.0123", ("+12015550123",)),
    ("US", "201-555-0123", ("+12015550123",)),
    ("US", "1-201-555-0123", ("+12015550123",)),
    ("US", "+1 201 555 0123", ("+12015550123",)),
    ("US", "+1 (201) 555-0123", ("+12015550123",)),
    ("US", "011 44 20 7946 0018", ("+442079460018",)),
    ("CH", "044 668 18 00", ("+41446681800",)),
    ("CH", "+41 44 668 18 00", ("+41446681800",)),
    ("CH", "+41 (0)44 668 18 00", ("+41446681800",)),
    ("CH", "0041 44 668 18 00", ("+41446681800",)),
    ("CH", "078 123 45 67", ("+41781234567",)),
    ("BE", "02 123 45 67", ("+3221234567",)),
    ("BE", "+32 2 123 45 67", ("+3221234567",)),
    ("BE", "+32 (0)2 123 45 67", ("+3221234567",)),
    ("BE", "0032 2 123 45 67", ("+3221234567",)),
    ("BE", "0470 12 34 56", ("+32470123456",)),
    ("IT", "02 1234 5678", ("+390212345678",)),  # Italy keeps its leading 0
    ("IT", "+39 02 1234 5678", ("+390212345678",)),
    ("IT", "0039 02 1234 5678", ("+390212345678",)),
    ("IT", "312 345 6789", ("+393123456789",)),
    ("IT", "+39 312 345 6789", ("+393123456789",)),
    ("ES", "912 34 56 78", ("+34912345678",)),
    ("ES", "+34 912 34 56 78", ("+34912345678",)),
    ("ES", "0034 912 34 56 78", ("+34912345678",)),
    ("ES", "612 34 56 78", ("+34612345678",)),
    ("NL", "020 123 4567", ("+31201234567",)),
    ("NL", "+31 20 123 4567", ("+31201234567",)),
    ("NL", "+31 (0)20 123 4567", ("+31201234567",)),
    ("NL", "0031 20 123 4567", ("+31201234567",)),
    ("NL", "06 12345678", ("+31612345678",)),
    ("SE", "08-123 456 78", ("+46812345678",)),
    ("SE", "+46 8 123 456 78", ("+46812345678",)),
    ("SE", "+46 (0)8 123 456 78", ("+46812345678",)),
    ("SE", "0046 8 123 456 78", ("+46812345678",)),
    ("SE", "070-123 45 67", ("+46701234567",)),
]

# Cleaning keeps only digits, so an extension's digits stay on the number, as they
# always have: the key is the same with and without the fast reader.
EXTENSIONS = [
    ("FR", "01 23 45 67 89 ext. 12", ("+3312345678912",)),
    ("GB", "020 7946 0018 x123", ("+442079460018123",)),
    ("US", "(201) 555-0123 x45", ("+1201555012345",)),
]

PLANS: dict[str, DialingPlan] = {}


def plan_for(region: str) -> DialingPlan:
    if region not in PLANS:
        PLANS[region] = DialingPlan.default(region)
    return PLANS[region]


@pytest.fixture
def no_full_parse(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every reading the fast reader hands to phonenumbers' full parse."""
    asked: list[str] = []

    def reference(digits: str, region: str, international_prefix: str) -> tuple[str | None, bool]:
        asked.append(digits)
        return reference_e164(digits, region, international_prefix)

    monkeypatch.setattr(numberkeys, "reference_e164", reference)
    return asked


@pytest.mark.parametrize(("region", "written", "keys"), FORMS + EXTENSIONS)
def test_a_written_form_has_the_keys_phonenumbers_gives_without_a_full_parse(
    region: str, written: str, keys: tuple[str, ...], no_full_parse: list[str]
) -> None:
    plan = plan_for(region)
    assert plan.canonical_keys(written) == keys
    assert no_full_parse == [], f"{written!r} in {region} needed a full phonenumbers parse"
    assert plan._reference_canonical_keys(written) == keys


@pytest.mark.parametrize("region", sorted({region for region, _, _ in FORMS}))
def test_every_written_form_of_one_number_shares_its_key(region: str) -> None:
    """A contact written one way is found by a call presented another way."""
    plan = plan_for(region)
    by_key: dict[str, set[str]] = {}
    for form_region, written, keys in FORMS:
        if form_region == region:
            by_key.setdefault(keys[0], set()).add(written)
    for key, written_forms in by_key.items():
        assert {plan.canonical_keys(written)[0] for written in written_forms} == {key}


def test_unusual_readings_are_left_to_phonenumbers_and_agree(no_full_parse: list[str]) -> None:
    """A "+" followed by no country code is phonenumbers' own business: the reader asks it."""
    plan = plan_for("FR")
    assert plan.canonical_keys("00 01 23 45 67 89") == plan._reference_canonical_keys("00 01 23 45 67 89")
    assert no_full_parse == ["000123456789"]
    reader = E164Reader("FR", "00")
    assert reader.fast("+0123456789") is None
    assert reader.fast("+" + "1" * 30) is None  # too long to be worth reading fast
    assert reader.e164("+0123456789") == reference_e164("+0123456789", "FR", "00")


@pytest.mark.parametrize(
    ("international_prefix", "digits", "expected"),
    [
        ("00", "+12", (None, False)),  # too short to be a number after "+"
        ("00", "5", (None, False)),
        ("00", "0033", (None, False)),  # international prefix with too little after it
        ("00", "+33123456789012345678", (None, False)),  # longer than any national number
        ("00", "+330123456789", ("+33123456789", True)),  # "(0)" after the country code goes
        ("00", "+33012345678", ("+33012345678", False)),  # ... unless too little is left without it
        ("00", "33123456789", ("+33123456789", True)),  # country code without "+": dropped
        # A plan whose international prefix is not the country's: phonenumbers still reads
        # France's "00" as one, unless a 0 follows it (no country code starts with 0).
        ("011", "0041221234567", ("+41221234567", True)),
        ("011", "0001234567", ("+33001234567", False)),
    ],
)
def test_edge_readings_agree_with_phonenumbers(international_prefix: str, digits: str, expected: tuple[str | None, bool]) -> None:
    reader = E164Reader("FR", international_prefix)
    assert reader.fast(digits) == expected
    assert reference_e164(digits, "FR", international_prefix) == expected


def test_facility_codes_internal_numbers_and_junk_have_the_same_keys_as_before() -> None:
    plan = plan_for("FR")
    assert plan.canonical_keys("#21#") == ()
    assert plan.canonical_keys("*8") == ()
    assert plan.canonical_keys("1234") == ("internal:1234",)
    assert plan.canonical_keys("12 34") == ("internal:1234",)
    assert plan.canonical_keys("+") == ()
    assert plan.canonical_keys("tel: none") == ()
    assert plan.canonical_keys("０１ ２３ ４５ ６７ ８９") == ("+33123456789",)  # full-width digits
    with pytest.raises(TypeError, match="number: expected str, got int"):
        plan.canonical_keys(123456789)  # type: ignore[arg-type]


def test_a_plan_with_another_international_prefix_reads_it_as_plus() -> None:
    """The plan's own international prefix ("011" here) means "country code follows", as phonenumbers is told."""
    plan = DialingPlan.default("FR", international_prefix="011")
    for written in ("011 41 22 123 45 67", "+41 22 123 45 67"):
        assert plan.canonical_keys(written) == ("+41221234567",)
        assert plan._reference_canonical_keys(written) == ("+41221234567",)
