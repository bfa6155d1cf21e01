"""Properties of the dialing plan: nothing raises, one number's written forms share a key, rules fail early."""

from __future__ import annotations

import attrs
import phonenumbers
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from twpcore.dialplan import DialingPlan, InvalidRule, Rule

FRANCE = DialingPlan.default("FR")
BUSY = attrs.evolve(
    FRANCE,
    rules=FRANCE.rules
    + (
        Rule(30, r"[(\+|[-InternationalPrefix-])?([^\)]+)\([^\]]+\)]", "[-ExternalPrefix-][-InternationalPrefix-]$2"),
        Rule(5, "3611", "03611"),
        Rule(6, "[67]XXXXXXXX", "[-ExternalPrefix-]0$0", "pbx"),
        Rule(7, "9.", "$1", "pbx"),
        Rule(8, "X!", "$0", "pbx"),
        Rule(9, r"[(\d)?]", "1"),
    ),
)
UNMERGED = attrs.evolve(BUSY, rules=BUSY.rules + (Rule(99, r"[(\d)\1]", "$1"),))
PLANS = [FRANCE, BUSY, UNMERGED, DialingPlan.default("US", external_prefix="9", add="1", remove="+1")]

number_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+#*() -./", max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.from_regex(r"\A[+#*]?[0-9 ()]{0,20}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(plan=st.sampled_from(PLANS), number=number_text)
def test_no_input_string_raises(plan: DialingPlan, number: str) -> None:
    dialed = plan.to_dialable(number)
    received = plan.from_received(number)
    keys = plan.canonical_keys(number)
    assert isinstance(dialed.output, str) and dialed.steps
    assert isinstance(received.output, str) and received.steps
    assert isinstance(keys, tuple) and all(isinstance(key, str) and key for key in keys)
    for output in (dialed.output, received.output):
        assert set(output) <= set("0123456789+#*")
        if output[:1] not in ("#", "*"):
            assert "#" not in output and "*" not in output and "+" not in output[1:]


@settings(max_examples=200, deadline=None)
@given(number=st.from_regex(r"\A[+#*]?[0-9 ()]{0,20}\Z"))
def test_the_one_pass_dispatcher_agrees_with_rule_by_rule_evaluation(number: str) -> None:
    """The merged regex is an optimisation: the first rule it finds is the first rule in priority order."""
    merged = BUSY.to_dialable(number)
    unmerged = DialingPlan(BUSY.settings, BUSY.rules)
    object.__setattr__(unmerged, "_dispatch", None)
    assert unmerged.to_dialable(number) == merged


regex_piece = st.sampled_from([r"\d", "0", "+", r"\+", "(", ")", r"\(", r"\)", "?", "*", "[0-9]", "|", "[-InternationalPrefix-]", "{2}", "^", "$"])
rule_pattern = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789XZN.![]-+#*()$\\?", max_size=12),
    st.text(alphabet="0123456789+#*", min_size=1, max_size=6),
    st.lists(regex_piece, min_size=1, max_size=8).map(lambda pieces: "[" + "".join(pieces) + "]"),
)
rule_value = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="0123456789$1{}[-]ExternalPrefix", max_size=12),
    st.sampled_from(["", "0", "$0", "$1", "[-ExternalPrefix-]$0", "00$1", "[-InternationalPrefix-]"]),
)


@settings(max_examples=300, deadline=None)
@given(
    priority=st.integers(-5, 5),
    pattern=rule_pattern,
    value=rule_value,
    syntax=st.sampled_from(["guide", "pbx"]),
    numbers=st.lists(number_text, max_size=3),
)
def test_a_rule_is_refused_when_built_or_never(priority: int, pattern: str, value: str, syntax: str, numbers: list[str]) -> None:
    """Building a rule raises InvalidRule or nothing; a plan holding it transforms any input without raising."""
    try:
        rule = Rule(priority, pattern, value, syntax)
    except InvalidRule as error:
        assert error.reason and error.field in ("pattern", "value")
        return
    plan = DialingPlan(FRANCE.settings, FRANCE.rules + (rule,))
    assert DialingPlan.from_dict(plan.to_dict()) == plan
    for number in numbers:
        plan.to_dialable(number)
        plan.canonical_keys(number)


REGIONS = ["FR", "DE", "GB", "IT", "ES", "BE", "CH", "NL", "US", "CA", "MA", "JP", "AU", "BR", "IN", "CN", "SN", "FO"]
TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
]


@st.composite
def valid_numbers(draw: st.DrawFn, regions: list[str]) -> phonenumbers.PhoneNumber:
    """A valid number: an example number of the region with its last digits replaced at random."""
    region = draw(st.sampled_from(regions))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(TYPES)))
    assume(example is not None)
    nsn = phonenumbers.national_significant_number(example)
    tail = draw(st.integers(1, min(5, len(nsn) - 2)))
    digits = nsn[:-tail] + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=tail, max_size=tail)))
    number = phonenumbers.parse(f"+{example.country_code}{digits}")
    assume(phonenumbers.is_valid_number(number))
    return number


def written_forms(number: phonenumbers.PhoneNumber, plan: DialingPlan) -> list[str]:
    """How people write the number in a directory, and how a PBX behind the external prefix presents it."""
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(number, fmt.E164)
    international = plan.settings.international_prefix + e164[1:]
    forms = [e164, phonenumbers.format_number(number, fmt.INTERNATIONAL), international, plan.settings.external_prefix + international]
    region = phonenumbers.region_code_for_number(number)
    trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix if region != "ZZ" else None
    if trunk == "0":
        forms.append(f"+{number.country_code} (0) {phonenumbers.national_significant_number(number)}")
    if number.country_code == int(plan.settings.local_country_prefix):
        national = phonenumbers.format_number(number, fmt.NATIONAL)
        forms += [national, plan.settings.external_prefix + national.replace(" ", "")]
    return forms


def read_behind_external_prefix(plan: DialingPlan, form: str) -> bool:
    """The documented preference: a form starting with the external prefix whose rest is a valid domain-country number."""
    digits = "".join(c for c in form if c.isdigit())
    external = plan.settings.external_prefix
    if form.startswith("+") or not external or not digits.startswith(external):
        return False
    try:
        rest = phonenumbers.parse(digits[len(external) :], plan.settings.region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(rest)


@settings(max_examples=300, deadline=None)
@given(number=valid_numbers(REGIONS))
def test_equivalent_written_forms_have_equal_canonical_keys(number: phonenumbers.PhoneNumber) -> None:
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    for form in written_forms(number, FRANCE):
        keys = FRANCE.canonical_keys(form)
        assert expected in keys, form
        if not read_behind_external_prefix(FRANCE, form):
            assert keys[0] == expected, form


@settings(max_examples=200, deadline=None)
@given(number=valid_numbers(["FR"]))
def test_french_numbers_all_forms_give_one_primary_key(number: phonenumbers.PhoneNumber) -> None:
    """+33 1 55 17 18 89, 0033155171889, 0155171889 and (behind the external prefix 0) 00155171889: one primary key."""
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    primaries = {FRANCE.canonical_keys(form)[0] for form in written_forms(number, FRANCE)}
    assert primaries == {expected}


@settings(max_examples=150, deadline=None)
@given(region=st.sampled_from(["DE", "GB", "BE", "US", "CH"]), data=st.data())
def test_keys_follow_the_domain_region(region: str, data: st.DataObject) -> None:
    """In another domain country, that country's written forms share one primary key the same way."""
    plan = DialingPlan.default(region)
    number = data.draw(valid_numbers([region]))
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    for form in written_forms(number, plan):
        keys = plan.canonical_keys(form)
        assert expected in keys, form
