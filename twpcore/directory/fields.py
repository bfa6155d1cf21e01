"""Directory fields, field options (guide 8.1) and the mapping of a source record to a contact.

A directory maps TWP fields to the source's attribute or column names, one *field spec*
per TWP field: ``"sn"``, ``"sn|u"``, ``"telephoneNumber | h, u,p::9{0}::^[0-9]{4}$"``.
The options after ``|`` are applied in the order written, separated by commas:

- ``a``: the value is a postal address (clients link it to the map service);
- ``h``: hash the value (SHA-256, hex);
- ``i``: hide the value in the Caller's contact card (it stays in the data, for the Alerter);
- ``l``: lower case; ``u``: upper case; ``m``: first letter upper case, the rest lower case;
- ``p::<template>::<regex>``: when the value matches ``regex`` (searched, so anchor it with
  ``^…$``; optional), replace it by ``template`` where ``{0}`` stands for the value.  The
  regex runs to the end of the spec, so a ``p`` with a regex comes last.

A spec that does not parse is refused when the directory is saved, naming the field and
the option (:class:`MappingError`).  Special fields: ``id`` (stable record identity, guide
8.4.2), ``private0``–``private9`` (custom fields whose admin-chosen label is in ``labels``;
a private field labelled ``[VIP]`` is the VIP field of guide 8.2.3) and the red list
fields ``redlist`` / ``redlist_<number type>`` (guide 8.2.4).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
import uuid
from collections import abc
from collections.abc import Iterable
from typing import Any

import attrs

TEXT_FIELDS = (
    "last_name", "first_name", "company", "department", "title", "email",
    "address", "city", "zip", "state", "country", "website", "profile_url", "note",
)
"""Standard text fields of a contact."""
NUMBER_FIELDS = ("phone", "mobile", "home", "fax", "other", "assistant")
"""Number types: office phone, mobile, home, fax, other, assistant (guide 8.2.4's example hides all but the assistant's)."""
PRIVATE_FIELDS = tuple(f"private{i}" for i in range(10))
"""The ten custom fields (guide 8.6.1: Private0 to Private9), labelled by the admin."""
REDLIST_FIELDS = ("redlist", *(f"redlist_{n}" for n in NUMBER_FIELDS))
"""Red list fields: ``redlist`` hides every number of the contact, ``redlist_mobile`` only its mobile numbers."""
ALL_FIELDS = ("id", *TEXT_FIELDS, *NUMBER_FIELDS, *PRIVATE_FIELDS, *REDLIST_FIELDS)
NAME_FIELDS = ("last_name", "first_name", "company")
SEARCH_FIELDS = ("last_name", "first_name", "company", "email")
REDLIST_VALUES = frozenset({"1", "true", "yes", "y", "lr", "rf"})
"""Values of a red list field that hide the numbers (guide 8.2.4); anything else shows them."""
VIP_LABEL = "[VIP]"
OPTION_LETTERS = "ahilmu"
OPTION_HELP = "use a, h, i, l, m, u or p::<template with {0}>::<regex>, separated by commas"
MAX_VALUE = 1000
"""Longest stored field value; longer values are cut."""


class MappingError(ValueError):
    """A field spec or label is not valid; ``field`` names the TWP field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"fields.{field}: {message}")
        self.field = field


# --------------------------------------------------------------------------- text folding

_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "ı": "i", "þ": "th", "ð": "d", "ŀ": "l"})
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case without accents: ``"Élodie Ørsted"`` → ``"elodie orsted"`` (search and sort form)."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold().translate(_SPECIAL))
    return "".join(c for c in text if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded words of a text: ``"Jean-Pierre O'Brien"`` → ``["jean", "pierre", "o", "brien"]``."""
    return _WORD.findall(fold(text))


def search_tokens(data: abc.Mapping[str, str]) -> list[str]:
    """The words a contact is found by: name, company and email words, plus joined names (``obrien``)."""
    out: list[str] = []
    for name in SEARCH_FIELDS:
        value = data.get(name)
        if not value:
            continue
        ws = words(value)
        out += ws
        if name != "email" and len(ws) > 1:
            joined = "".join(ws)
            if len(joined) <= 40:
                out.append(joined)
    return list(dict.fromkeys(out))


def display_name(data: abc.Mapping[str, str]) -> str:
    """``First Last``, else the company."""
    name = " ".join(p for p in (data.get("first_name", ""), data.get("last_name", "")) if p)
    return name or data.get("company", "")


def sort_key(data: abc.Mapping[str, str]) -> str:
    """What results are ordered by within a priority: last name, first name, else company (folded)."""
    name = " ".join(p for p in (data.get("last_name", ""), data.get("first_name", "")) if p) or data.get("company", "")
    return fold(name)[:100]


# --------------------------------------------------------------------------- field specs


@attrs.frozen
class Option:
    """One option of a field spec."""

    letter: str
    template: str = ""
    regex: re.Pattern[str] | None = None

    def apply(self, value: str) -> str:
        if self.letter == "h":
            return hashlib.sha256(value.encode("utf-8")).hexdigest()
        if self.letter == "l":
            return value.lower()
        if self.letter == "u":
            return value.upper()
        if self.letter == "m":
            return value[:1].upper() + value[1:].lower()
        if self.letter == "p":
            if self.regex is not None and not self.regex.search(value):
                return value
            return self.template.replace("{0}", value)
        return value  # a, i: presentation flags


@attrs.frozen
class FieldSpec:
    """A TWP field fed from a source attribute, with options."""

    field: str
    source: str
    options: tuple[Option, ...] = ()

    @property
    def hidden(self) -> bool:
        return any(o.letter == "i" for o in self.options)

    @property
    def address(self) -> bool:
        return any(o.letter == "a" for o in self.options)

    def transform(self, value: str) -> str:
        for option in self.options:
            value = option.apply(value)
        return value


def parse_spec(field: str, text: Any) -> FieldSpec:
    """Parse ``"source|options"``; raise :class:`MappingError` naming the field and the option."""
    if field not in ALL_FIELDS:
        raise MappingError(field, f"unknown TWP field; known fields: {', '.join(ALL_FIELDS)}")
    if not isinstance(text, str):
        raise MappingError(field, f'expected a string such as "sn" or "sn|u", got {json.dumps(text)[:60]}')
    source, bar, rest = text.partition("|")
    source = source.strip()
    if not source:
        raise MappingError(field, f'"{text}" names no source field before "|"; write the source attribute or column name first')
    if any(ord(c) < 32 for c in source):
        raise MappingError(field, "the source field name contains control characters")
    options: list[Option] = []
    rest = rest.strip()
    if bar and not rest:
        raise MappingError(field, f'"{text}": nothing after "|"; {OPTION_HELP}, or remove the "|"')
    pos = 0
    while bar and pos < len(rest):
        while pos < len(rest) and rest[pos] in " \t":
            pos += 1
        if rest.startswith("p::", pos):
            body = rest[pos + 3:]
            comma = body.find(",")
            sep = body.find("::")
            if sep != -1 and (comma == -1 or sep < comma):
                template, regex_text = body[:sep], body[sep + 2:]
                pos = len(rest)
            else:
                template, regex_text = (body, "") if comma == -1 else (body[:comma], "")
                pos = len(rest) if comma == -1 else pos + 3 + comma + 1
            template = template.strip()
            if "{0}" not in template:
                raise MappingError(
                    field, f'option "p::{template}": the template must contain {{0}} (the synchronized value), as in p::9{{0}}::^[0-9]{{4}}$'
                )
            regex = None
            regex_text = regex_text.strip()
            if regex_text:
                try:
                    regex = re.compile(regex_text)
                except re.error as exc:
                    raise MappingError(
                        field, f'option "p": the regular expression {regex_text!r} is not valid ({exc}); fix it or leave it out'
                    ) from None
            options.append(Option("p", template, regex))
            continue
        end = rest.find(",", pos)
        token = (rest[pos:] if end == -1 else rest[pos:end]).strip()
        pos = len(rest) if end == -1 else end + 1
        if not token:
            raise MappingError(field, f'"{text}": an empty option between commas; {OPTION_HELP}')
        letter = "l" if token == "I" else token  # the guide's PDF prints the "l" option as "I"
        if len(letter) != 1 or letter not in OPTION_LETTERS:
            raise MappingError(field, f'option "{token}" is unknown; {OPTION_HELP}')
        options.append(Option(letter))
    return FieldSpec(field, source, tuple(options))


def check_labels(labels: Any) -> dict[str, str]:
    """Check the admin-chosen labels of the private fields: ``{"private0": "Customer code", "private3": "[VIP]"}``."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise MappingError("labels", "expected an object mapping private0-private9 to the names users see")
    out = {}
    for key, value in labels.items():
        if key not in PRIVATE_FIELDS:
            raise MappingError(key, f"labels: only private0 to private9 take a label, got {key!r}")
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise MappingError(key, "labels: expected a non-empty name of at most 100 characters")
        out[key] = value.strip()
    if sum(1 for v in out.values() if v.upper() == VIP_LABEL) > 1:
        raise MappingError("labels", f"only one private field may be labelled {VIP_LABEL} (guide 8.2.3)")
    return out


# --------------------------------------------------------------------------- mapping


@attrs.frozen
class MappedNumber:
    type: str
    number: str
    redlisted: bool = False


@attrs.frozen
class MappedContact:
    """A source record after mapping: what the store keeps and the index reads."""

    source_id: str
    data: dict[str, str]
    """Non-empty text and private fields."""
    numbers: tuple[MappedNumber, ...]
    vip: str = ""
    digest: str = ""

    @property
    def email_key(self) -> str:
        return self.data.get("email", "").strip().lower()


@attrs.frozen
class Ignored:
    """A record the mapping refused, with the reason the sync report shows."""

    source_id: str
    reason: str


def plain(value: Any) -> list[str]:
    """A source value as a list of strings (lists keep their items; bytes decode or go hex)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            out += plain(item)
        return out
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
            if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
                raise UnicodeDecodeError("utf-8", raw, 0, 1, "control characters")
        except UnicodeDecodeError:
            text = str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else raw.hex()
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
    else:
        text = str(value)
    text = text.strip()
    return [text] if text else []


def _unmapped(field: str, text: Any) -> bool:
    """A field set to ``""`` or null: not mapped (in a directory's ``fields``, it drops the connector's default)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        if field not in ALL_FIELDS:
            raise MappingError(field, f"unknown TWP field; known fields: {', '.join(ALL_FIELDS)}")
        return True
    return False


class Mapping:
    """A directory's compiled field mapping and labels; ``apply`` maps one source record."""

    def __init__(self, fields: abc.Mapping[str, Any], labels: abc.Mapping[str, str] | None = None):
        self.specs: dict[str, FieldSpec] = {name: parse_spec(name, text) for name, text in (fields or {}).items()
                                            if not _unmapped(name, text)}
        self.labels = check_labels(dict(labels or {}))
        self.vip_field = next((k for k, v in self.labels.items() if v.upper() == VIP_LABEL), None)
        self.hidden = sorted(n for n, s in self.specs.items() if s.hidden)
        self.address = sorted(n for n, s in self.specs.items() if s.address)

    @classmethod
    def check(cls, fields: Any, labels: Any) -> Mapping:
        if fields is not None and not isinstance(fields, dict):
            raise MappingError("fields", 'expected an object such as {"last_name": "sn|m", "phone": "telephoneNumber"}')
        return cls(fields or {}, labels)

    def to_json(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "address": self.address, "labels": self.labels, "vip_field": self.vip_field}

    def apply(self, record_id: str, fields: abc.Mapping[str, Any]) -> MappedContact | Ignored:
        lower: dict[str, Any] | None = None

        def get(source: str) -> list[str]:
            nonlocal lower
            if source in fields:
                return plain(fields[source])
            if lower is None:
                lower = {str(k).lower(): v for k, v in fields.items()}
            return plain(lower.get(source.lower()))

        data: dict[str, str] = {}
        numbers: list[MappedNumber] = []
        red_all = False
        red: set[str] = set()
        source_id = record_id
        for name, spec in self.specs.items():
            values = get(spec.source)
            if name in NUMBER_FIELDS:
                for v in values:
                    out = spec.transform(v)[:64].strip()
                    if out:
                        numbers.append(MappedNumber(name, out))
                continue
            if not values:
                if name == "id":
                    return Ignored(record_id, f"empty ID field ({spec.source})")
                continue
            value = spec.transform(values[0])[:MAX_VALUE]
            if name == "id":
                source_id = value
            elif name.startswith("redlist"):
                if value.strip().lower() in REDLIST_VALUES:
                    if name == "redlist":
                        red_all = True
                    else:
                        red.add(name[len("redlist_"):])
            elif value:
                data[name] = value
        if red_all or red:
            numbers = [attrs.evolve(n, redlisted=True) if red_all or n.type in red else n for n in numbers]
        if not numbers and not any(data.get(f) for f in NAME_FIELDS):
            return Ignored(record_id, "no name and no number")
        vip = data.get(self.vip_field, "") if self.vip_field else ""
        digest = hashlib.sha1(json.dumps([data, [attrs.astuple(n) for n in numbers]], sort_keys=True).encode()).hexdigest()
        return MappedContact(source_id[:512], data, tuple(numbers), vip, digest)


def contact_from_fields(values: abc.Mapping[str, Any], labels: abc.Mapping[str, str] | None = None) -> MappedContact | Ignored:
    """A contact typed by a user (private contacts): TWP field names, numbers as strings or lists."""
    unknown = [k for k in values if k not in ALL_FIELDS or k == "id" or k.startswith("redlist")]
    if unknown:
        raise MappingError(unknown[0], f"unknown contact field; fields: {', '.join(TEXT_FIELDS + NUMBER_FIELDS + PRIVATE_FIELDS)}")
    mapping = Mapping({k: k for k in values}, labels)
    return mapping.apply("new", values)


def identity_fields(names: Iterable[str]) -> dict[str, str]:
    """The mapping used when a directory defines none: every source field named like a TWP field."""
    wanted = {f.lower(): f for f in ALL_FIELDS if not f.startswith("redlist")}
    return {wanted[n.lower()]: n for n in names if n.lower() in wanted}


@attrs.frozen
class SkippedRecord:
    """Yield this from ``DirectoryConnector.records()`` for an entry that could not be read.

    The sync counts it as ignored and names it in its report (``id`` and ``reason``), like
    a record the mapping refuses: ``SkippedRecord("row 12", "7 columns, the header has 9")``.
    """

    id: str
    """Where the entry is in the source (row number, DN, item id)."""
    reason: str
    """Why it was skipped, for the admin reading the sync report."""


def user_value(user: Any, key: str) -> Any:
    """A field (``email``, ``login``…) of the user given to ``DirectoryConnector.records(user)``.

    The kernel passes a mapping (a row of the users table); tests and other callers may pass
    an object with attributes.  ``None`` when the field is missing.
    """
    if isinstance(user, abc.Mapping):
        return user.get(key)
    return getattr(user, key, None)
