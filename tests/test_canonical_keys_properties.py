"""The fast canonical keys agree with phonenumbers on generated numbers of every country (issue 13, item 2).

``DialingPlan.canonical_keys`` reads the common written forms with
:class:`twpcore.numberkeys.E164Reader`; ``DialingPlan._reference_canonical_keys`` runs the
same algorithm with a full ``phonenumbers`` parse of every reading.  Numbers are built
from ``phonenumbers``' example numbers of each region and type, with digits changed,
added or dropped (so invalid, short and long numbers come up too), written in the forms
directories hold, and read by the dialing plans of 36 countries.
"""

from __future__ import annotations

import phonenumbers
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from twpcore.dialplan import DialingPlan
from twpcore.numberkeys import E164Reader, reference_e164

# Home countries of the dialing plans: the usual ones, those whose metadata has a
# transform rule or an unusual prefix (AR, BR, MX, AU, JP, KR, CO, BY), countries that
# share a code (US/CA, GB/GG, RU/KZ, IT, FI, NO), and some with no national prefix (ES, DK).
HOMES = [
    "FR", "DE", "GB", "US", "CH", "BE", "IT", "ES", "NL", "SE", "AT", "PT", "IE", "DK", "NO", "FI",
    "PL", "LU", "CA", "GG", "RU", "KZ", "AR", "BR", "MX", "AU", "JP", "CN", "KR", "IN", "CO", "BY",
    "ZA", "SG", "MA", "NZ",
]  # fmt: skip
PLANS = {home: DialingPlan.default(home) for home in HOMES}
PLANS["FR-9"] = DialingPlan.default("FR", external_prefix="9", internal_length=3)
PLANS["US-none"] = DialingPlan.default("US", external_prefix="", internal_length=5)
PLANS["FR-011"] = DialingPlan.default("FR", international_prefix="011")
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
]
SEPARATORS = [" ", ".", "-", "/", " - ", ""]
EXTENSIONS = ["", " ext. 12", " x123", " poste 45", ";ext=7"]


def example(region: str, kind: int) -> phonenumbers.PhoneNumber | None:
    return phonenumbers.example_number_for_type(region, kind)


@st.composite
def national_numbers(draw: st.DrawFn) -> tuple[str, int, str]:
    """(region, country code, national significant number), valid or slightly off."""
    region = draw(st.sampled_from(REGIONS))
    number = example(region, draw(st.sampled_from(TYPES)))
    assume(number is not None)
    assert number is not None
    digits = list(phonenumbers.national_significant_number(number))
    for _ in range(draw(st.integers(0, 3))):
        digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
    change = draw(st.sampled_from(["", "", "", "add", "drop"]))
    if change == "add":
        digits.insert(draw(st.integers(0, len(digits))), draw(st.sampled_from("0123456789")))
    elif change == "drop" and len(digits) > 1:
        del digits[draw(st.integers(0, len(digits) - 1))]
    return region, number.country_code, "".join(digits)


def spaced(draw: st.DrawFn, digits: str) -> str:
    """Digits cut in groups with one kind of separator, as people write them."""
    separator = draw(st.sampled_from(SEPARATORS))
    out, rest = [], digits
    while rest:
        size = draw(st.integers(1, 4))
        out.append(rest[:size])
        rest = rest[size:]
    if len(out) > 1 and draw(st.booleans()):
        return f"({out[0]}) " + separator.join(out[1:])
    return separator.join(out)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(home plan, a number as written in a directory or presented by a PBX)."""
    home = draw(st.sampled_from(sorted(PLANS)))
    plan = PLANS[home]
    region, code, nsn = draw(national_numbers())
    trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
    form = draw(st.sampled_from(["plus", "plus (0)", "international prefix", "national", "bare", "code", "format"]))
    if form == "plus":
        text = f"+{code} {spaced(draw, nsn)}"
    elif form == "plus (0)":
        text = f"+{code} (0){spaced(draw, nsn)}"
    elif form == "international prefix":
        text = f"{plan.settings.international_prefix} {code} {spaced(draw, nsn)}"
    elif form == "national":
        text = spaced(draw, trunk + nsn)
    elif form == "bare":
        text = spaced(draw, nsn)
    elif form == "code":
        text = f"{code}{spaced(draw, nsn)}"
    else:
        parsed = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn or "0"))
        if nsn.startswith("0"):
            parsed.italian_leading_zero = True
            parsed.number_of_leading_zeros = len(nsn) - len(nsn.lstrip("0")) or None
        style = draw(st.sampled_from(["national", "international", "e164", "rfc3966", "from home"]))
        if style == "from home":
            text = phonenumbers.format_out_of_country_calling_number(parsed, plan.settings.region)
        else:
            text = phonenumbers.format_number(
                parsed,
                {
                    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
                    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    "e164": phonenumbers.PhoneNumberFormat.E164,
                    "rfc3966": phonenumbers.PhoneNumberFormat.RFC3966,
                }[style],
            )
    if draw(st.booleans()) and plan.settings.external_prefix and not text.startswith("+"):
        text = plan.settings.external_prefix + text  # as a PBX presents an outside caller
    return home, text + draw(st.sampled_from(EXTENSIONS))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=written_numbers())
def test_fast_keys_equal_phonenumbers_keys_for_generated_numbers(case: tuple[str, str]) -> None:
    home, text = case
    plan = PLANS[home]
    assert plan.canonical_keys(text) == plan._reference_canonical_keys(text), (home, text)


@settings(max_examples=800, deadline=None)
@given(home=st.sampled_from(sorted(PLANS)), digits=st.from_regex(r"\A\+?[0-9]{0,26}\Z"))
def test_any_string_of_digits_reads_as_phonenumbers_reads_it(home: str, digits: str) -> None:
    """Short, long, leading zeros, unknown country codes: the reader agrees, or says it is not sure."""
    plan = PLANS[home]
    settings_ = plan.settings
    reader = E164Reader(settings_.region, settings_.international_prefix)
    expected = reference_e164(digits, settings_.region, settings_.international_prefix) if digits else None
    if digits:
        found = reader.fast(digits)
        assert found is None or found == expected, (home, digits)
        assert reader.e164(digits) == expected
    assert plan.canonical_keys(digits) == plan._reference_canonical_keys(digits)


def test_every_region_example_number_in_every_plain_form() -> None:
    """Deterministic sweep: each region's fixed-line and mobile examples, six forms, five home plans."""
    homes = [PLANS[home] for home in ("FR", "US", "GB", "AR", "IT")]
    checked = 0
    for region in REGIONS:
        trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            number = example(region, kind)
            if number is None:
                continue
            nsn = phonenumbers.national_significant_number(number)
            code = number.country_code
            for plan in homes:
                prefix = plan.settings.international_prefix
                for text in (f"+{code}{nsn}", f"+{code} (0) {nsn}", f"{prefix}{code}{nsn}", trunk + nsn, nsn, f"{code}{nsn}"):
                    assert plan.canonical_keys(text) == plan._reference_canonical_keys(text), (plan.settings.region, text)
                    checked += 1
    assert checked > 2 * 200 * 5 * 6 * 0.9  # nearly every region has both examples


PREFIXES = ["", "+", "0", "00", "000", "0011", "001", "011", "810", "8", "1", "15", "90", "0 0"]


@settings(max_examples=800, deadline=None)
@given(
    home=st.sampled_from(sorted(PLANS)),
    prefix=st.sampled_from(PREFIXES),
    digits=st.from_regex(r"\A[0-9]{0,16}\Z"),
)
def test_numbers_after_any_prefix_read_as_phonenumbers_reads_them(home: str, prefix: str, digits: str) -> None:
    """International, national and carrier prefixes of every kind, then anything: same keys."""
    plan = PLANS[home]
    text = prefix + digits
    assert plan.canonical_keys(text) == plan._reference_canonical_keys(text), (home, text)


@settings(max_examples=1000, deadline=None)
@given(region=st.sampled_from(REGIONS), lead=st.sampled_from(["", "0", "1", "8", "9", "00", "01"]), digits=st.from_regex(r"\A[0-9]{1,14}\Z"))
def test_the_reader_strips_prefixes_and_validates_as_phonenumbers_does(region: str, lead: str, digits: str) -> None:
    """Step by step against phonenumbers' own helpers (private functions, used by this test only)."""
    from phonenumbers import phonenumberutil as util

    from twpcore.numberkeys import _country, _numbering, _valid

    numbering = _numbering(region)
    assert numbering is not None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    number = lead + digits
    assert numbering.strip_national_prefix(number) == util._maybe_strip_national_prefix_carrier_code(number, metadata)[1]
    assert numbering.has_type(number) == (util._number_type_helper(number, metadata) != PhoneNumberType.UNKNOWN)
    country = _country(numbering.country_code_text)
    assert country is not None
    parsed = phonenumbers.PhoneNumber(country_code=numbering.country_code, national_number=int(number))
    if number.startswith("0") and len(number) > 1:
        parsed.italian_leading_zero = True
        zeros = len(number) - len(number.lstrip("0"))
        parsed.number_of_leading_zeros = min(zeros, len(number) - 1)
    assume(phonenumbers.national_significant_number(parsed) == number)
    assert _valid(country[1], number) == phonenumbers.is_valid_number(parsed)
