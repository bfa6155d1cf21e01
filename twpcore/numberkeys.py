"""Fast E.164 reading of cleaned numbers, for the dialing plan's canonical keys.

:meth:`twpcore.dialplan.DialingPlan.canonical_keys` needs, for a number already cleaned
to digits (with at most a leading ``+``), what ``phonenumbers.parse`` then
``format_number(E164)`` and ``is_valid_number`` say about it.  A full parse does much
that such an input never needs (finding a number in free text, RFC 3966, extensions,
letters); this module does only the steps a string of digits goes through, with the
same metadata, compiled once per numbering (a region, or a non-geographic country
code) the first time it is needed:

- an international prefix of the region, or a ``+``, then a country code (1-3 digits);
- a national number written with the country code but no ``+`` (``33 1 ...`` in France);
- the national prefix for parsing, with its transform rule (``0`` in France, ``1`` or a
  missing area code in North America, ``0`` plus a carrier code in Brazil ...), removed
  only when what remains is a possible length for the numbering;
- validity: the general pattern of the numbering and one of its number types, for the
  region the number belongs to when several share a country code (``+1``, ``+44``, ``+7``).

``phonenumbers`` stays the reference.  Whenever a reading is not one of these plain
paths (a ``+`` followed by no known country code, an input over 24 characters, anything
unexpected), :meth:`E164Reader.fast` answers ``None`` and :meth:`E164Reader.e164` asks
``phonenumbers``; ``tests/test_canonical_keys_properties.py`` checks that both give the
same answer on generated numbers of every region.  ``docs/dialplan.md`` ("Canonical
keys") describes the keys.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

__all__ = ["E164Reader"]

_MIN_NSN = 2
"""phonenumbers refuses a national significant number shorter than this (TOO_SHORT_NSN)."""
_MAX_NSN = 17
"""... or longer than this (TOO_LONG)."""
_MAX_FAST_DIGITS = 24
"""Longer inputs are left to phonenumbers: nothing that long is a number, and they are rare."""
_NON_GEO = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY

# The number types phonenumbers tries (_number_type_helper), mobile last.
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)

Fullmatch = Callable[[str], "re.Match[str] | None"]


def _never(_: str) -> None:
    return None


def _fullmatch(pattern: str | None) -> Fullmatch:
    return re.compile(pattern).fullmatch if pattern else _never


class _Numbering:
    """What one region's metadata (or a non-geographic code's) says about a string of digits."""

    __slots__ = (
        "_typed",
        "_typed_lock",
        "country_code",
        "country_code_text",
        "general",
        "general_desc",
        "idd",
        "idd_text",
        "leading_digits",
        "lengths",
        "local_lengths",
        "longest",
        "metadata",
        "prefix",
        "prefix_regex",
        "prefix_text",
        "transform",
    )

    def __init__(self, metadata: PhoneMetadata, country_code: int, general: PhoneNumberDesc):
        self.metadata = metadata
        self.general_desc = general
        self.country_code = country_code
        self.country_code_text = str(country_code)
        self.general = _fullmatch(general.national_number_pattern)
        self.lengths = frozenset(general.possible_length)
        self.longest = max(general.possible_length)
        self.local_lengths = frozenset(general.possible_length_local_only or ())
        national = metadata.national_prefix_for_parsing or None
        self.transform = metadata.national_prefix_transform_rule or None
        self.prefix_regex = re.compile(national) if national else None
        self.prefix = self.prefix_regex.match if self.prefix_regex is not None else None
        # Most regions' national prefix ("0", "1", "8") and international prefix ("00",
        # "011") are plain digits: a string comparison does what their expression does.
        self.prefix_text = national if national and national.isdigit() and national.isascii() and not self.transform else None
        international = metadata.international_prefix or None
        self.idd = re.compile(international).match if international else None
        self.idd_text = international if international and international.isdigit() and international.isascii() else None
        self.leading_digits = re.compile(metadata.leading_digits).match if metadata.leading_digits is not None else None
        self._typed: dict[int, Fullmatch] = {}
        self._typed_lock = threading.Lock()

    def strip_national_prefix(self, number: str) -> str:
        """The number without its national prefix (and carrier code), as phonenumbers strips it.

        Like ``_maybe_strip_national_prefix_carrier_code``: the prefix (or the transform
        rule) applies unless the number matched the general pattern and no longer does.
        """
        text = self.prefix_text
        if text is not None:
            if not number.startswith(text):
                return number
            stripped = number[len(text) :]
        else:
            if self.prefix is None or not number:
                return number
            match = self.prefix(number)
            if match is None:
                return number
            if self.transform is None or match.groups()[-1] is None:
                stripped = number[match.end() :]
            else:
                assert self.prefix_regex is not None
                stripped = self.prefix_regex.sub(self.transform, number, count=1)
        if self.general(stripped) is None and self.general(number) is not None:
            return number
        return stripped

    def international_rest(self, number: str) -> str | None:
        """What follows the region's international prefix (``None`` without one), as ``_parse_prefix_as_idd``."""
        text = self.idd_text
        if text is not None:
            if not number.startswith(text):
                return None
            rest = number[len(text) :]
        else:
            match = self.idd(number) if self.idd is not None else None
            if match is None:
                return None
            rest = number[match.end() :]
        # A country code never starts with 0: the prefix is then not an international one.
        return None if rest[:1] == "0" else rest

    def too_long(self, number: str) -> bool:
        """``_test_number_length`` is TOO_LONG."""
        length = len(number)
        return length > self.longest and length not in self.local_lengths

    def has_type(self, nsn: str) -> bool:
        """``_number_type_helper(nsn) != UNKNOWN``: the general pattern and one number type's."""
        match = self._typed.get(len(nsn)) or self._typed_for(len(nsn))
        return match(nsn) is not None

    def _typed_for(self, length: int) -> Fullmatch:
        # One expression per length: the general pattern as a look-ahead, then the types
        # whose possible lengths hold this length, as alternatives.
        with self._typed_lock:
            found = self._typed.get(length)
            if found is not None:
                return found
            metadata = self.metadata
            general = self.general_desc
            match: Fullmatch = _never
            if general.national_number_pattern and (not general.possible_length or length in general.possible_length):
                names = list(_TYPE_DESCS)
                if not metadata.same_mobile_and_fixed_line_pattern:
                    names.append("mobile")
                alternatives = []
                for name in names:
                    desc = getattr(metadata, name)
                    if desc is None or not desc.national_number_pattern:
                        continue
                    if desc.possible_length and length not in desc.possible_length:
                        continue
                    alternatives.append(f"(?:{desc.national_number_pattern})")
                if alternatives:
                    match = re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(alternatives)})").fullmatch
            self._typed[length] = match
            return match


_NUMBERINGS: dict[str, _Numbering] = {}
_BY_CODE: dict[str, tuple[_Numbering, tuple[_Numbering, ...]]] = {}
_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)
_LOCK = threading.Lock()


def _numbering(region: str, country_code: int = 0) -> _Numbering | None:
    key = f"{region}:{country_code}" if region == _NON_GEO else region
    numbering = _NUMBERINGS.get(key)
    if numbering is None:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        general = metadata.general_desc if metadata is not None else None
        if metadata is None or metadata.country_code is None or general is None or not general.possible_length:
            return None  # pragma: no cover - phonenumbers ships all of these for every region
        numbering = _NUMBERINGS.setdefault(key, _Numbering(metadata, metadata.country_code, general))
    return numbering


def _country(code: str) -> tuple[_Numbering, tuple[_Numbering, ...]] | None:
    """For a country code: the numbering phonenumbers parses with (its main region's), and every region's, in order."""
    found = _BY_CODE.get(code)
    if found is not None:
        return found
    if code not in _CODES:
        return None
    with _LOCK:
        regions = COUNTRY_CODE_TO_REGION_CODE[int(code)]
        numberings = tuple(n for n in (_numbering(r, int(code)) for r in regions) if n is not None)
        if not numberings or len(numberings) != len(regions):  # pragma: no cover - metadata ships for every region
            return None
        found = _BY_CODE[code] = (numberings[0], numberings)
        return found


def _split_country_code(digits: str) -> tuple[tuple[_Numbering, tuple[_Numbering, ...]], str] | None:
    """``(country, rest)`` for digits that start with a country code (``_extract_country_code``), else ``None``."""
    # Country codes form a prefix code: at most one of the three heads is one.
    for size in (1, 2, 3):
        head = digits[:size]
        if head in _CODES:
            country = _BY_CODE.get(head) or _country(head)
            return (country, digits[size:]) if country is not None else None
    return None


def _valid(regions: tuple[_Numbering, ...], nsn: str) -> bool:
    """phonenumbers' ``is_valid_number``: the region the number belongs to, then that region's types."""
    if len(regions) == 1:
        return regions[0].has_type(nsn)
    # _region_code_for_number_from_list: the first region whose leading digits match
    # claims the number, else the first whose types accept it.
    for numbering in regions:
        if numbering.leading_digits is not None:
            if numbering.leading_digits(nsn) is not None:
                return numbering.has_type(nsn)
        elif numbering.has_type(nsn):
            return True
    return False


def reference_e164(digits: str, region: str, international_prefix: str) -> tuple[str | None, bool]:
    """The reference: ``(E.164, valid)`` for cleaned ``digits`` by a full ``phonenumbers`` parse, ``(None, False)`` if unreadable.

    Digits starting with ``international_prefix`` are parsed as ``+`` and what follows,
    without a region.
    """
    parse_region: str | None = region
    if digits.startswith(international_prefix) and len(digits) > len(international_prefix):
        digits, parse_region = "+" + digits[len(international_prefix) :], None
    try:
        parsed = phonenumbers.parse(digits, parse_region)
    except phonenumbers.NumberParseException:
        return None, False
    return (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.is_valid_number(parsed),
    )


class E164Reader:
    """Reads cleaned numbers for one dialing plan the way ``phonenumbers`` does, mostly without a parse.

    ``E164Reader("FR", "00").e164("0155171889")`` is ``("+33155171889", True)``, as
    :func:`reference_e164` (``phonenumbers.parse``, ``format_number(E164)``,
    ``is_valid_number``) gives it; ``(None, False)`` where phonenumbers refuses the number.
    :meth:`fast` answers ``None`` where it is not sure; :meth:`e164` then asks the reference.
    """

    __slots__ = ("_home", "_home_regions", "_last", "international_prefix", "region")

    def __init__(self, region: str, international_prefix: str):
        numbering = _numbering(region)
        if numbering is None:
            raise ValueError(f"region: no phonenumbers metadata for {region!r}; use an ISO 3166 code like FR")
        country = _country(numbering.country_code_text)
        if country is None:  # pragma: no cover - every supported region's code is in the map
            raise ValueError(f"region: {region!r} has no country code in phonenumbers")
        self.region = region
        self.international_prefix = international_prefix
        self._home = numbering
        self._home_regions = country[1]
        # The last E.164 key and its validity: the readings of one number (behind the
        # external prefix, as written) often end on the same key.  One tuple, replaced
        # whole, so threads sharing a plan never see half of it.
        self._last: tuple[str, bool] = ("", False)

    def e164(self, digits: str) -> tuple[str | None, bool]:
        """``(E.164 or None, valid)`` for cleaned ``digits``: ASCII digits, or ``+`` then ASCII digits.

        Digits starting with the plan's international prefix are read as ``+`` and what follows.
        """
        found = self._read(digits) if len(digits) <= _MAX_FAST_DIGITS else None
        return found if found is not None else reference_e164(digits, self.region, self.international_prefix)

    def fast(self, digits: str) -> tuple[str | None, bool] | None:
        """:meth:`e164` without phonenumbers' parser, or ``None`` when the reading is not a plain one (or not cleaned)."""
        if len(digits) > _MAX_FAST_DIGITS or not (digits.isascii() and digits.lstrip("+").isdigit()):
            return None
        return self._read(digits)

    def written_reads_as(self, clean: str, external_prefix: str, behind: str) -> bool:
        """Whether ``clean`` read as written gives the valid key ``behind`` of ``clean`` without ``external_prefix``.

        True when the external prefix is also the region's national prefix (``0`` in France)
        and nothing else in the written number leads elsewhere (an international prefix, the
        country code): phonenumbers then strips that prefix and finds the same national
        number, valid, hence the same key.  ``canonical_keys`` skips the second reading.
        """
        home = self._home
        international = self.international_prefix
        rest = clean[len(external_prefix) :]
        if len(self._home_regions) > 1:
            # The key may be valid in another region of the code (Jersey's under +44):
            # check what the strip checks against the home region's metadata.
            length = len(rest)
            if home.general(rest) is None or length not in home.lengths or length in home.local_lengths:
                return False
        return (
            home.prefix_text == external_prefix
            and not (clean.startswith(international) and len(clean) > len(international))
            and not clean.startswith(home.country_code_text)
            and home.international_rest(clean) is None
            and len(behind) == len(home.country_code_text) + 1 + len(rest)
            and behind.endswith(rest)
            and behind.startswith(home.country_code_text, 1)
        )

    def _read(self, digits: str) -> tuple[str | None, bool] | None:
        if digits[:1] == "+":
            return self._international(digits[1:])
        international = self.international_prefix
        if digits.startswith(international) and len(digits) > len(international):
            return self._international(digits[len(international) :])
        return self._national(digits)

    def _international(self, digits: str) -> tuple[str | None, bool] | None:
        if len(digits) <= _MIN_NSN:
            return None, False  # not viable, or too short after the "+"
        split = _split_country_code(digits)
        if split is None:
            return None  # no country code: phonenumbers retries without the "+", left to it
        return self._finish(split[0][0], split[0][1], split[1])

    def _national(self, digits: str) -> tuple[str | None, bool] | None:
        if len(digits) < _MIN_NSN:
            return None, False
        home = self._home
        rest = home.international_rest(digits)
        if rest is not None:
            # Written with the region's own international prefix: a country code follows.
            if len(rest) <= _MIN_NSN:
                return None, False
            split = _split_country_code(rest)
            if split is None:
                return None, False  # INVALID_COUNTRY_CODE
            return self._finish(split[0][0], split[0][1], split[1])
        code = home.country_code_text
        if digits.startswith(code):
            # The country code written without "+" or prefix: phonenumbers drops it when
            # that turns a number that did not match the region's pattern into one that
            # does, or when the number was too long with it.
            potential = home.strip_national_prefix(digits[len(code) :])
            if (home.general(digits) is None and home.general(potential) is not None) or home.too_long(digits):
                # Read on with the country code's main region (Canada's numbers with the US's metadata).
                return self._finish(self._home_regions[0], self._home_regions, potential)
        return self._finish(home, self._home_regions, digits)

    def _finish(self, numbering: _Numbering, regions: tuple[_Numbering, ...], national: str) -> tuple[str | None, bool]:
        if len(national) < _MIN_NSN:
            return None, False
        # The national prefix goes when what is left has a possible length (or is too long).
        stripped = numbering.strip_national_prefix(national)
        if stripped is not national:
            length = len(stripped)
            if length not in numbering.local_lengths and (length in numbering.lengths or length > numbering.longest):
                national = stripped
        if len(national) > _MAX_NSN:
            return None, False
        key = f"+{numbering.country_code_text}{national}"
        last = self._last
        if last[0] == key:
            return key, last[1]
        if len(regions) == 1:
            home = regions[0]
            match = home._typed.get(len(national)) or home._typed_for(len(national))
            valid = match(national) is not None
        else:
            valid = _valid(regions, national)
        self._last = (key, valid)
        return key, valid
