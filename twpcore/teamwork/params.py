"""The parameters of the Alerter (guide 9.2.1) and of the teamwork retention, registered by the kernel's default plugin."""

from __future__ import annotations

from twpcore.parameters import ParameterDefinition as P

ALERTER = [
    P("AlerterMode", "XML", "XML: the caller's card from the AlerterXml template; URL: the page of AlerterUrl (guide 9.2.1)", "Alerter",
      "choice", choices=("XML", "URL")),
    P("AlerterXml", "", "name of the Alerter XML template (uploaded to /api/v1/alerter/templates); empty: the built-in card (guide 9.2.1)",
      "Alerter"),
    P("AlerterUrl", "", "web page shown by the Alerter in URL mode; [-Field-] markers are replaced, URL-escaped (guide 9.2.1)", "Alerter"),
    P("AlerterWidth", "400", "width of the Alerter window in pixels (guide 9.2.1)", "Alerter", "integer"),
    P("AlerterHeight", "250", "height of the Alerter window in pixels (guide 9.2.1)", "Alerter", "integer"),
    P("AlerterVipColor", "#F5C542", "background colour of the Alerter for a VIP caller (#RRGGBB); a TWP addition: the guide leaves it to "
      "the Caller's preferences", "Alerter"),
]
RETENTION = [
    P("Chat-NumberDaysOfStorage", "90", "days instant messages are kept; 0: kept for ever", "System", "integer"),
    P("Notification-NumberDaysOfStorage", "365", "days notes and notifications of the event journal are kept; 0: kept for ever",
      "System", "integer"),
    P("Teamwork-StartCleaningHour", "03:45", "time of day when old instant messages, notes and notifications are deleted", "System", "time"),
]
PARAMETERS = ALERTER + RETENTION
