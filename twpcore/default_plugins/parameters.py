"""The kernel's own application parameters (guide 6.1, 6.3, 9.1.8 and 10.2)."""

from __future__ import annotations

from twpcore.default_plugins.rules_parameters import RULES_PARAMETERS
from twpcore.hookspecs import hookimpl
from twpcore.parameters import ParameterDefinition as P
from twpcore.teamwork.params import PARAMETERS as TEAMWORK

# Guide 9.1.8: features of the Caller application that can be enabled or disabled.
CALLER_FEATURES = {
    "AuthorizeChat": "may chat (text) with other users",
    "AuthorizeContactFavorite": "may create private contacts",
    "AuthorizeHotKeys": "may call contacts with Ctrl+F1..F11",
    "AuthorizeHotKeysExe": "may call a highlighted number with Ctrl+F12",
    "AuthorizeInterception": "may intercept calls ringing on contacts' devices",
    "AuthorizeNote": "may post a public note",
    "AuthorizeP2pAppSharing": "may share an application from their PC",
    "AuthorizePublicList": "may turn a private contact list into a public one",
    "AuthorizeSimpleRules": "may create, change and delete forward rules",
    "AuthorizeSms": "may send an SMS to a contact's mobile number",
    "AuthorizedCurrentDevice": "may create a new current device",
}
CALLER_EXPERT = {
    "AuthorizedAdvancedSearch": "may use the advanced search",
    "AuthorizedCalendarPresences": "may see contacts' calendar events in contact lists",
    "AuthorizedCreateProfil": "may create a new profile",
    "AuthorizedCustomMessagePresences": "may create custom presence messages",
    "AuthorizedEmailNotification": "may configure e-mail notifications of missed calls and voicemail",
    "AuthorizedExternalChat": "may chat with external parties",
    "AuthorizedMultiChat": "may chat during a conference",
    "AuthorizedSaveChat": "may configure the backup of instant messages",
    "AuthorizedPhoneSupervisionPresences": "may see contacts' phone supervision in contact lists",
    "DisplaySimpleRules": "may see forward rules created on the telephone",
    "AuthorizedForwardOriginAll": "may create forward rules for all callers",
    "AuthorizedForwardOriginExternal": "may create forward rules for external callers",
    "AuthorizedForwardOriginInternal": "may create forward rules for internal callers",
    "AuthorizedForwardPresenceAsbsent": "may create forward rules applied when absent",
    "AuthorizedForwardPresenceBusy": "may create forward rules applied when busy",
    "AuthorizedForwardPresenceCalendar": "may create forward rules driven by the calendar",
    "AuthorizedForwardPresenceOffline": "may create forward rules applied when offline",
    "AuthorizedForwardPresenceOnline": "may create forward rules applied when online",
    "AuthorizedForwardTypeBusy": "may create forward-on-busy rules",
    "AuthorizedForwardTypeImmediate": "may create immediate forward rules",
    "AuthorizedForwardTypeNoAnswer": "may create forward-on-no-answer rules",
}
# Features that cost money or reach outside default to off.
DEFAULT_OFF = {"AuthorizeSms", "AuthorizedExternalChat"}

SERVER = [
    P("AuthMethods", "TWS", "auth methods tried in order, separated by |, e.g. WindowsSecurity|TWS (guide 6.1)", "Server", "methods"),
    P("AuthLdapServer", "", "LDAP server host for the LDAP auth method (guide 6.3)", "Server"),
    P("AuthLdapPort", "389", "LDAP server port for the LDAP auth method (guide 6.3)", "Server", "integer"),
    P("AuthLdapDn", "?", 'DN to bind with; "?" is replaced by the escaped user name (guide 6.3)', "Server"),
]
SYSTEM = [
    P("CallLog-StartCleaningHour", "03:00", "time of day when old call logs are deleted (guide 10.2.1)", "System", "time"),
    P("CallLog-NumberMaxOfStorage", "30", "lines kept per call type (incoming, outgoing, missed) after a day", "System", "integer"),
    P("CallLog-NumberDaysOfStorage", "30", "days call logs are kept", "System", "integer"),
    P("Stats-StartCleaningHour", "03:30", "time of day when old statistics are deleted (guide 10.2.2)", "System", "time"),
    P("Stats-NumberDaysOfStorage", "365", "days statistics are kept", "System", "integer"),
    P("timeSynchronizationDirectories", "02:00", "daily time of directory synchronization (guide 8.2.1)", "System", "time", expert=True),
]


# Guide 9.1.4 and 9.1.7: the voicemail number and the boss / secretary settings name things, they are not switches.
RECEPTION = [
    P("vmNumber", "", "number the Caller's voicemail button calls (guide 9.1.4); empty: no voicemail button", "Caller"),
    P("AuthorizeSupervisionInformation", "", "name of the group of bosses whose calls the user sees and may intercept (guide 9.1.7); "
      "empty: none", "Caller"),
    P("AuthorizeShareRulesGroup", "", "name of the group of bosses whose active forwarding the user sees (guide 9.1.7); empty: none",
      "Caller"),
    P("SupervisionInformationIGroup", "", "intercom group whose directories name the callers of bosses' calls (guide 9.1.7); "
      "empty: the intercom groups the boss and the user share", "Caller", expert=True),
]


@hookimpl
def twp_register_parameters(register):
    for d in SERVER + SYSTEM + RECEPTION + RULES_PARAMETERS + TEAMWORK:  # TEAMWORK: Alerter (9.2.1), chat/notes retention (issue 19)
        register(d)
    for name, what in CALLER_FEATURES.items():
        register(P(name, "No" if name in DEFAULT_OFF else "Yes", f"Yes if the user {what} (guide 9.1.8)", "Caller", "yesno"))
    for name, what in CALLER_EXPERT.items():
        register(P(name, "No" if name in DEFAULT_OFF else "Yes", f"Yes if the user {what} (guide 9.1.8)", "Caller", "yesno", expert=True))
