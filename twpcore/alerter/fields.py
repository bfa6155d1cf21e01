"""The ``[-Field-]`` values of a ringing call (guide 9.2.1) and their substitution into a template.

Caller fields come from the contact card the directory service attached to the call
(``call.contact``, the directory of lowest priority first, guide 8.2); callee fields
(``[-My...-]``) from the Alerter's user.  A name that is not one of the guide's is looked
up among the contact's custom fields by their label (the guide's ``[-id-]`` advice).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from twpcore.alerter.template import FIELD, Element, Template

NUMBER_FIELDS = {"AssistantPhone": "assistant", "StandardPhone": "other", "WorkPhone": "phone", "MobilePhone": "mobile", "HomePhone": "home"}
"""Number fields and the contact's number type each reads (StandardPhone: the "other" number, our reading of "standard")."""
CALLER_FIELDS = ("Lastname", "Firstname", "DisplayName", "CompanyName", "Picture", *NUMBER_FIELDS, "Email1", "Email2", "Url", "PhoneNumber",
                 "ServerName", "PersonGuid", "Contact2DisplayName", "Contact2PhoneNumber", *(f"Custom{i}" for i in range(10)))
CALLEE_FIELDS = ("MyFirstname", "MyLastname", "MyUsername", "MyCompany", "MyDevice", "MyGsmPhone", "MyEmail", "MyExternalKey", "MyCustom0",
                 "MyCustom1")
GUIDE_FIELDS = CALLER_FIELDS + CALLEE_FIELDS
_SAFE_URL = re.compile(r"^(https?://|mailto:|tel:)", re.I)


def caller_fields(call: dict[str, Any], server_name: str) -> tuple[dict[str, str], list[str]]:
    """The caller's fields and the names of the directories the caller was found in (empty: in none)."""
    contact = call.get("contact") if isinstance(call.get("contact"), dict) else None
    number = str(call.get("remote") or "")
    out = dict.fromkeys(CALLER_FIELDS, "")
    out.update(PhoneNumber=number, ServerName=server_name, DisplayName=str(call.get("remote_name") or number))
    directories: list[str] = []
    if contact:
        out.update(Lastname=str(contact.get("last_name", "")), Firstname=str(contact.get("first_name", "")),
                   CompanyName=str(contact.get("company", "")), Email1=str(contact.get("email", "")), Url=str(contact.get("website", "")),
                   PersonGuid=str(contact.get("id", "")))
        out["DisplayName"] = str(contact.get("name") or out["DisplayName"])
        for name, kind in NUMBER_FIELDS.items():
            out[name] = next((str(n["number"]) for n in contact.get("numbers", []) if n.get("type") == kind), "")
        for custom in contact.get("custom", []):
            field = str(custom.get("field", ""))
            if field.startswith("private") and field[7:].isdigit():
                out[f"Custom{field[7:]}"] = str(custom.get("value", ""))
            if custom.get("label"):
                out.setdefault(str(custom["label"]), str(custom.get("value", "")))
        directories = [str(contact.get("directory", ""))] + [str(s.get("directory", "")) for s in contact.get("merged", [])[1:]]
    return out, [d for d in directories if d]


def callee_fields(user: Any, company: str, device: str) -> dict[str, str]:
    return {"MyFirstname": user.first_name, "MyLastname": user.last_name, "MyUsername": user.login, "MyCompany": company, "MyDevice": device,
            "MyGsmPhone": user.mobile, "MyEmail": user.email, "MyExternalKey": str(user.id), "MyCustom0": "", "MyCustom1": ""}


def _lookup(fields: dict[str, str], name: str) -> str:
    if name in fields:
        return fields[name]
    lowered = name.lower()
    return next((v for k, v in fields.items() if k.lower() == lowered), "")


def substitute(text: str, fields: dict[str, str]) -> str:
    """Replace each ``[-Field-]`` with its value (an unknown field gives the empty text)."""
    return FIELD.sub(lambda m: _lookup(fields, m.group(1)), text)


def substitute_url(text: str, fields: dict[str, str]) -> str | None:
    """Replace the fields of a URL, each value percent-escaped; a field that starts the URL may bring a whole web address.

    Returns None when the result is not an http(s), mailto: or tel: address (a caller's data
    must never turn a button into ``javascript:``).
    """
    def value(m: re.Match[str]) -> str:
        v = _lookup(fields, m.group(1))
        if m.start() == 0 and _SAFE_URL.match(v):
            return v
        return quote(v, safe="")

    out = FIELD.sub(value, text.strip())
    return out if _SAFE_URL.match(out) else None


def shown(element: Element, directories: list[str]) -> bool:
    """``directory=``: shown when the caller is in one of the named directories; ``none``: only when it is in none."""
    if element.directories is None:
        return True
    wanted = {d.lower() for d in element.directories}
    if not directories:
        return "none" in wanted
    return any(d.lower() in wanted for d in directories)


def render(template: Template, fields: dict[str, str], directories: list[str]) -> list[dict[str, Any]]:
    """The template's elements for one call, as the card's JSON items."""
    items: list[dict[str, Any]] = []
    for e in template.elements:
        if not shown(e, directories):
            continue
        item: dict[str, Any] = {"type": e.kind, "x": e.x, "y": e.y}
        if e.kind == "text":
            item["text"] = substitute(e.content, fields)
        elif e.kind == "image":
            item["src"] = substitute_url(e.content, fields)
        else:
            item["label"] = substitute(e.content, fields)
            if e.url is not None:
                item["url"] = substitute_url(e.url, fields)
            if e.exe is not None:
                # Desktop only: the client may run it on the user's PC; the server never runs anything.
                item["exe"] = substitute(e.exe, fields)
                item["runs_on"] = "desktop"
        items.append(item)
    return items
