"""The 34 ``Authorize*`` switches of the Caller application (guide 9.1.8): which the server enforces, which only a client can.

A switch that governs something the server does (an endpoint, an e-mail, a live event) is
checked where that happens; the table says where, so ``docs/reception.md`` and the test that
walks every switch read the same list.  A switch that governs only what a desktop client
shows (a keyboard shortcut, a button in the chat window) cannot be enforced by a server:
it is returned to clients by ``GET /api/v1/me/features`` and the client applies it.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry


@attrs.frozen
class Switch:
    name: str
    """The parameter, spelled as the guide's parameter list spells it (``AuthorizedCurrentDevice``, not the guide's typo)."""
    enforced: str
    """``server``: the server refuses or withholds; ``client``: only a desktop client can apply it."""
    governs: str
    """What it governs, and for server switches where it is checked."""
    owner: str = "reception"
    """Who enforces a server switch: the feature's module (``reception``, ``sms``, ``directories``, ``mail``, ``presence``, ``teamwork``)."""


SERVER, CLIENT = "server", "client"
FORWARD_SWITCHES = (
    "AuthorizedForwardOriginAll", "AuthorizedForwardOriginExternal", "AuthorizedForwardOriginInternal",
    "AuthorizedForwardPresenceAsbsent", "AuthorizedForwardPresenceBusy", "AuthorizedForwardPresenceCalendar",
    "AuthorizedForwardPresenceOffline", "AuthorizedForwardPresenceOnline", "AuthorizedForwardTypeBusy",
    "AuthorizedForwardTypeImmediate", "AuthorizedForwardTypeNoAnswer",
)

SWITCHES: tuple[Switch, ...] = (
    Switch("AuthorizeChat", SERVER, "one-to-one chat (issue 19 item 6)", "teamwork"),
    Switch("AuthorizeContactFavorite", SERVER, "POST /api/v1/me/contacts: creating private contacts", "directories"),
    Switch("AuthorizeHotKeys", CLIENT, "Ctrl+F1..F11 calls a contact of the Caller's list"),
    Switch("AuthorizeHotKeysExe", CLIENT, "Ctrl+F12 calls the highlighted number"),
    Switch("AuthorizeInterception", SERVER, "POST /api/v1/calls/{call_id}/pickup: intercepting a call ringing on a contact's device"),
    Switch("AuthorizeNote", SERVER, "posting a public note (issue 19 item 6)", "teamwork"),
    Switch("AuthorizeP2pAppSharing", CLIENT, "application sharing started from the user's PC"),
    Switch("AuthorizePublicList", SERVER, "making a contact list public", "directories"),
    Switch("AuthorizeShareRulesGroup", SERVER, "GET /api/v1/me/bosses: the bosses' active forwarding (a group name, guide 9.1.7)"),
    Switch("AuthorizeSimpleRules", SERVER, "creating, changing and deleting forward rules (issue 18)", "presence"),
    Switch("AuthorizeSms", SERVER, "POST /api/v1/sms: sending an SMS", "sms"),
    Switch("AuthorizeSupervisionInformation", SERVER,
           "GET /api/v1/me/bosses and supervision.call events: the bosses' calls (a group name, guide 9.1.7)"),
    Switch("AuthorizedCurrentDevice", CLIENT, "the button creating a new current device in the Caller's profile tab"),
    Switch("AuthorizedAdvancedSearch", CLIENT, "the advanced search form of the Caller (the search API is the same)"),
    Switch("AuthorizedCalendarPresences", SERVER, "contacts' calendar events in contact lists (issue 18)", "presence"),
    Switch("AuthorizedCreateProfil", SERVER, "creating a presence profile (issue 18)", "presence"),
    Switch("AuthorizedCustomMessagePresences", SERVER, "custom presence messages (issue 18)", "presence"),
    Switch("AuthorizedEmailNotification", SERVER, "e-mail alerts of missed calls and voicemail (guide 9.1.5)", "mail"),
    Switch("AuthorizedExternalChat", CLIENT, "chat with external parties through an external collaboration account"),
    Switch("AuthorizedMultiChat", CLIENT, "chat during a conference session in the client"),
    Switch("AuthorizedSaveChat", SERVER, "storing the user's instant messages (issue 19 item 6)", "teamwork"),
    Switch("AuthorizedPhoneSupervisionPresences", SERVER, "contacts' phone supervision in contact lists (issue 18)", "presence"),
    Switch("DisplaySimpleRules", SERVER, "showing the forward rules set on the telephone (issue 18)", "presence"),
    *(Switch(name, SERVER, "creating forward rules of that origin, presence or type (issue 18)", "presence") for name in FORWARD_SWITCHES),
)
"""The guide's 34 switches, in the guide's order."""
GROUP_SWITCHES = frozenset({"AuthorizeSupervisionInformation", "AuthorizeShareRulesGroup"})
"""Switches whose value names a group of bosses rather than Yes / No (guide 9.1.7)."""


def features(conn: sa.Connection, parameters: ParameterRegistry, user_id: int) -> list[dict[str, Any]]:
    """Each switch for this user: its value, where it comes from, and whether the server or only the client enforces it."""
    resolved = parameters.resolve(conn, user_id, [s.name for s in SWITCHES])
    out = []
    for switch in SWITCHES:
        value = resolved[switch.name]
        allowed = bool(value.value.strip()) if switch.name in GROUP_SWITCHES else value.as_bool()
        out.append({"name": switch.name, "allowed": allowed, "value": value.value, "from": value.source,
                    "enforced": switch.enforced, "owner": switch.owner, "governs": switch.governs})
    return out
