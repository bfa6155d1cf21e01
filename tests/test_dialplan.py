"""The dialing plan, example by example from guide chapter 5 and the Wildix pattern syntax.

Each test quotes the guide sentence it checks.  Settings are France's, as in the guide:
international prefix 00, local country prefix 33, external prefix 0, internal length 4.
"""

from __future__ import annotations

import attrs
import pytest

from twpcore.dialplan import (
    MAX_INPUT_LENGTH,
    DialingPlan,
    DialingPlanSettings,
    InvalidRule,
    Rule,
)

# Guide 5.3, as printed in the French guide (the English one lost its backslashes).
GUIDE_REGEX = r"[(\+|[-InternationalPrefix-])?([^\)]+)\([^\]]+\)]"
GUIDE_REGEX_VALUE = "[-ExternalPrefix-][-InternationalPrefix-]$2"


@pytest.fixture
def france() -> DialingPlan:
    return DialingPlan.default("FR")


def with_rules(plan: DialingPlan, *rules: Rule) -> DialingPlan:
    return attrs.evolve(plan, rules=plan.rules + rules)


def dial(plan: DialingPlan, number: str) -> str:
    return plan.to_dialable(number).output


# --------------------------------------------------------------------------- chapter 5


def test_standard_rules_are_created_by_default(france: DialingPlan) -> None:
    """'On the right part you define specific rules for your dialing plan (by default some standard rules are created).'"""
    patterns = [(rule.pattern, rule.value) for rule in france.rules]
    assert ("+[-LocalCountryPrefix-](0)", "[-ExternalPrefix-]0") in patterns
    assert ("+[-LocalCountryPrefix-]0", "[-ExternalPrefix-]0") in patterns
    assert ("+", "[-InternationalPrefix-]") in patterns
    assert ("#", "#") in patterns and ("*", "*") in patterns
    assert DialingPlan.standard_rules(france.settings) == france.rules


def test_non_numerical_characters_are_deleted_except_a_leading_plus_hash_or_star(france: DialingPlan) -> None:
    """'Any non-numerical character is deleted, except for +, #, * when they are the first character'."""
    assert dial(france, "01.55.17-18 89") == "00155171889"
    assert dial(france, "+39 (06) 1234-5678") == "000390612345678"
    assert dial(france, "1 2 3 4") == "1234"
    assert dial(france, "12+34") == "1234"


def test_plus33_bracket_0_becomes_00(france: DialingPlan) -> None:
    """'"+33(0": is transformed into 00 (therefore +33 (0) 123456789 becomes 00123456789)'."""
    result = france.to_dialable("+33 (0) 123456789")
    assert result.output == "00123456789"
    assert result.rule is not None and result.rule.pattern == "+[-LocalCountryPrefix-](0)"


def test_plus330_becomes_00(france: DialingPlan) -> None:
    """'"+330": is transformed into 00'."""
    result = france.to_dialable("+330123456789")
    assert result.output == "00123456789"
    assert result.rule is not None and result.rule.pattern == "+[-LocalCountryPrefix-]0"


@pytest.mark.parametrize("code", ["#31#0155171889", "*21*0612345678#", "#", "*8", "**61*0155171889*11*20#"])
def test_hash_and_star_facilities_are_not_transformed(france: DialingPlan, code: str) -> None:
    """'"#": is transformed into "#" (therefore no transformation, used for facilities).' and the same for '*'."""
    result = france.to_dialable(code)
    assert result.output == code
    assert result.rule is not None and result.rule.pattern == code[0]


def test_facilities_are_unchanged_even_without_the_standard_rules(france: DialingPlan) -> None:
    """'"*": is transformed into "*" (therefore no transformation, also used for facilities).' — also with no rule."""
    plan = attrs.evolve(france, rules=())
    assert dial(plan, "*21*0612345678#") == "*21*0612345678#"
    assert dial(plan, "#31# 01 55 17 18 89") == "#31#0155171889"


def test_international_prefix_and_national_code_become_network_prefix_and_national_number(france: DialingPlan) -> None:
    """'Any number which begins with the international prefix + the national code (i.e. 0033 or +33) will be replaced by
    the network prefix + national code ("+33155171889" will become "00155171889").'"""
    assert dial(france, "+33155171889") == "00155171889"
    assert dial(france, "0033155171889") == "00155171889"
    assert dial(france, "0033 (0)1 55 17 18 89") == "00155171889"
    assert dial(france, "+33 1 55 17 18 89") == "00155171889"


def test_plus_is_replaced_by_00(france: DialingPlan) -> None:
    """'For example: The "+" character will be replaced by "00".'"""
    result = france.to_dialable("+4420712345678")
    assert result.rule is not None and (result.rule.pattern, result.rule.value) == ("+", "[-InternationalPrefix-]")
    assert result.output == "0" + "00" + "4420712345678"


def test_string_361_replaced_by_361_stops_the_external_prefix(france: DialingPlan) -> None:
    """'The string "361" will be replaced by "361".' A rule fired, so no external prefix is added."""
    plan = with_rules(france, Rule(5, "361", "361"))
    result = plan.to_dialable("36150")
    assert result.output == "36150"
    assert result.rule == Rule(5, "361", "361")
    assert dial(france, "36150") == "036150"


def test_first_rule_found_by_lowest_priority_is_the_only_one_played(france: DialingPlan) -> None:
    """'the rules are tested from the lowest priority to the highest, the first one found is played.' and
    'As soon as a rule is taken into account, the following rules are ignored.'"""
    plan = DialingPlan(france.settings, [Rule(20, "36", "7736"), Rule(10, "361", "99361"), Rule(30, "3", "553")])
    assert [rule.priority for rule in plan.rules] == [10, 20, 30]
    assert dial(plan, "3611") == "993611"
    assert dial(plan, "3622") == "773622"
    assert dial(plan, "3999") == "553999"


def test_equal_priorities_keep_their_order(france: DialingPlan) -> None:
    """Rules of equal priority are tried in the order given (our reading; the guide orders by priority only)."""
    plan = DialingPlan(france.settings, [Rule(10, "36", "1"), Rule(10, "361", "2")])
    assert dial(plan, "3611") == "111"


def test_patterns_are_searched_only_at_the_beginning(france: DialingPlan) -> None:
    """'The patterns are searched only at the beginning of the string.'"""
    plan = with_rules(france, Rule(5, "361", "8361"))
    assert dial(plan, "3612") == "83612"
    assert dial(plan, "13612") == "013612"  # no rule: longer than 4 digits, external prefix


def test_no_rule_and_longer_than_internal_length_gets_the_external_prefix(france: DialingPlan) -> None:
    """'No rule is found. In this case, if the number is larger than the length of the dialing plan, the external network
    prefix is added'."""
    result = france.to_dialable("0155171889")
    assert result.output == "00155171889"
    assert result.rule is None
    assert "external prefix '0' added" in result.steps[-1]


def test_no_rule_and_not_longer_than_internal_length_is_returned_as_it_is(france: DialingPlan) -> None:
    """'otherwise, the number is returned as it is.'"""
    assert dial(france, "1234") == "1234"
    assert dial(france, "12") == "12"
    five = attrs.evolve(france, settings=attrs.evolve(france.settings, internal_length=5))
    assert dial(five, "12345") == "12345"
    assert dial(five, "123456") == "0123456"


def test_rule_on_a_number_starting_with_plus_then_adds_the_network_prefix(france: DialingPlan) -> None:
    """'The number starts with a "+". The transformation is applied then the network prefix is added if necessary.
    For example: +3912334477 -> 0 00 3912334477'."""
    result = france.to_dialable("+3912334477")
    assert result.output == "0003912334477"
    assert result.steps[-1] == "the number started with '+': external prefix '0' added: '0003912334477'"


def test_rule_on_a_number_without_plus_applies_only_the_transformation(france: DialingPlan) -> None:
    """'if we have the rule: pattern = 3611 value = 03611, the dialing of 3611 will become 03611 but the external network
    prefix will not be added in this case.'"""
    plan = with_rules(france, Rule(5, "3611", "03611"))
    result = plan.to_dialable("3611")
    assert result.output == "03611"
    assert result.rule == Rule(5, "3611", "03611")
    assert result.steps[-1] == "the number did not start with '+': only the rule is applied"


def test_french_guide_identity_rule_03611_keeps_the_number(france: DialingPlan) -> None:
    """French 5.2: 'modèle = 03611 valeur = 03611, quand on numérote 03611, il devient 03611, et le préfixe du réseau
    externe ne sera pas ajouté.'"""
    plan = with_rules(france, Rule(5, "03611", "03611"))
    assert dial(plan, "03611") == "03611"
    assert dial(france, "03611") == "003611"


def test_extended_rule_turns_plus42_bracket_0_into_00042(france: DialingPlan) -> None:
    """5.3: 'This rule turns +42(0)141906666 into 00042141906666. It adds the international prefix and external prefix
    and removes the national prefix if necessary.'"""
    plan = with_rules(france, Rule(30, GUIDE_REGEX, GUIDE_REGEX_VALUE))
    result = plan.to_dialable("+42(0)141906666")
    assert result.output == "00042141906666"
    assert result.rule is not None and result.rule.priority == 30 and result.rule.is_regex
    assert "matched '+42(0)'" in result.steps[1]


def test_extended_rule_treats_numbers_with_or_without_plus(france: DialingPlan) -> None:
    """5.3: 'The '?' indicates that the expression will search for one or zero '+'. The rule thus treats numbers such as
    +42(0) and 42(0) etc...'; and '[-InternationalPrefix-] represents the numbers of the international prefix'."""
    plan = with_rules(france, Rule(30, GUIDE_REGEX, GUIDE_REGEX_VALUE))
    assert dial(plan, "42(0)141906666") == "00042141906666"
    assert dial(plan, "0042 (0) 141 906 666") == "00042141906666"
    without_trunk = plan.to_dialable("+42 141906666")  # no "(0)": the standard "+" rule fires, same result
    assert without_trunk.output == "00042141906666" and without_trunk.rule == Rule(50, "+", "[-InternationalPrefix-]")


def test_square_brackets_mark_a_regular_expression() -> None:
    """5.3: 'The model's square brackets informs that it is a regular expression.'"""
    assert Rule(1, r"[0(\d)]", "$1").is_regex
    assert not Rule(1, "[-InternationalPrefix-][-LocalCountryPrefix-]", "0").is_regex
    assert Rule(1, "[[-InternationalPrefix-](\\d+)]", "$1").is_regex


def test_capture_2_is_replaced_by_the_captured_value(france: DialingPlan) -> None:
    """5.3: ''$2' will be replaced by the captured value (see Model details above).'"""
    plan = with_rules(france, Rule(1, r"[(9)(\d\d)]", "$2$1"), Rule(2, r"[7(?<area>\d)]", "${area}${area}"))
    assert dial(plan, "912345") == "129345"
    assert dial(plan, "74321") == "44321"


def test_english_guide_regex_lost_its_backslashes_and_is_refused() -> None:
    """The English 5.3 prints '[(+|[-InternationalPrefix-])?...': without its backslash the '+' repeats nothing."""
    with pytest.raises(InvalidRule) as caught:
        Rule(30, r"[(+|[-InternationalPrefix-])?([^\)]+)([^\]]+\)]", GUIDE_REGEX_VALUE)
    error = caught.value
    assert error.field == "pattern"
    assert "invalid regular expression" in error.reason
    assert "priority 30" in str(error) and "(+|[-InternationalPrefix-])" in str(error)


def test_placeholders_take_the_domain_settings() -> None:
    """5.3: '[-InternationalPrefix-] represents the numbers of the international prefix mentioned in the left column.'"""
    usa = DialingPlan.default("US", external_prefix="9", internal_length=3)
    assert (usa.settings.international_prefix, usa.settings.local_country_prefix) == ("011", "1")
    assert dial(usa, "+1 212 555 0100") == "912125550100"
    assert dial(usa, "+44 20 7123 4567") == "9011442071234567"
    assert dial(usa, "2125550100") == "92125550100"
    italy = DialingPlan.default("IT")
    assert dial(italy, "+39 06 1234 5678") == "00612345678"  # no trunk prefix in Italy: the 0 is the area's


def test_test_facility_shows_the_rule_and_the_steps(france: DialingPlan) -> None:
    """'Enter a number in the box above the "test these rules" button. After the click, the converted number is displayed
    in the lower box. This is the number that will be sent to the IPBX.'"""
    result = france.to_dialable("+33 (0) 1 55 17 18 89")
    assert result.to_dict() == {
        "input": "+33 (0) 1 55 17 18 89",
        "output": "00155171889",
        "rule": {"priority": 10, "pattern": "+[-LocalCountryPrefix-](0)", "value": "[-ExternalPrefix-]0", "syntax": "guide"},
        "steps": [
            "cleaned to '+330155171889' (rules may see '+33(0)155171889')",
            "rule 10 '+[-LocalCountryPrefix-](0)' → '[-ExternalPrefix-]0' matched '+33(0)': '00155171889'",
            "the number started with '+'; the rule's value places the external prefix itself",
        ],
    }


# --------------------------------------------------------------------------- reverse transformation


def test_received_number_remove_then_add() -> None:
    """'Remove: characters set to remove from incoming calls.' / 'Add: characters set to add to incoming calls.'"""
    plan = DialingPlan.default("FR", remove="0", add="")
    assert plan.from_received("00155171889").output == "0155171889"
    plan = DialingPlan.default("FR", add="0")
    assert plan.from_received("155171889").output == "0155171889"
    plan = DialingPlan.default("FR", remove="00", add="+")
    result = plan.from_received("0033155171889")
    assert result.output == "+33155171889"
    assert result.steps == ("removed '00': '33155171889'", "added '+': '+33155171889'")


def test_received_internal_number_is_left_alone() -> None:
    """'Internal reverse length: is the length used to resolve incoming call.' Callers this short are internal."""
    plan = DialingPlan.default("FR", remove="0", add="9", internal_reverse_length=5)
    assert plan.from_received("01234").output == "01234"
    assert plan.from_received("012345").output == "912345"
    assert plan.from_received("+33155171889").output == "+33155171889"  # international format: nothing added
    assert plan.from_received("#12").output == "#12"


# --------------------------------------------------------------------------- canonical keys


@pytest.mark.parametrize(
    "number", ["+33 1 55 17 18 89", "0033155171889", "0155171889", "00155171889", "+33 (0)1 55 17 18 89", "01 55 17 18 89", "00033155171889"]
)
def test_written_forms_of_one_number_share_the_primary_key(france: DialingPlan, number: str) -> None:
    """One contact number, however written or received (behind the external prefix 0), is found under one key."""
    assert france.canonical_keys(number)[0] == "+33155171889"


def test_number_behind_the_external_prefix_is_read_first_when_valid(france: DialingPlan) -> None:
    """'00' + 9 digits: behind the external prefix it is a French number; read as written, an international one."""
    assert france.canonical_keys("00298962246") == ("+33298962246", "+298962246")  # Brittany, or the Faroe Islands
    assert france.canonical_keys("000442071234567") == ("+442071234567",)
    assert france.canonical_keys("00442071234567") == ("+442071234567",)  # "0442071234567" is no French number
    no_external = DialingPlan.default("FR", external_prefix="")
    assert no_external.canonical_keys("00155171889") == ("+155171889",)  # read as written: +1 55171889


def test_internal_and_unreadable_numbers_have_their_own_keys(france: DialingPlan) -> None:
    assert france.canonical_keys("1234") == ("internal:1234",)
    assert france.canonical_keys("12 34") == ("internal:1234",)
    assert france.canonical_keys("12345678") == ("+3312345678",)  # not valid, but keyed as written
    assert france.canonical_keys("*21*") == ()
    assert france.canonical_keys("") == ()
    assert france.canonical_keys("+0000") == ("raw:+0000",)


# --------------------------------------------------------------------------- PBX patterns (Wildix start guide)


def pbx(pattern: str, value: str = "$0") -> DialingPlan:
    return DialingPlan(DialingPlanSettings(internal_length=0), [Rule(1, pattern, f"7{value}", "pbx")])


def fires(plan: DialingPlan, number: str) -> bool:
    return plan.to_dialable(number).rule is not None


def test_pbx_zero_dot_matches_numbers_starting_with_zero() -> None:
    """Wildix: '0.' — numbers starting with zero followed by one digit or a series of digits."""
    plan = pbx("0.")
    assert fires(plan, "01") and fires(plan, "0155171889")
    assert not fires(plan, "0") and not fires(plan, "10")


def test_pbx_1xx_matches_three_digits_starting_with_1() -> None:
    """Wildix: '1XX' — numbers starting with 1 followed by 2 other digits, e.g. 125, 167."""
    plan = pbx("1XX")
    assert dial(plan, "125") == "7125" and fires(plan, "167")
    assert not fires(plan, "1250") and not fires(plan, "12") and not fires(plan, "225")


def test_pbx_sets_and_digit_classes() -> None:
    """Wildix: '[37]2X' — 3 or 7, then 2, then any digit (326, 728); '[1237-9]' — 1,2,3,7,8,9; Z is 1-9, N is 2-9."""
    plan = pbx("[37]2X")
    assert fires(plan, "326") and fires(plan, "728") and not fires(plan, "426") and not fires(plan, "336")
    plan = pbx("[1237-9]")
    assert [d for d in "0123456789" if fires(plan, d)] == list("123789")
    assert [d for d in "0123456789" if fires(pbx("Z"), d)] == list("123456789")
    assert [d for d in "0123456789" if fires(pbx("n"), d)] == list("23456789")
    assert fires(pbx("x"), "0")


def test_pbx_dot_is_one_or_more_and_bang_zero_or_more() -> None:
    """Wildix: 'XXX!' — all numbers of three or more characters, whereas 'XXX.' matches at least four; 'X.' — all calls."""
    assert fires(pbx("XXX!"), "123") and fires(pbx("XXX!"), "1234") and not fires(pbx("XXX!"), "12")
    assert not fires(pbx("XXX."), "123") and fires(pbx("XXX."), "1234")
    assert fires(pbx("X."), "42") and not fires(pbx("X."), "4")


def test_pbx_value_captures_whole_number_and_the_part_after_the_literal_start() -> None:
    """$0 is the whole number, $1 what the pattern's first wildcard on matched: '9.' → '$1' strips a leading 9."""
    plan = DialingPlan(DialingPlanSettings(), [Rule(1, "9.", "$1", "pbx"), Rule(2, "[67]XXXXXXXX", "[-ExternalPrefix-]0$0", "pbx")])
    assert dial(plan, "90155171889") == "0155171889"
    assert dial(plan, "612345678") == "00612345678"
    assert dial(plan, "6123456789") == "06123456789"  # not 9 digits: no rule, external prefix


def test_pbx_rule_on_a_plus_number_follows_5_2(france: DialingPlan) -> None:
    """A PBX rule is a rule like another: on a '+' number the external prefix follows the 5.2 algorithm."""
    plan = DialingPlan(france.settings, [Rule(1, "+44.", "[-InternationalPrefix-]44$1", "pbx")])
    assert dial(plan, "+44 20 7123 4567") == "000442071234567"


# --------------------------------------------------------------------------- invalid rules


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        ((1, "", "0", "guide"), "pattern", "empty"),
        ((1, "[(\\d]", "0", "guide"), "pattern", "invalid regular expression: missing ), unterminated subpattern"),
        ((1, "[-IntlPrefix-]33", "0", "guide"), "pattern", "unknown placeholder [-IntlPrefix-]"),
        ((1, "+33", "[-Extrenal-]0", "guide"), "value", "unknown placeholder [-Extrenal-]"),
        ((1, "[(0)(1)]", "$3", "guide"), "value", "$3 refers to a capture that does not exist: the pattern has 2"),
        ((1, "0033", "$1", "guide"), "value", "a prefix rule has no captures"),
        ((1, "0033", "00$", "guide"), "value", "'$' at position 2 must be followed by a group number"),
        ((1, "0033", "0a", "guide"), "value", "character 'a' is not dialable"),
        ((1, "00 33", "0", "guide"), "pattern", "character ' ' can never match"),
        ((1, "0033", "0", "regex"), "syntax", "expected one of guide, pbx"),
        (("10", "0033", "0", "guide"), "priority", "expected an integer"),
        ((1, "1XY", "$0", "pbx"), "pattern", "character 'Y' at position 2 is not a PBX pattern element"),
        ((1, "[12", "$0", "pbx"), "pattern", "not closed"),
        ((1, "[9-1]", "$0", "pbx"), "pattern", "goes backwards"),
        ((1, "[]X", "$0", "pbx"), "pattern", "empty set"),
        ((1, "9.", "$2", "pbx"), "value", "a PBX pattern has $0 (the whole number) and $1"),
        ((1, "[(?i)0]", "0", "guide"), "pattern", "invalid regular expression"),
    ],
)
def test_invalid_rule_names_the_rule_and_the_reason(rule: tuple, field: str, reason: str) -> None:
    """'An invalid rule is refused when it is saved or loaded, with the rule and the reason, never at call time.'"""
    with pytest.raises(InvalidRule) as caught:
        Rule(*rule)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.field == field
    assert reason in error.reason
    assert error.rule == dict(zip(("priority", "pattern", "value", "syntax"), rule, strict=True))
    assert f"pattern {rule[1]!r}" in str(error) and reason in str(error)


def test_loading_a_plan_names_the_faulty_rule_and_field(france: DialingPlan) -> None:
    data = france.to_dict()
    data["rules"].append({"priority": 30, "pattern": "[(\\+]", "value": "0"})
    with pytest.raises(InvalidRule, match=r"^rules\[9\]: dialing plan rule \(priority 30, pattern '\[\(\\\\\+\]'"):
        DialingPlan.from_dict(data)
    with pytest.raises(InvalidRule, match=r"rules\[0\].*value: missing"):
        DialingPlan.from_dict({"rules": [{"priority": 1, "pattern": "0"}]})
    with pytest.raises(InvalidRule, match=r"rules\[0\].*colour: unknown field"):
        DialingPlan.from_dict({"rules": [{"priority": 1, "pattern": "0", "value": "0", "colour": "red"}]})


def test_plan_round_trips_through_its_json_form(france: DialingPlan) -> None:
    plan = with_rules(france, Rule(30, GUIDE_REGEX, GUIDE_REGEX_VALUE), Rule(40, "[67]XXXXXXXX", "0$0", "pbx"))
    data = plan.to_dict()
    assert data["settings"] == {
        "international_prefix": "00",
        "local_country_prefix": "33",
        "region": "FR",
        "external_prefix": "0",
        "add": "",
        "remove": "",
        "internal_length": 4,
        "internal_reverse_length": 4,
    }
    assert DialingPlan.from_dict(data) == plan
    assert DialingPlan.from_dict({}) == france
    assert DialingPlan.from_dict({"settings": {"local_country_prefix": "32"}}).settings.region == "BE"
    assert DialingPlan.from_dict({"settings": {"region": "fr"}, "rules": []}).rules == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"settings": {"internal_length": "4"}}, "settings.internal_length: expected an integer 0-64, got '4'"),
        ({"settings": {"external_prefix": "0a"}}, "settings.external_prefix: expected 0-8 characters"),
        (
            {"settings": {"region": "FR", "local_country_prefix": "34"}},
            "settings.local_country_prefix: '34' is not the country code of region FR (33)",
        ),
        ({"settings": {"region": "XX"}}, "settings.region: expected an ISO 3166 country code"),
        ({"settings": {"colour": "red"}}, "settings.colour: unknown field"),
        ({"settings": {"local_country_prefix": "999"}}, "settings.local_country_prefix: '999' is not a country code"),
        ({"rules": "0033"}, "rules: expected a list of rules"),
        ({"plan": {}}, "plan: unknown field"),
    ],
)
def test_loading_bad_settings_names_the_field(data: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        DialingPlan.from_dict(data)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "number",
    [
        "",
        " ",
        "()",
        "+",
        "++++",
        "#",
        "abc",
        "☎",
        "\ud800",
        "٠١٥٥١٧١٨٨٩",
        "０１５５１７１８８９",
        "+" * 300,
        "1" * MAX_INPUT_LENGTH,
        "1" * 100_000,
        "(((((((0)))))))",
        "\x00\n\t",
    ],
)
def test_no_input_raises(france: DialingPlan, number: str) -> None:
    plan = with_rules(france, Rule(30, GUIDE_REGEX, GUIDE_REGEX_VALUE), Rule(1, "X!", "$0", "pbx"))
    for result in (plan.to_dialable(number), plan.from_received(number)):
        assert isinstance(result.output, str) and result.steps
    assert isinstance(plan.canonical_keys(number), tuple)


def test_unicode_digits_are_read_as_digits(france: DialingPlan) -> None:
    assert dial(france, "٠١٥٥١٧١٨٨٩") == "00155171889"
    assert dial(france, "＋３３ １ ５５ １７ １８ ８９") == "00155171889"
    assert france.canonical_keys("０１５５１７１８８９") == ("+33155171889",)


def test_too_long_input_is_refused_not_transformed(france: DialingPlan) -> None:
    result = france.to_dialable("1" * (MAX_INPUT_LENGTH + 1))
    assert result.output == "" and result.steps == (f"refused: longer than {MAX_INPUT_LENGTH} characters",)


def test_a_regex_matching_nothing_does_not_fire(france: DialingPlan) -> None:
    """A regular expression must match at least one character to apply; '(\\+)?' alone does not take every number."""
    plan = with_rules(france, Rule(1, r"[(\+)?]", "9"))
    assert dial(plan, "0155171889") == "00155171889"
    assert dial(plan, "+12") == "912"


def test_plans_with_unmergeable_regexes_give_the_same_results(france: DialingPlan) -> None:
    """Backreferences and named groups keep their meaning (those plans are evaluated rule by rule)."""
    plan = with_rules(france, Rule(1, r"[(\d)\1(?P<rest>\d)]", "${rest}"))
    assert plan._dispatch is None
    assert dial(plan, "1123") == "23"
    assert dial(plan, "+33155171889") == "00155171889"


def test_settings_check_their_fields() -> None:
    with pytest.raises(ValueError, match="internal_length: expected an integer 0-64, got True"):
        DialingPlanSettings(internal_length=True)
    with pytest.raises(ValueError, match="international_prefix: expected 1-8 digits"):
        DialingPlanSettings(international_prefix="")
    assert DialingPlanSettings(region="be", local_country_prefix="32").region == "BE"
    assert DialingPlanSettings(internal_length=5).internal_reverse_length == 5
