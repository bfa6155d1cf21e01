"""HTTP endpoints: chat, notes, notifications and the Alerter (issue 19).

Users chat (``/api/v1/chat/...``, user guide 2.6), write notes and notifications and read
the event journal (``/api/v1/journal...``, ``/api/v1/notifications/...``, user guide 4.1),
and read their Alerter settings and ringing cards (``/api/v1/me/alerter``); admins keep
the Alerter XML templates of their companies (``/api/v1/alerter/templates``, guide 9.2.1).
Live delivery is on ``/api/v1/events``: ``chat.message``, ``chat.read``,
``notification.received``, ``alerter.card`` and ``alerter.closed``, to the users concerned only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twpcore.alerter import AlerterService
from twpcore.http.core import KERNEL, Route, path_int, principal, query_int, read_json, service_call
from twpcore.teamwork import TeamworkError, TeamworkService

MAX_ID = 2**31 - 1
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _teamwork(request: web.Request) -> TeamworkService:
    return request.app[KERNEL].teamwork


def _alerter(request: web.Request) -> AlerterService:
    return request.app[KERNEL].alerter


_call = service_call(TeamworkError)


def _limit(request: web.Request, default: int = 50) -> int:
    return query_int(request, "limit", default, lo=1, hi=500)


def _id_query(request: web.Request, name: str) -> int | None:
    return query_int(request, name, None, lo=1, hi=MAX_ID)


# -- chat ------------------------------------------------------------------------------------
async def send_message(request: web.Request) -> web.Response:
    """Send an instant message to a user of your company (user guide 2.6)."""
    data = await read_json(request)
    message = await _call(_teamwork(request).send(principal(request), data["to"], data["text"]))
    return web.json_response(message, status=201)


async def conversation(request: web.Request) -> web.Response:
    other = _id_query(request, "with")
    assert other is not None  # required: checked against the route's query declaration
    return web.json_response(await _call(_teamwork(request).history(principal(request), other, _id_query(request, "before"), _limit(request))))


async def unread(request: web.Request) -> web.Response:
    return web.json_response(await _call(_teamwork(request).unread(principal(request), _limit(request, 100))))


async def conversations(request: web.Request) -> web.Response:
    return web.json_response(await _call(_teamwork(request).conversations(principal(request))))


async def mark_read(request: web.Request) -> web.Response:
    data = await read_json(request)
    return web.json_response(await _call(_teamwork(request).mark_read(principal(request), data["with"], data.get("up_to"))))


# -- the event journal -----------------------------------------------------------------------
async def post_entry(request: web.Request) -> web.Response:
    data = await read_json(request)
    return web.json_response(await _call(_teamwork(request).post(principal(request), data)), status=201)


async def delete_entry(request: web.Request) -> web.Response:
    await _call(_teamwork(request).delete(principal(request), path_int(request)))
    return web.Response(status=204)


async def journal(request: web.Request) -> web.Response:
    subject: dict[str, Any] = {k: _id_query(request, k) for k in ("user_id", "contact_id", "call_log_id")}
    subject["number"] = request.query.get("number") or None
    calls = request.query.get("calls", "true") == "true"
    return web.json_response(await _call(_teamwork(request).journal(principal(request), subject, calls, _limit(request))))


async def received(request: web.Request) -> web.Response:
    return web.json_response(await _call(_teamwork(request).received(principal(request), _id_query(request, "before"), _limit(request))))


async def general(request: web.Request) -> web.Response:
    return web.json_response(await _call(_teamwork(request).general(principal(request), _limit(request))))


# -- the Alerter -----------------------------------------------------------------------------
async def my_alerter(request: web.Request) -> web.Response:
    return web.json_response(await _call(_alerter(request).mine(principal(request))))


async def list_templates(request: web.Request) -> web.Response:
    return web.json_response(await _call(_alerter(request).templates(principal(request), _id_query(request, "company_id"))))


async def create_template(request: web.Request) -> web.Response:
    data = await read_json(request)
    return web.json_response(await _call(_alerter(request).create(principal(request), data)), status=201)


async def check_template(request: web.Request) -> web.Response:
    """Check a template without storing it: its VIP flag and fields, or a 422 listing each problem with its line."""
    from twpcore.alerter.fields import GUIDE_FIELDS

    data = await read_json(request)
    template = await _call(_checked(data["xml"]))
    used = template.fields()
    return web.json_response({"valid": True, "vip": template.vip, "elements": len(template.elements), "fields": sorted(used),
                              "custom_fields": sorted(n for n in used if n not in GUIDE_FIELDS)})


async def _checked(xml: str) -> Any:
    return AlerterService.check(xml)


async def get_template(request: web.Request) -> web.Response:
    return web.json_response(await _call(_alerter(request).template(principal(request), path_int(request))))


async def replace_template(request: web.Request) -> web.Response:
    ident = path_int(request)  # the path first: a bad id is named even when the body is bad too
    data = await read_json(request)
    return web.json_response(await _call(_alerter(request).replace(principal(request), ident, data["xml"])))


async def delete_template(request: web.Request) -> web.Response:
    await _call(_alerter(request).delete(principal(request), path_int(request)))
    return web.Response(status=204)


TEXT = {"type": "string", "minLength": 1, "maxLength": 4000, "pattern": r"\S"}
MESSAGE_BODY = {"type": "object", "required": ["to", "text"], "additionalProperties": False, "properties": {
    "to": {**ID, "description": "the user id of the recipient, a user of your company you may see"},
    "text": {**TEXT, "description": "the message (at most 4000 characters)"}}}
READ_BODY = {"type": "object", "required": ["with"], "additionalProperties": False, "properties": {
    "with": {**ID, "description": "the user whose messages you have read"},
    "up_to": {**ID, "description": "the last message read (default: all of that user's messages)"}}}
ENTRY_BODY = {"type": "object", "required": ["text"], "additionalProperties": False, "properties": {
    "text": {**TEXT, "description": "the note or notification"},
    "audience": {"type": "string", "enum": ["me", "user", "all"], "default": "me",
                 "description": "me: a personal note (only you read it); user: a custom notification to user_id; all: a general notification"},
    "user_id": {**ID, "description": "the TWP user the note is about, or the recipient of a custom notification"},
    "contact_id": {**ID, "description": "a directory contact the note is about (from a directory search)"},
    "number": {"type": "string", "minLength": 1, "maxLength": 64, "description": "a phone number the note is about"},
    "call_log_id": {**ID, "description": "one call of your call log: the note is that call's comment"}}}
TEMPLATE_BODY = {"type": "object", "required": ["company_id", "name", "xml"], "additionalProperties": False, "properties": {
    "company_id": {**ID, "description": "the company whose users use the template", "x-twp-ref": "companies"},
    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S", "description": "the name users' AlerterXml parameter gives"},
    "xml": {"type": "string", "minLength": 1, "maxLength": 64000, "description": "the template: <alerter vip=...> with <text>, <image>, <button>"}}}
XML_BODY = {"type": "object", "required": ["xml"], "additionalProperties": False, "properties": {
    "xml": {"type": "string", "minLength": 1, "maxLength": 64000, "description": "the template: <alerter vip=...> with <text>, <image>, <button>"}}}
SUBJECT_RULE = "a personal note and a journal name exactly one of user_id, contact_id, number, call_log_id"
ENTRY_RULES = (SUBJECT_RULE, "a custom notification (audience user) names user_id only, another user than you",
               "a general notification (audience all) names no subject")
TEMPLATE_RULE = "xml is a well-formed Alerter template (docs/teamwork.md): 422 listing each problem with its line otherwise"
PAGE = (("limit", "integer", "page size (1-500)", {"minimum": 1, "maximum": 500}),)
BEFORE = (("before", "integer", "only messages older than this id (the previous page's next_before)", {"minimum": 1, "maximum": MAX_ID}),)


def teamwork_routes() -> list[Route]:
    tag, alerter = "teamwork", "alerter"
    return [
        Route("POST", "/api/v1/chat/messages", send_message, "user", "Send an instant message to a user of your company", tag,
              body=MESSAGE_BODY, status=201, errors=(404, 409), rules=("to is another user than you",)),
        Route("GET", "/api/v1/chat/messages", conversation, "user", "The conversation with one user, newest first", tag, errors=(404,),
              query=(("with", "integer", "the other user's id", {"minimum": 1, "maximum": MAX_ID, "required": True}), *BEFORE, *PAGE)),
        Route("GET", "/api/v1/chat/unread", unread, "user", "Messages received and not read yet, oldest first", tag, query=PAGE),
        Route("GET", "/api/v1/chat/conversations", conversations, "user", "Your correspondents, with the last message and the unread count", tag),
        Route("POST", "/api/v1/chat/read", mark_read, "user", "Mark a user's messages as read (the sender receives chat.read)", tag,
              body=READ_BODY, errors=(404,)),
        Route("POST", "/api/v1/journal/entries", post_entry, "user", "Write a personal note, or send a custom or general notification", tag,
              body=ENTRY_BODY, status=201, errors=(404, 409), rules=ENTRY_RULES),
        Route("DELETE", "/api/v1/journal/entries/{id}", delete_entry, "user", "Delete one of your notes or notifications", tag, status=204),
        Route("GET", "/api/v1/journal", journal, "user", "The event journal of a contact or a call: notes, notifications and calls", tag,
              errors=(404,), rules=(SUBJECT_RULE,),
              query=(("user_id", "integer", "a TWP user", {"minimum": 1, "maximum": MAX_ID}),
                     ("contact_id", "integer", "a directory contact", {"minimum": 1, "maximum": MAX_ID}),
                     ("number", "string", "a phone number", {"minLength": 1, "maxLength": 64}),
                     ("call_log_id", "integer", "one call of your call log", {"minimum": 1, "maximum": MAX_ID}),
                     ("calls", "boolean", "false hides the calls"), *PAGE)),
        Route("GET", "/api/v1/notifications/received", received, "user", "Notifications other users sent you, newest first", tag,
              query=(*BEFORE, *PAGE)),
        Route("GET", "/api/v1/notifications/general", general, "user", "The general notifications of your company, newest first", tag,
              query=PAGE),
        Route("GET", "/api/v1/me/alerter", my_alerter, "user", "Your Alerter settings and the cards of the calls ringing now", alerter),
        Route("GET", "/api/v1/alerter/templates", list_templates, "admin", "The Alerter XML templates of the companies you manage", alerter,
              query=(("company_id", "integer", "only this company", {"minimum": 1, "maximum": MAX_ID}),)),
        Route("POST", "/api/v1/alerter/templates", create_template, "admin", "Upload an Alerter XML template (checked first)", alerter,
              body=TEMPLATE_BODY, status=201, errors=(409, 422), rules=(TEMPLATE_RULE,)),
        Route("POST", "/api/v1/alerter/templates/check", check_template, "admin", "Check an Alerter XML template without storing it", alerter,
              body=XML_BODY, errors=(422,), rules=(TEMPLATE_RULE,)),
        Route("GET", "/api/v1/alerter/templates/{id}", get_template, "admin", "One Alerter XML template", alerter),
        Route("PUT", "/api/v1/alerter/templates/{id}", replace_template, "admin", "Replace an Alerter template's XML (checked first)", alerter,
              body=XML_BODY, errors=(422,), rules=(TEMPLATE_RULE,)),
        Route("DELETE", "/api/v1/alerter/templates/{id}", delete_template, "admin", "Delete an Alerter XML template", alerter, status=204),
    ]
