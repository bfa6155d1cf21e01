"""Entry point of the ``wildix`` plugin: the ``wildix`` PBX driver and the pop-up URL routes.

Configured as::

    [pbx.links.wildix]
    driver = "wildix"
    company = "ACME"
    domain = "Paris"
    secret = { env = "TWP_WILDIX_SECRET" }

``GET /api/v1/wildix/<link>/popup?user={USERNUM}&key=...&number={CALLERNUM}...`` is the URL
each Wildix user's pop-up opens (public: the per-user key authenticates it);
``GET /api/v1/wildix/<link>/popup-urls`` gives a super user the URL of each user to paste
into Wildix.  See the README for the PBX-side set-up.
"""

from __future__ import annotations

import hmac
import html
import logging

from aiohttp import web

from twp_wildix.driver import WildixDriver
from twp_wildix.popup import PopupError, PopupHit, url_template
from twpcore.plugin_api import ApiError, Kind, PbxDriver, PluginContext, Register, RegisterRoute, RepeatLimiter, context_of, hookimpl, principal_of

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""

POPUP = "/api/v1/wildix/{link}/popup"
URLS = "/api/v1/wildix/{link}/popup-urls"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(WildixDriver)


@hookimpl
def twp_register_routes(register: RegisterRoute) -> None:
    # The PBX user's browser opens the pop-up URL without a TWP login: the per-user key is checked instead.
    register("GET", POPUP, popup, access="public", summary="A Wildix pop-up URL hit: a call ringing, placed or answered at a user's device (?key=)",
             query=(("user", "string", "{USERNUM}: the user's number"), ("key", "string", "the user's pop-up key"),
                    ("number", "string", "{CALLERNUM}: the other party"), ("name", "string", "{CALLERNAME}"),
                    ("username", "string", "{USERNAME}"), ("type", "string", "{CALLTYPE}: incoming or outgoing"),
                    ("tags", "string", "{TAGS}"), ("event", "string", "ringing (default) or answer")),
             errors=(409,))
    register("GET", URLS, popup_urls, access="admin", summary="The pop-up URL of each user of a Wildix link, to paste into Wildix (super users)",
             query=(("base", "string", "TWP's address as the users' browsers reach it (default: this request's)"),))


@hookimpl
def twp_startup(context: PluginContext) -> None:
    context.state = RepeatLimiter(context.logger)


def _link(request: web.Request) -> tuple[PluginContext, WildixDriver]:
    context = context_of(request)
    name = request.match_info["link"]
    driver = context.instance(Kind.PBX_DRIVER, name)
    if not isinstance(driver, WildixDriver):
        raise ApiError(404, "not_found", f"no Wildix PBX link named {name[:60]!r}; the URL names a [pbx.links.<name>] with driver = \"wildix\"")
    return context, driver


def _refuse(context: PluginContext, driver: WildixDriver, request: web.Request, why: str, error: ApiError) -> ApiError:
    driver.refused += 1
    limiter = context.state if isinstance(context.state, RepeatLimiter) else RepeatLimiter(context.logger)
    limiter.log(logging.WARNING, f"wildix link {driver.name}: pop-up refused", "Wildix link %s: pop-up from %s refused: %s",
                driver.name, request.remote or "?", why)
    return error


async def popup(request: web.Request) -> web.Response:
    """``GET /api/v1/wildix/<link>/popup``: one opening of a user's pop-up URL."""
    context, driver = _link(request)
    user = request.query.get("user", "")
    key = request.query.get("key", "")
    if not key or not user or not hmac.compare_digest(key.encode(), driver.key_of(user[:80]).encode()):
        raise _refuse(context, driver, request, f"wrong or missing key for user {user[:20]!r}",
                      ApiError(403, "forbidden", f"the key of this pop-up URL is not the one of user {user[:20]!r} on link {driver.name}; "
                                                 "copy the user's URL again from GET /api/v1/wildix/<link>/popup-urls"))
    try:
        hit = PopupHit.parse(request.query)
    except PopupError as exc:
        raise _refuse(context, driver, request, str(exc), ApiError(400, "bad_request", str(exc), exc.field)) from None
    if hit.user_number not in driver.monitored:
        raise _refuse(context, driver, request, f"device {hit.user_number} not supervised",
                      ApiError(409, "not_supervised", f"device {hit.user_number} is not supervised on link {driver.name}: give the user "
                                                      "this device in TWP, in the link's domain"))
    call_id = driver.report(hit)
    verb = {"incoming": "Call from", "outgoing": "Call to"}[hit.direction]
    who = " ".join(x for x in (hit.caller_name, f"({hit.number})" if hit.number else "(no number)") if x)
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>TWP</title></head><body>"
            f"<p>{html.escape(verb)} {html.escape(who)}{' — answered' if hit.event == 'answer' else ''}</p>"
            f"<p><small>{html.escape(hit.user_name or hit.user_number)} · call {html.escape(call_id)}</small></p></body></html>")
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


async def popup_urls(request: web.Request) -> web.Response:
    """``GET /api/v1/wildix/<link>/popup-urls``: each supervised user's URLs, one per Wildix trigger."""
    who = principal_of(request)
    if not who.super_user:
        raise ApiError(403, "forbidden", "the pop-up URLs carry each user's key: super users only")
    _, driver = _link(request)
    base = request.query.get("base") or str(request.url.origin())
    if not base.startswith(("http://", "https://")) or any(ord(c) < 33 for c in base):
        raise ApiError(400, "bad_request", f"base: expected TWP's address such as https://twp.example.com, got {base[:60]!r}", "base")
    items = [{"user_number": number, "ringing": url_template(base, driver.name, number, driver.key_of(number), "ringing"),
              "answer": url_template(base, driver.name, number, driver.key_of(number), "answer")} for number in sorted(driver.monitored)]
    return web.json_response({"link": driver.name, "items": items, "hits": driver.hits, "refused": driver.refused})
