"""The Wildix pop-up URL: its variables, the per-user key, and what a hit says.

The Wildix WMS start guide (user settings, "Pop-up URL") lets an administrator give each
user a URL "to open on incoming / outgoing calls", with these variables::

    {CALLERNUM}   the caller's number          {CALLERNAME}  the caller's name
    {USERNUM}     the user's number            {USERNAME}    the user's name
    {CALLTYPE}    the call type (incoming / outgoing)
    {TAGS}        the call's tags
    {CALLERNUM:1} a manipulation: the caller's number without its first digit

TWP's pop-up URL names each variable in its query string (``number={CALLERNUM}``...) and
carries a key derived from the link's secret and the user's number, so that a URL seen in
one user's browser cannot report calls of another user.  ``expand`` does what the PBX does
with the URL (the tests use it as the PBX); ``PopupHit.parse`` reads what arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping

import attrs

VARIABLES = ("CALLERNUM", "CALLERNAME", "USERNUM", "USERNAME", "CALLTYPE", "TAGS")
"""The variables of the guide."""
EVENTS = ("ringing", "answer")
"""``event=`` of the URL: which Wildix trigger opened it (ringing / call generation, or answer)."""
DIRECTIONS = {"incoming": "incoming", "outgoing": "outgoing", "inbound": "incoming", "outbound": "outgoing", "in": "incoming", "out": "outgoing"}
"""``{CALLTYPE}`` values taken (the guide says incoming / outgoing; the other spellings are tolerated, case-insensitive)."""
MAX_NUMBER = 64
MAX_TEXT = 200
_TOKEN = re.compile(r"\{([A-Z]+)(?::(\d+))?\}")
_PUNCTUATION = re.compile(r"[\s\-./()]")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,64}$")


def user_key(secret: str, link: str, user_number: str) -> str:
    """The key of ``user_number``'s pop-up URL on ``link``: 32 hex digits of HMAC-SHA256(secret, "link:number")."""
    return hmac.new(secret.encode(), f"{link}:{user_number}".encode(), hashlib.sha256).hexdigest()[:32]


def url_template(base: str, link: str, user_number: str, key: str, event: str = "ringing") -> str:
    """The URL to paste into the user's Wildix pop-up URL field (variables left for the PBX to fill)."""
    query = (f"user={{USERNUM}}&key={key}&number={{CALLERNUM}}&name={{CALLERNAME}}&username={{USERNAME}}"
             f"&type={{CALLTYPE}}&tags={{TAGS}}&event={event}")
    return f"{base.rstrip('/')}/api/v1/wildix/{urllib.parse.quote(link, safe='')}/popup?{query}"


def expand(template: str, values: Mapping[str, str]) -> str:
    """What the PBX does with a pop-up URL template: each ``{VARIABLE}`` replaced by its value (URL-encoded), and
    ``{VARIABLE:n}`` by the value without its first ``n`` characters (the guide: ``{CALLERNUM:1}`` removes the first digit)."""

    def one(match: re.Match[str]) -> str:
        name, cut = match.group(1), match.group(2)
        if name not in VARIABLES:
            return match.group(0)
        value = values.get(name, "")
        if cut:
            value = value[int(cut):]
        return urllib.parse.quote(value, safe="")

    return _TOKEN.sub(one, template)


class PopupError(ValueError):
    """A pop-up URL that cannot be read: what is wrong and how to fix the URL in Wildix."""

    def __init__(self, field: str, detail: str):
        super().__init__(detail)
        self.field = field


def _value(query: Mapping[str, str], name: str, limit: int = MAX_TEXT) -> str:
    value = query.get(name, "").strip()
    if _TOKEN.fullmatch(value):
        return ""  # a variable the PBX left as it is: no value
    return "".join(c for c in value if ord(c) >= 32)[:limit]


@attrs.frozen
class PopupHit:
    """One opening of a user's pop-up URL."""

    user_number: str
    """``{USERNUM}``: the user's device number."""
    direction: str
    """incoming or outgoing, from ``{CALLTYPE}``."""
    number: str | None
    """``{CALLERNUM}`` (or a manipulation of it): the other party; None when the call has no number (anonymous)."""
    caller_name: str = ""
    """``{CALLERNAME}``, as the PBX knows it."""
    user_name: str = ""
    """``{USERNAME}``."""
    tags: str = ""
    """``{TAGS}``."""
    event: str = "ringing"
    """Which trigger opened the URL: ``ringing`` (Ringing / Call generation) or ``answer``."""

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> PopupHit:
        """Read a hit's query; raises ``PopupError`` naming the parameter, the value and the fix."""
        user = _value(query, "user", MAX_NUMBER + 1)
        if not user or not _NUMBER.match(user):
            raise PopupError("user", f"user: expected the user's number ({{USERNUM}}), got {user[:40]!r}; "
                                     "write user={USERNUM} in the Wildix pop-up URL")
        raw_type = _value(query, "type", 40)
        direction = DIRECTIONS.get(raw_type.lower())
        if direction is None:
            raise PopupError("type", f"type: expected incoming or outgoing ({{CALLTYPE}}), got {raw_type!r}; write type={{CALLTYPE}}")
        event = _value(query, "event", 40).lower() or "ringing"
        if event not in EVENTS:
            raise PopupError("event", f"event: expected {' or '.join(EVENTS)}, got {event!r}; write event=ringing in the URL of the "
                                      "Ringing / Call generation trigger and event=answer in the URL of the Answer trigger")
        raw_number = _value(query, "number", MAX_NUMBER + 16)
        number = _PUNCTUATION.sub("", raw_number)
        if number and not _NUMBER.match(number):
            raise PopupError("number", f"number: expected a phone number ({{CALLERNUM}}) of at most {MAX_NUMBER} digits, got {raw_number[:40]!r}")
        return cls(user, direction, number or None, _value(query, "name"), _value(query, "username"), _value(query, "tags"), event)
