"""Parameters of the Rules application (admin guide 9.6.2) and of calendar presence (9.1.3): the forward rules and presence read them."""

from __future__ import annotations

from twpcore.parameters import ParameterDefinition as P

RULES_PARAMETERS = [
    P("CIRCULARLEVEL", "2", "forwards followed before a loop is refused: 0 no check, 1 A may not forward to A, 2 B may not forward to A "
      "which forwards to B (guide 9.6.2); checked when a rule is saved and when a call arrives", "Rules", "integer"),
    P("CreateOnlyRUL", "No", "Yes: users only have advanced rules; nothing is forwarded in the PBX (guide 9.6.2)", "Rules", "yesno"),
    P("EMERGENCYNUMBER", "", "number a forwarded call goes to when the forward target does not answer, with TRANSFERVERIFICATION "
      "(guide 9.6.2)", "Rules"),
    P("EMERGENCYNUMBERCALLTIMES", "1", "times the emergency number is tried when forwarding to it fails (guide 9.6.2)", "Rules", "integer"),
    P("IsUserAuthorizedToCreateWithAdminRules", "Yes", "Yes if a user may create rules while an administrator imposes rules on them "
      "(guide 9.6.2)", "Rules", "yesno"),
    P("TRANSFERVERIFICATION", "No", "Yes: TWP checks that a call forwarded by an advanced rule is answered, else sends it to "
      "EMERGENCYNUMBER (guide 9.6.2)", "Rules", "yesno"),
    P("WAITTIMENOREPLY", "15", "seconds an advanced rule lets a call ring before forwarding on no answer (guide 9.6.2)", "Rules", "integer"),
    P("WAITTIMENOREPLYPBX", "15", "seconds the PBX lets a call ring before a simple no-answer forward; copy the PBX's value "
      "(guide 9.6.2)", "Rules", "integer"),
    P("DisplayCalendarSummary", "Yes", "Yes if the user sees the subject and place of colleagues' calendar events (guide 9.1.3)", "System",
      "yesno"),
    P("DisplayCalendarPrivate", "No", "Yes if the user sees colleagues' private calendar events as such; No: a private event shows as "
      "busy, without details (guide 9.1.3)", "System", "yesno"),
]
"""Each resolved per user like every parameter (user, group, domain, default)."""
