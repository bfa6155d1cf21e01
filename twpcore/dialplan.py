"""The dialing plan: turning dialed numbers into callable ones, received numbers into matchable ones.

Guide chapter 5.  A domain's plan holds global settings (international, local country and
external prefixes; add / remove; internal and internal reverse lengths) and ordered rules
(priority, pattern, value).  Three operations:

- :meth:`DialingPlan.to_dialable`, the *dialing transformation* of 5.2, for numbers dialed
  by a user or found in a directory, before they are sent to the PBX;
- :meth:`DialingPlan.from_received`, the *reverse transformation* for numbers received from
  the PBX (remove, add, internal reverse length), before a reverse directory lookup;
- :meth:`DialingPlan.canonical_keys`, the keys under which the directory service indexes a
  contact number and looks up a received one, computed with ``phonenumbers`` in the
  domain's country.

Everything here is pure: no I/O, no kernel imports.  Rules are checked when a
:class:`Rule` is built, so a bad rule is refused when it is saved or loaded
(:class:`InvalidRule`), never when a number goes through the plan; and no input string
makes ``to_dialable``, ``from_received`` or ``canonical_keys`` raise.  ``docs/dialplan.md``
explains the algorithm with examples.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs
import phonenumbers

from twpcore.numberkeys import E164Reader, reference_e164

__all__ = [
    "MAX_INPUT_LENGTH",
    "PLACEHOLDERS",
    "SYNTAXES",
    "DialingPlan",
    "DialingPlanSettings",
    "InvalidRule",
    "Result",
    "Rule",
]

SYNTAXES = ("guide", "pbx")
"""Rule syntaxes: ``guide`` (prefix or ``[regular expression]``, guide 5.1 and 5.3) and ``pbx`` (``X Z N [..] . !``)."""

PLACEHOLDERS = {
    "InternationalPrefix": "international_prefix",
    "ExternalPrefix": "external_prefix",
    "LocalCountryPrefix": "local_country_prefix",
}
"""Placeholder name (written ``[-Name-]`` in patterns and values) → the setting it stands for."""

MAX_INPUT_LENGTH = 256
"""Longer inputs are refused (empty output) rather than transformed: no phone number is that long."""

_PLACEHOLDER_BY_LOWER = {name.lower(): name for name in PLACEHOLDERS}
_PLACEHOLDER_RE = re.compile(r"\[-([A-Za-z]+)-\]")
_VALUE_TOKEN_RE = re.compile(r"\[-([A-Za-z]+)-\]|\$(\d+)|\$\{(\w+)\}|\$\$|\$")
_NET_NAMED_GROUP_RE = re.compile(r"\(\?<(?=[A-Za-z_])")
# Regular expressions that cannot be merged into the one-pass dispatcher: their group
# numbers or names would clash with the other rules', or their flags must come first.
_NOT_MERGEABLE_RE = re.compile(r"\\(?:[1-9]|g<)|\(\?P[<=>]|\(\?[aiLmsux]")
_JUNK_RE = re.compile(r"[^0-9+#*()]+")
_DELETE_SIGNS = str.maketrans("", "", "+#*")
_DELETE_PARENS = str.maketrans("", "", "()")
_LITERAL_CHARS = frozenset("0123456789+#*()")
_VALUE_CHARS = frozenset("0123456789+#* ")
_DIALABLE_CHARS = frozenset("0123456789#*")
_NON_EMPTY = r"(?<=[\s\S])"
_NEVER = "(?!)"


class InvalidRule(ValueError):
    """A dialing plan rule that cannot be used; the message names the rule, the field and the reason.

    Attributes: ``rule`` (a dict with ``priority``, ``pattern``, ``value``, ``syntax`` as
    given), ``field`` (the faulty field), ``reason`` (why, and how to fix it), ``location``
    (where it was loaded from, e.g. ``rules[3]``, or ``""``).
    """

    def __init__(self, rule: Mapping[str, Any], field: str, reason: str, location: str = ""):
        self.rule = dict(rule)
        self.field = field
        self.reason = reason
        self.location = location
        where = f"{location}: " if location else ""
        super().__init__(
            f"{where}dialing plan rule (priority {self.rule.get('priority')!r}, pattern "
            f"{self.rule.get('pattern')!r}, value {self.rule.get('value')!r}): {field}: {reason}"
        )

    def at(self, location: str) -> InvalidRule:
        """The same error, located (``rules[3]``)."""
        return InvalidRule(self.rule, self.field, self.reason, location)


# --------------------------------------------------------------------------- settings


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _national_prefix(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (metadata.national_prefix or "") if metadata is not None else ""


@attrs.frozen
class DialingPlanSettings:
    """The global settings of a domain's dialing plan (left part of the guide's 5 screen).

    Build one with ``DialingPlanSettings()`` (France, as in the guide's examples) or
    ``DialingPlanSettings.for_region("BE", external_prefix="9")``.  Every field is checked
    on construction; a bad value raises ``ValueError`` naming the field.
    """

    international_prefix: str = "00"
    """International prefix: what is dialed before a country code for an international call ("00"; "011" in North America)."""
    local_country_prefix: str = "33"
    """Local country prefix: the country code of the installation country, without "+" ("33" for France)."""
    region: str = attrs.field(default="FR", converter=_upper)
    """The installation country as an ISO 3166 code ("FR"), used by ``phonenumbers``; its country code must be ``local_country_prefix``."""
    external_prefix: str = "0"
    """External prefix: what the PBX needs to reach the public network ("0"); may be empty."""
    add: str = ""
    """Add: characters put at the start of a received calling number (reverse transformation)."""
    remove: str = ""
    """Remove: characters taken off the start of a received calling number when it starts with them (reverse transformation)."""
    internal_length: int = 4
    """Internal length: the longest internal number; a dialed number longer than this and matched by no rule gets the external prefix."""
    internal_reverse_length: int = attrs.field(
        default=attrs.Factory(lambda self: self.internal_length, takes_self=True)
    )
    """Internal reverse length: a received number this long or shorter is an internal caller, left untouched by add / remove
    (defaults to ``internal_length``)."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "international_prefix",
        "local_country_prefix",
        "region",
        "external_prefix",
        "add",
        "remove",
        "internal_length",
        "internal_reverse_length",
    )

    def __attrs_post_init__(self) -> None:
        _check_chars("international_prefix", self.international_prefix, "0123456789", 1, 8)
        _check_chars("local_country_prefix", self.local_country_prefix, "0123456789", 1, 3)
        _check_chars("external_prefix", self.external_prefix, "0123456789#*", 0, 8)
        _check_chars("add", self.add, "0123456789+#*", 0, 16)
        _check_chars("remove", self.remove, "0123456789+#*", 0, 16)
        _check_length("internal_length", self.internal_length)
        _check_length("internal_reverse_length", self.internal_reverse_length)
        if not isinstance(self.region, str) or self.region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"region: expected an ISO 3166 country code known to phonenumbers (like FR), "
                f"got {self.region!r}"
            )
        code = phonenumbers.country_code_for_region(self.region)
        if str(code) != self.local_country_prefix:
            raise ValueError(
                f"local_country_prefix: {self.local_country_prefix!r} is not the country code of "
                f"region {self.region} ({code}); set both to the installation country"
            )

    @classmethod
    def for_region(cls, region: str = "FR", **overrides: Any) -> DialingPlanSettings:
        """Settings for a country: its country code and international prefix from ``phonenumbers``, then ``overrides``."""
        region = _upper(region)
        if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"region: expected an ISO 3166 country code (like FR), got {region!r}")
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert metadata is not None, region  # every region of SUPPORTED_REGIONS has metadata
        prefix = (metadata.preferred_international_prefix or metadata.international_prefix or "").replace("~", "")
        values: dict[str, Any] = {
            "region": region,
            "local_country_prefix": str(phonenumbers.country_code_for_region(region)),
            "international_prefix": prefix if prefix.isdigit() and prefix.isascii() else "00",
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], location: str = "settings") -> DialingPlanSettings:
        """Settings from their JSON form; missing fields take the region's defaults, unknown ones are refused."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{location}: expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.FIELDS))
        if unknown:
            raise ValueError(f"{location}.{unknown[0]}: unknown field; expected one of {', '.join(cls.FIELDS)}")
        values = dict(data)
        region = values.pop("region", None)
        if region is None:
            code = values.get("local_country_prefix", "33")
            region = (
                phonenumbers.region_code_for_country_code(int(code))
                if isinstance(code, str) and code.isdigit() and code.isascii() and len(code) <= 3
                else "FR"
            )
            if region == "ZZ":
                raise ValueError(f"{location}.local_country_prefix: {code!r} is not a country code")
        try:
            return cls.for_region(region, **values)
        except ValueError as error:
            raise ValueError(f"{location}.{error}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (every field)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    @property
    def national_prefix(self) -> str:
        """The region's trunk prefix from ``phonenumbers`` ("0" in France, "" in Italy), used by the standard rules."""
        return _national_prefix(self.region)

    def placeholder(self, name: str) -> str:
        """The value of placeholder ``[-name-]``."""
        return str(getattr(self, PLACEHOLDERS[name]))


def _check_chars(field: str, value: Any, allowed: str, low: int, high: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__} {value!r}")
    if not low <= len(value) <= high or any(c not in allowed for c in value):
        what = "digits" if allowed == "0123456789" else f"characters from {' '.join(allowed)}"
        raise ValueError(f"{field}: expected {low}-{high} {what}, got {value!r}")


def _check_length(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise ValueError(f"{field}: expected an integer 0-64, got {value!r}")


# --------------------------------------------------------------------------- rules


@attrs.frozen
class _Placeholder:
    name: str


@attrs.frozen
class _Parsed:
    """A rule's pattern and value, parsed once, independent of the settings."""

    kind: str  # "prefix", "regex" or "pbx"
    pattern: tuple[str | _Placeholder, ...]  # prefix: literal text; regex/pbx: regex source
    value: tuple[str | _Placeholder | int, ...]  # int: a group number ($0 = the matched text)
    on_bracketed: bool  # matched against the number with its parentheses kept
    mergeable: bool  # may join the one-pass dispatcher


@attrs.frozen
class Rule:
    """A rule of the dialing plan: when ``pattern`` matches the start of a number, the match is replaced by ``value``.

    Rules are tried by increasing ``priority``; the first that matches is the only one
    applied (guide 5).  The pattern and value are checked here: a bad rule raises
    :class:`InvalidRule`.
    """

    priority: int
    """Order of evaluation: the lowest priority is tried first; equal priorities keep their list order."""
    pattern: str
    """What to look for at the start of the number: a prefix, a ``[regular expression]`` (guide syntax) or a PBX pattern."""
    value: str
    """What replaces the matched part: digits, ``+ # *``, placeholders ``[-Name-]``, captures ``$1`` / ``${1}`` / ``${name}``,
    ``$0`` (the whole match); spaces are ignored."""
    syntax: str = "guide"
    """``guide`` (prefix, or regular expression in square brackets, guide 5.1 / 5.3) or ``pbx`` (``X Z N [1-5] . !``,
    matched against the whole number)."""
    _parsed: _Parsed = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_parsed", _parse_rule(self))

    @property
    def description(self) -> str:
        """``rule 30 '<pattern>' → '<value>'``, for test-facility steps and logs."""
        suffix = " (pbx)" if self.syntax == "pbx" else ""
        return f"rule {self.priority} {self.pattern!r} → {self.value!r}{suffix}"

    @property
    def is_regex(self) -> bool:
        """True for a guide-syntax regular expression (pattern in square brackets)."""
        return self._parsed.kind == "regex"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"priority": self.priority, "pattern": self.pattern, "value": self.value, "syntax": self.syntax}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], location: str = "") -> Rule:
        """A rule from its JSON form; raises :class:`InvalidRule` (located) for a bad or incomplete one."""
        if not isinstance(data, Mapping):
            raise InvalidRule({}, "rule", f"expected an object, got {type(data).__name__}", location)
        unknown = sorted(set(data) - {"priority", "pattern", "value", "syntax"})
        if unknown:
            raise InvalidRule(data, unknown[0], "unknown field; expected priority, pattern, value, syntax", location)
        for field in ("priority", "pattern", "value"):
            if field not in data:
                raise InvalidRule(data, field, "missing", location)
        try:
            return cls(data["priority"], data["pattern"], data["value"], data.get("syntax", "guide"))
        except InvalidRule as error:
            raise error.at(location) from None


def _parse_rule(rule: Rule) -> _Parsed:
    given = {"priority": rule.priority, "pattern": rule.pattern, "value": rule.value, "syntax": rule.syntax}

    def fail(field: str, reason: str) -> InvalidRule:
        return InvalidRule(given, field, reason)

    if isinstance(rule.priority, bool) or not isinstance(rule.priority, int):
        raise fail("priority", f"expected an integer, got {rule.priority!r}")
    if rule.syntax not in SYNTAXES:
        raise fail("syntax", f"expected one of {', '.join(SYNTAXES)}, got {rule.syntax!r}")
    for field in ("pattern", "value"):
        if not isinstance(getattr(rule, field), str):
            raise fail(field, f"expected text, got {type(getattr(rule, field)).__name__}")
    pattern = rule.pattern
    if not pattern:
        raise fail("pattern", "empty: a rule must look for something")
    if len(pattern) > 512 or len(rule.value) > 512:
        raise fail("pattern" if len(pattern) > 512 else "value", "longer than 512 characters")

    if rule.syntax == "pbx":
        parts, groups, named = _parse_pbx(pattern, fail)
        kind, on_bracketed, mergeable = "pbx", False, True
    elif pattern.startswith("[") and pattern.endswith("]") and len(pattern) > 1 and not _PLACEHOLDER_RE.match(pattern):
        parts, groups, named = _parse_regex(pattern[1:-1], fail)
        kind, on_bracketed = "regex", True
        mergeable = not _NOT_MERGEABLE_RE.search(pattern) and not named
    else:
        parts = _parse_prefix(pattern, fail)
        groups, named = 0, {}
        kind, on_bracketed, mergeable = "prefix", "(" in pattern or ")" in pattern, True
    value = _parse_value(rule.value, groups, named, kind, fail)
    return _Parsed(kind, parts, value, on_bracketed, mergeable)


def _placeholder(match: re.Match[str], field: str, fail: Any) -> _Placeholder:
    name = _PLACEHOLDER_BY_LOWER.get(match.group(1).lower())
    if name is None:
        known = ", ".join(f"[-{n}-]" for n in PLACEHOLDERS)
        raise fail(field, f"unknown placeholder {match.group(0)} at position {match.start()}; known: {known}")
    return _Placeholder(name)


def _parse_prefix(pattern: str, fail: Any) -> tuple[str | _Placeholder, ...]:
    parts: list[str | _Placeholder] = []
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(pattern):
        parts.append(pattern[pos : match.start()])
        parts.append(_placeholder(match, "pattern", fail))
        pos = match.end()
    parts.append(pattern[pos:])
    for part in parts:
        if isinstance(part, str):
            for char in part:
                if char not in _LITERAL_CHARS:
                    raise fail(
                        "pattern",
                        f"character {char!r} can never match: before the rules a number is reduced to "
                        f"digits, + # * and parentheses (write a regular expression in [square brackets] "
                        f"for anything else)",
                    )
    return tuple(p for p in parts if p != "")


def _parse_regex(body: str, fail: Any) -> tuple[tuple[str | _Placeholder, ...], int, dict[str, int]]:
    if not body:
        raise fail("pattern", "empty regular expression between the square brackets")
    body = _NET_NAMED_GROUP_RE.sub("(?P<", body)  # .NET (?<name>...) as in the guide's MSDN reference
    parts: list[str | _Placeholder] = []
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(body):
        parts.append(body[pos : match.start()])
        parts.append(_placeholder(match, "pattern", fail))
        pos = match.end()
    parts.append(body[pos:])
    parts = [p for p in parts if p != ""]
    try:
        compiled = re.compile(_regex_source(parts, None))
        re.compile(f"(?:{_regex_source(parts, None)}){_NON_EMPTY}")
    except (re.error, OverflowError, RecursionError) as error:
        raise fail("pattern", f"invalid regular expression: {error}") from None
    return tuple(parts), compiled.groups, dict(compiled.groupindex)


def _parse_pbx(pattern: str, fail: Any) -> tuple[tuple[str | _Placeholder, ...], int, dict[str, int]]:
    """Translate a PBX pattern: its literal start, then ``(`` the rest ``)`` as $1, to the end of the number."""
    head: list[str | _Placeholder] = []
    rest: list[str | _Placeholder] = []
    pos = 0
    while pos < len(pattern):
        match = _PLACEHOLDER_RE.match(pattern, pos)
        if match:
            (rest if rest else head).append(_placeholder(match, "pattern", fail))
            pos = match.end()
            continue
        char = pattern[pos]
        if char in "0123456789+#*":
            (rest if rest else head).append(re.escape(char))
        elif char in "Xx":
            rest.append("[0-9]")
        elif char in "Zz":
            rest.append("[1-9]")
        elif char in "Nn":
            rest.append("[2-9]")
        elif char == ".":
            rest.append(".+")
        elif char == "!":
            rest.append(".*")
        elif char == "[":
            end = pattern.find("]", pos)
            if end < 0:
                raise fail("pattern", f"set opened at position {pos} is not closed with ']'")
            rest.append(_pbx_set(pattern[pos + 1 : end], pos, fail))
            pos = end
        else:
            raise fail(
                "pattern",
                f"character {char!r} at position {pos} is not a PBX pattern element; use digits, + # *, "
                f"X (0-9), Z (1-9), N (2-9), [1237-9] sets, '.' (one or more), '!' (zero or more)",
            )
        pos += 1
    return (*head, "(", *rest, r")\Z"), 1, {}


def _pbx_set(content: str, pos: int, fail: Any) -> str:
    if not content:
        raise fail("pattern", f"empty set [] at position {pos}")
    i = 0
    while i < len(content):
        char = content[i]
        if char not in "0123456789":
            raise fail("pattern", f"set at position {pos} may only hold digits and ranges like 7-9, found {char!r}")
        if i + 1 < len(content) and content[i + 1] == "-":
            if i + 2 >= len(content) or content[i + 2] not in "0123456789":
                raise fail("pattern", f"set at position {pos}: range {content[i:i + 3]!r} needs a digit after '-'")
            if content[i + 2] < char:
                raise fail("pattern", f"set at position {pos}: range {content[i:i + 3]!r} goes backwards")
            i += 3
        else:
            i += 1
    return f"[{content}]"


def _parse_value(
    value: str, groups: int, named: Mapping[str, int], kind: str, fail: Any
) -> tuple[str | _Placeholder | int, ...]:
    parts: list[str | _Placeholder | int] = []
    pos = 0

    def literal(text: str) -> None:
        for char in text:
            if char not in _VALUE_CHARS:
                raise fail("value", f"character {char!r} is not dialable; use digits, + # *, placeholders and $1 captures")
        if text.strip(" "):
            parts.append(text.replace(" ", ""))

    def group(number: int, written: str) -> None:
        if number > groups:
            if kind == "prefix":
                hint = "a prefix rule has no captures, only $0 (the matched prefix); put a regular expression in [square brackets]"
            elif kind == "pbx":
                hint = "a PBX pattern has $0 (the whole number) and $1 (from its first wildcard on)"
            else:
                hint = f"the pattern has {groups} capture group(s)"
            raise fail("value", f"{written} refers to a capture that does not exist: {hint}")
        parts.append(number)

    for match in _VALUE_TOKEN_RE.finditer(value):
        literal(value[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if match.group(1) is not None:
            parts.append(_placeholder(match, "value", fail))
        elif match.group(2) is not None:
            group(int(match.group(2)) if len(match.group(2)) < 6 else 10**6, token)
        elif match.group(3) is not None:
            name = match.group(3)
            if name.isdigit():
                group(int(name) if len(name) < 6 else 10**6, token)
            elif name in named:
                group(named[name], token)
            else:
                raise fail("value", f"{token} names no group of the pattern")
        elif token == "$$":
            raise fail("value", "'$$' writes a dollar sign, which is not dialable")
        else:
            raise fail("value", f"'$' at position {match.start()} must be followed by a group number ($1, ${{1}}) or a group name (${{name}})")
    literal(value[pos:])
    return tuple(parts)


def _regex_source(parts: Iterable[str | _Placeholder], settings: DialingPlanSettings | None) -> str:
    out = []
    for part in parts:
        if isinstance(part, _Placeholder):
            text = settings.placeholder(part.name) if settings is not None else "0"
            out.append(f"(?:{re.escape(text)})")
        else:
            out.append(part)
    return "".join(out)


# --------------------------------------------------------------------------- results


@attrs.frozen
class Result:
    """What the plan made of a number: the test facility of guide 5 shows it."""

    input: str
    """The number as given."""
    output: str
    """The transformed number ("" when nothing dialable was given)."""
    rule: Rule | None
    """The rule that fired, or None."""
    steps: tuple[str, ...]
    """Human-readable steps, in order, explaining the output."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form for the API."""
        return {
            "input": self.input,
            "output": self.output,
            "rule": self.rule.to_dict() if self.rule is not None else None,
            "steps": list(self.steps),
        }


# --------------------------------------------------------------------------- cleanup


def _ascii(number: str) -> str:
    """Fold compatibility forms (full-width digits, "＋") and any decimal digit to ASCII."""
    number = unicodedata.normalize("NFKC", number)
    out = []
    for char in number:
        if char.isascii():
            out.append(char)
        else:
            digit = unicodedata.decimal(char, None)
            if digit is not None:
                out.append(str(digit))
    return "".join(out)


def _clean(number: str) -> tuple[str, str]:
    """The number as rules see it: ``(clean, bracketed)``.

    ``clean`` keeps digits, with one leading ``+``, ``#`` or ``*`` (guide 5.1); a facility
    code (starting with ``#`` or ``*``) keeps every ``#``, ``*`` and ``+``.  ``bracketed``
    is the same with the parentheses kept, for rules that look for ``(0)``.
    """
    if number.isascii():
        if number.isdigit():
            return number, number
    else:
        number = _ascii(number)
    text = _JUNK_RE.sub("", number).lstrip("()")
    if not text:
        return "", ""
    lead = text[0]
    if lead == "#" or lead == "*":
        text = text.translate(_DELETE_PARENS)
        return text, text
    if lead == "+":
        bracketed = "+" + text[1:].translate(_DELETE_SIGNS)
    else:
        bracketed = text.translate(_DELETE_SIGNS)
    if "(" in bracketed or ")" in bracketed:
        return bracketed.translate(_DELETE_PARENS), bracketed
    return bracketed, bracketed


# Every ASCII character that cleaning removes, and the parentheses it removes from a
# number's clean form: what is left of a written number is its digits and signs.
_KEY_JUNK = bytes(c for c in range(128) if chr(c) not in "0123456789+#*")


def _clean_for_keys(number: str) -> str:
    """``_clean(number)[0]``, quicker for the common written forms (digits and separators, one leading ``+``)."""
    if number.isascii():
        text = number.encode().translate(None, _KEY_JUNK)
        if text.isdigit() or (text[:1] == b"+" and text[1:].isdigit()):
            return text.decode()
    return _clean(number)[0]


def _clean_output(text: str) -> str:
    if text.isdigit() and text.isascii():
        return text
    return _clean(text)[0]


# --------------------------------------------------------------------------- the plan


class _Compiled:
    """A rule bound to the settings: its regex and its value, ready to apply."""

    __slots__ = ("constant", "description", "mergeable", "on_bracketed", "places_external", "regex", "rule", "source", "value")

    def __init__(self, rule: Rule, settings: DialingPlanSettings):
        parsed = rule._parsed
        self.rule = rule
        self.description = rule.description
        if parsed.kind == "prefix":
            literal = "".join(
                settings.placeholder(p.name) if isinstance(p, _Placeholder) else p for p in parsed.pattern
            )
            self.source = re.escape(literal) if literal else _NEVER
        else:
            self.source = f"(?:{_regex_source(parsed.pattern, settings)}){_NON_EMPTY}"
        try:
            self.regex = re.compile(self.source)
        except (re.error, OverflowError, RecursionError) as error:  # pragma: no cover - checked by Rule
            raise InvalidRule(rule.to_dict(), "pattern", f"invalid regular expression: {error}") from None
        value: list[str | int] = []
        for part in parsed.value:
            text = settings.placeholder(part.name) if isinstance(part, _Placeholder) else part
            if isinstance(text, str) and value and isinstance(value[-1], str):
                value[-1] += text
            else:
                value.append(text)
        self.value = tuple(value)
        self.constant = "".join(value) if all(isinstance(v, str) for v in value) else None  # type: ignore[arg-type]
        self.places_external = any(
            isinstance(p, _Placeholder) and p.name == "ExternalPrefix" for p in parsed.value
        )
        self.on_bracketed = parsed.on_bracketed
        self.mergeable = parsed.mergeable

    def replacement(self, match: re.Match[str], base: int) -> str:
        if self.constant is not None:
            return self.constant
        return "".join(v if isinstance(v, str) else (match.group(base + v) or "") for v in self.value)


def _sorted_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    rules = tuple(rules)
    for index, rule in enumerate(rules):
        if not isinstance(rule, Rule):
            raise TypeError(f"rules[{index}]: expected a Rule, got {type(rule).__name__}")
    return tuple(sorted(rules, key=lambda r: r.priority))


@attrs.frozen
class DialingPlan:
    """A domain's dialing plan: settings and rules, compiled once, applied many times.

    ``DialingPlan.default("FR")`` gives the guide's standard plan; ``from_dict`` / ``to_dict``
    are the stored JSON form.  Instances are immutable; use ``attrs.evolve`` to change one.
    """

    settings: DialingPlanSettings = attrs.field(factory=DialingPlanSettings)
    """The global settings."""
    rules: tuple[Rule, ...] = attrs.field(factory=tuple, converter=_sorted_rules)
    """The rules, sorted by priority (stable: equal priorities keep their given order)."""
    _compiled: tuple[_Compiled, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _dispatch: Any = attrs.field(init=False, repr=False, eq=False, hash=False)
    _by_group: dict[int, _Compiled] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _reader: E164Reader = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.settings, DialingPlanSettings):
            raise TypeError(f"settings: expected DialingPlanSettings, got {type(self.settings).__name__}")
        compiled = tuple(_Compiled(rule, self.settings) for rule in self.rules)
        object.__setattr__(self, "_compiled", compiled)
        # One regex for all rules, tried in priority order by the alternation: the rule
        # whose group matched is the first applicable one.  Plans with rules that cannot
        # be merged are evaluated one rule at a time.
        dispatch, by_group = None, {}
        if compiled and all(c.mergeable for c in compiled):
            source = "|".join(f"(?P<r{i}>{c.source})" for i, c in enumerate(compiled))
            try:
                dispatch = re.compile(source)
            except (re.error, OverflowError, RecursionError):  # pragma: no cover - defensive
                dispatch = None
            else:
                by_group = {dispatch.groupindex[f"r{i}"]: c for i, c in enumerate(compiled)}
        object.__setattr__(self, "_dispatch", dispatch)
        object.__setattr__(self, "_by_group", by_group)
        object.__setattr__(self, "_reader", E164Reader(self.settings.region, self.settings.international_prefix))

    # ---------------------------------------------------------------- construction

    @staticmethod
    def standard_rules(settings: DialingPlanSettings) -> tuple[Rule, ...]:
        """The standard rules of guide 5.1 for these settings (with France: ``+33(0)`` → ``00``, ``+330`` → ``00``, ``#``, ``*``...).

        Numbers written with the local country code (``+33`` or ``0033``, with or without a
        ``(0)`` or ``0`` trunk prefix) become external prefix + national number; ``+`` becomes
        the international prefix (the external prefix is then added, guide 5.2); ``#`` and
        ``*`` facility codes are left alone.
        """
        trunk = settings.national_prefix
        national = f"[-ExternalPrefix-]{trunk}"
        rules = []
        for priority, lead in ((10, "+"), (20, "[-InternationalPrefix-]")):
            country = f"{lead}[-LocalCountryPrefix-]"
            if trunk:
                rules.append(Rule(priority, f"{country}({trunk})", national))
                rules.append(Rule(priority + 1, f"{country}{trunk}", national))
            rules.append(Rule(priority + 2, country, national))
        rules += [
            Rule(50, "+", "[-InternationalPrefix-]"),
            Rule(60, "#", "#"),
            Rule(61, "*", "*"),
        ]
        return tuple(rules)

    @classmethod
    def default(cls, region: str = "FR", **settings: Any) -> DialingPlan:
        """The standard plan for a country (``settings`` override the region's defaults)."""
        plan_settings = DialingPlanSettings.for_region(region, **settings)
        return cls(plan_settings, cls.standard_rules(plan_settings))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DialingPlan:
        """A plan from its stored JSON form ``{"settings": {...}, "rules": [...]}``.

        A missing ``settings`` means France's defaults; a missing ``rules`` means the
        standard rules (an empty list means no rules).  Raises ``ValueError`` naming the
        field, or :class:`InvalidRule` naming the rule (``rules[3]: ...``).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"dialing plan: expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"settings", "rules"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field; expected settings, rules")
        settings = DialingPlanSettings.from_dict(data.get("settings", {}))
        raw_rules = data.get("rules")
        if raw_rules is None:
            return cls(settings, cls.standard_rules(settings))
        if isinstance(raw_rules, (str, bytes, Mapping)) or not isinstance(raw_rules, Iterable):
            raise ValueError(f"rules: expected a list of rules, got {type(raw_rules).__name__}")
        rules = [Rule.from_dict(item, f"rules[{index}]") for index, item in enumerate(raw_rules)]
        return cls(settings, rules)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, in priority order; ``from_dict(plan.to_dict()) == plan``."""
        return {"settings": self.settings.to_dict(), "rules": [rule.to_dict() for rule in self.rules]}

    # ---------------------------------------------------------------- transformations

    def _match(self, clean: str, bracketed: str) -> tuple[_Compiled, re.Match[str], int, str] | None:
        """The first applicable rule: (compiled rule, match, group base, subject)."""
        if self._dispatch is not None and clean is bracketed:
            match = self._dispatch.match(clean)
            if match is None:
                return None
            index = match.lastindex
            return self._by_group[index], match, index, clean
        for compiled in self._compiled:
            subject = bracketed if compiled.on_bracketed else clean
            match = compiled.regex.match(subject)
            if match is not None:
                return compiled, match, 0, subject
        return None

    def to_dialable(self, number: str) -> Result:
        """The dialing transformation of guide 5.2: the number to send to the PBX, with the rule and steps."""
        if not isinstance(number, str):
            raise TypeError(f"number: expected str, got {type(number).__name__}")
        if len(number) > MAX_INPUT_LENGTH:
            return Result(number, "", None, (f"refused: longer than {MAX_INPUT_LENGTH} characters",))
        clean, bracketed = _clean(number)
        steps: list[str] = []
        if clean != number:
            steps.append(f"cleaned to {bracketed!r}" if clean is bracketed else f"cleaned to {clean!r} (rules may see {bracketed!r})")
        if not clean:
            steps.append("nothing to dial: no digit, '+', '#' or '*'")
            return Result(number, "", None, tuple(steps))
        settings = self.settings
        found = self._match(clean, bracketed)
        if found is None:
            lead = clean[0]
            if lead == "+":
                steps.append("no rule matched; a number in international format (+) is left as it is")
                output = clean
            elif lead == "#" or lead == "*":
                steps.append("no rule matched; a facility code (# or *) is left as it is")
                output = clean
            elif len(clean) > settings.internal_length:
                output = settings.external_prefix + clean
                steps.append(
                    f"no rule matched; {len(clean)} digits is longer than the internal length "
                    f"{settings.internal_length}: external prefix {settings.external_prefix!r} added: {output!r}"
                )
            else:
                output = clean
                steps.append(f"no rule matched; not longer than the internal length {settings.internal_length}: unchanged")
            return Result(number, output, None, tuple(steps))

        compiled, match, base, subject = found
        end = match.end(base)
        output = _clean_output(compiled.replacement(match, base) + subject[end:])
        steps.append(f"{compiled.description} matched {subject[:end]!r}: {output!r}")
        if clean[0] == "+":
            if compiled.places_external:
                steps.append("the number started with '+'; the rule's value places the external prefix itself")
            elif not output or output[0] in "+#*" or len(output) <= settings.internal_length:
                steps.append("the number started with '+', but the result is not an external number: no external prefix")
            elif not settings.external_prefix:
                steps.append("the number started with '+'; the external prefix is empty")
            else:
                output = settings.external_prefix + output
                steps.append(f"the number started with '+': external prefix {settings.external_prefix!r} added: {output!r}")
        else:
            steps.append("the number did not start with '+': only the rule is applied")
        return Result(number, output, compiled.rule, tuple(steps))

    def from_received(self, number: str) -> Result:
        """The reverse transformation of a received calling number: remove, then add, unless internal (guide 5)."""
        if not isinstance(number, str):
            raise TypeError(f"number: expected str, got {type(number).__name__}")
        if len(number) > MAX_INPUT_LENGTH:
            return Result(number, "", None, (f"refused: longer than {MAX_INPUT_LENGTH} characters",))
        clean = _clean(number)[0]
        steps: list[str] = []
        if clean != number:
            steps.append(f"cleaned to {clean!r}")
        if not clean:
            steps.append("nothing to resolve: no digit, '+', '#' or '*'")
            return Result(number, "", None, tuple(steps))
        settings = self.settings
        if clean[0] == "#" or clean[0] == "*":
            steps.append("facility code (# or *): unchanged")
            return Result(number, clean, None, tuple(steps))
        if clean[0] != "+" and len(clean) <= settings.internal_reverse_length:
            steps.append(
                f"{len(clean)} digits, not longer than the internal reverse length "
                f"{settings.internal_reverse_length}: internal number, unchanged"
            )
            return Result(number, clean, None, tuple(steps))
        output = clean
        changed = False
        if settings.remove and output.startswith(settings.remove):
            changed = True
            output = output[len(settings.remove) :]
            steps.append(f"removed {settings.remove!r}: {output!r}")
        if settings.add:
            if output.startswith("+"):
                steps.append(f"international format (+): {settings.add!r} not added")
            else:
                output = settings.add + output
                changed = True
                steps.append(f"added {settings.add!r}: {output!r}")
        if not changed:
            steps.append("no remove / add applies: unchanged")
        return Result(number, output, None, tuple(steps))

    def canonical_keys(self, number: str) -> tuple[str, ...]:
        """The keys a number is indexed and looked up under, primary key first.

        - ``()`` for nothing dialable and for ``#`` / ``*`` facility codes;
        - ``("internal:1234",)`` for a number of at most ``internal_length`` digits;
        - otherwise E.164 keys (``"+33155171889"``) as ``phonenumbers`` reads the number in
          the domain's region.  A number that starts with the external prefix is read as
          *behind the external prefix* when what follows it is a valid number: that reading
          comes first; the number read as written follows when it is valid too
          (``00298123456``: Brest behind "0", or the Faroe Islands).  When no reading is
          valid, the number as written gives the key (``"+3312345678"``), or
          ``"raw:<digits>"`` when ``phonenumbers`` cannot read it at all.

        Index a contact under all its keys and look a received number up by each of its
        keys in order.  The common written forms are read by :mod:`twpcore.numberkeys`
        without a full ``phonenumbers`` parse, with the same result.
        """
        return self._keys(number, self._reader.e164)

    def _reference_canonical_keys(self, number: str) -> tuple[str, ...]:
        """:meth:`canonical_keys` computed with a full ``phonenumbers`` parse of every reading (tests, benchmarks)."""
        return self._keys(number, self._e164_reference, quick=False)

    def _keys(self, number: str, e164: Callable[[str], tuple[str | None, bool]], quick: bool = True) -> tuple[str, ...]:
        if not isinstance(number, str):
            raise TypeError(f"number: expected str, got {type(number).__name__}")
        if len(number) > MAX_INPUT_LENGTH:
            return ()
        clean = _clean_for_keys(number)
        if not clean or clean[0] == "#" or clean[0] == "*" or clean == "+":
            return ()
        if clean[0] == "+":
            key, _ = e164(clean)
            return (key or f"raw:{clean}",)
        settings = self.settings
        if len(clean) <= settings.internal_length:
            return (f"internal:{clean}",)
        external = settings.external_prefix
        behind: str | None = None
        if external and clean.startswith(external) and len(clean) - len(external) > settings.internal_length:
            found, valid = e164(clean[len(external) :])
            if valid and found:
                if quick and self._reader.written_reads_as(clean, external, found):
                    return (found,)  # the number as written reads the same: no second reading
                behind = found
        direct, valid = e164(clean)
        if behind is not None:
            return (behind, direct) if valid and direct and direct != behind else (behind,)
        if valid and direct:
            return (direct,)
        return (direct or f"raw:{clean}",)

    def _e164(self, digits: str) -> tuple[str | None, bool]:
        """``(E.164, valid)`` for a cleaned number read in the domain's region, ``(None, False)`` if unreadable."""
        return self._reader.e164(digits)

    def _e164_reference(self, digits: str) -> tuple[str | None, bool]:
        """:meth:`_e164` by a full ``phonenumbers`` parse, format and validation."""
        return reference_e164(digits, self.settings.region, self.settings.international_prefix)
