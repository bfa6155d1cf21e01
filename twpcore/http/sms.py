"""SMS endpoints (guide 9.1.9): send, follow one's own messages, and the admins' outbox view.

``POST /api/v1/sms`` only queues: it answers ``202`` with the message in status
``queued`` (or ``200`` with the first message when the same ``Idempotency-Key`` comes
again), and the outbox dispatcher sends it.  Status changes also go out as ``sms.<status>``
events on ``/api/v1/events``.
"""

from __future__ import annotations

from aiohttp import web

from twpcore.http.core import KERNEL, Route, bad_request, path_int, principal, query_int, read_json, service_call
from twpcore.sms import STATUSES, SmsError, SmsService


def _service(request: web.Request) -> SmsService:
    return request.app[KERNEL].sms


_call = service_call(SmsError)


def _status(request: web.Request) -> str | None:
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise bad_request(f'query parameter status: expected one of {", ".join(STATUSES)}, got "{status}"', "status")
    return status


async def send_sms(request: web.Request) -> web.Response:
    """Queue an SMS to a number or to a TWP user's mobile."""
    who = principal(request)
    data = await read_json(request)
    try:
        message, created = await _service(request).submit(who, data, request.headers.get("Idempotency-Key"))
    except SmsError as exc:
        # Answered here rather than raised: the 429 carries a Retry-After header.
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return web.json_response({"error": exc.error, "detail": exc.detail, "field": exc.field}, status=exc.status, headers=headers)
    return web.json_response(message, status=202 if created else 200)


async def my_sms(request: web.Request) -> web.Response:
    who = principal(request)
    out = await _call(_service(request).messages(who, status=_status(request), limit=query_int(request, "limit", 50, lo=1, hi=500),
                                                  offset=query_int(request, "offset", 0)))
    return web.json_response(out)


async def one_sms(request: web.Request) -> web.Response:
    return web.json_response(await _call(_service(request).get(principal(request), path_int(request))))


async def cancel_sms(request: web.Request) -> web.Response:
    return web.json_response(await _call(_service(request).cancel(principal(request), path_int(request))))


async def retry_sms(request: web.Request) -> web.Response:
    return web.json_response(await _call(_service(request).retry(principal(request), path_int(request))))


async def outbox(request: web.Request) -> web.Response:
    """Admins: the outbox of the companies they manage, newest first."""
    who = principal(request)
    filters = {name: query_int(request, name) for name in ("company_id", "domain_id", "user_id")}
    out = await _call(_service(request).messages(who, status=_status(request), limit=query_int(request, "limit", 50, lo=1, hi=500),
                                                  offset=query_int(request, "offset", 0), **filters))
    return web.json_response(out)


SEND_BODY = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "oneOf": [{"required": ["number"]}, {"required": ["user_id"]}, {"required": ["contact"]}],  # exactly one recipient
    "properties": {
        "text": {"type": "string", "pattern": r"\S", "description": "the message; split in parts or refused as the domain's providers allow"},
        "number": {
            "type": "string",
            "description": "a mobile number, national (read with the region of your dialing plan) or with + and the country code",
        },
        "user_id": {"type": "integer", "description": "a TWP user of your company: the SMS goes to that user's mobile"},
        "contact": {"type": "integer", "description": "a directory contact id (from a directory search): its mobile number"},
    },
}
PAGING = (("limit", "integer", "page size (1-500)", {"minimum": 1, "maximum": 500}), ("offset", "integer", "items to skip"),
          ("status", "string", "queued, sending, sent, delivered or failed", {"enum": list(STATUSES)}))


def sms_routes() -> list[Route]:
    # /api/v1/sms/outbox before /api/v1/sms/{id}: aiohttp matches in this order.
    return [
        Route(
            "POST",
            "/api/v1/sms",
            send_sms,
            "user",
            "Send an SMS (queued; header Idempotency-Key makes a retry safe)",
            "sms",
            body=SEND_BODY,
            status=202,
            errors=(404, 503),  # 404: no such recipient user or contact; 503: SMS sending is off
        ),
        Route("GET", "/api/v1/sms", my_sms, "user", "The caller's SMS, newest first", "sms", query=PAGING),
        Route(
            "GET",
            "/api/v1/sms/outbox",
            outbox,
            "admin",
            "The SMS outbox of the companies the admin manages",
            "sms",
            query=(
                *PAGING,
                ("company_id", "integer", "only this company"),
                ("domain_id", "integer", "only this domain"),
                ("user_id", "integer", "only this sender"),
            ),
        ),
        Route("GET", "/api/v1/sms/{id}", one_sms, "any", "One SMS: its sender, or an admin of its company", "sms"),
        Route("POST", "/api/v1/sms/{id}/cancel", cancel_sms, "any", "Cancel a queued SMS (its sender, or an admin of its company)", "sms"),
        Route("POST", "/api/v1/sms/{id}/retry", retry_sms, "admin", "Queue a failed SMS again", "sms"),
    ]
