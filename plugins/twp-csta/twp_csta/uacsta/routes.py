"""HTTP routes of a SIP-phone vendor plugin: the action-URL receiver (public, authenticated per link) and key presses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from twp_csta.errors import CstaBaseError
from twp_csta.uacsta.phone import SipPhoneDriver
from twpcore.plugin_api import ApiError, Kind, RegisterRoute, context_of, principal_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _driver(request: web.Request, cls: type[SipPhoneDriver]) -> SipPhoneDriver:
    link = request.match_info["link"]
    driver = context_of(request).instance(Kind.PBX_DRIVER, link)
    if not isinstance(driver, cls):
        raise ApiError(404, "not_found", f"no {cls.vendor} PBX link named {link[:64]!r}; check the link name in the phone's action URL")
    return driver


def action_url_handler(cls: type[SipPhoneDriver]) -> Handler:
    async def action_url(request: web.Request) -> web.Response:
        driver = _driver(request, cls)
        status, body = driver.actions.receive(request.match_info["event"], request.query, request.remote or "")
        return web.json_response(body, status=status)

    action_url.__doc__ = f"``GET /api/v1/{cls.vendor}/{{link}}/{{event}}``: an action URL sent by a {cls.vendor} phone."
    return action_url


def keys_handler(cls: type[SipPhoneDriver]) -> Handler:
    async def keys(request: web.Request) -> web.Response:
        # A vendor link does not tell the plugin its company, so an admin limited to some companies could press keys on
        # another company's phones: like the Wildix pop-up URLs, this is for super users (checked before the link is named).
        if not principal_of(request).super_user:
            raise ApiError(403, "forbidden", f"pressing keys on {cls.vendor} phones by remote control is for super users; ask the operator")
        driver = _driver(request, cls)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "bad_request", 'expected a JSON body {"device": "201", "keys": "F1;ENTER"}') from None
        device, keys_ = (body.get("device"), body.get("keys")) if isinstance(body, dict) else (None, None)
        if not isinstance(device, str) or not isinstance(keys_, str):
            field = "device" if not isinstance(device, str) else "keys"
            raise ApiError(400, "bad_request", 'expected {"device": "<number>", "keys": "<key>[;<key>...]"}', field)
        try:
            await driver.press_keys(device, keys_)
        except ValueError as exc:
            raise ApiError(400, "bad_request", str(exc), "keys") from None
        except CstaBaseError as exc:
            raise ApiError(exc.http_status or 502, "phone_error", str(exc)) from None
        return web.json_response({"device": device, "keys": keys_})

    return keys


KEYS_BODY = {
    "type": "object", "required": ["device", "keys"],
    "properties": {"device": {"type": "string", "description": "number of the device whose phone gets the keys"},
                   "keys": {"type": "string", "description": 'key names separated by ";": "F1;ENTER" (Snom), "OK" (Yealink)'}},
}


def register_phone_routes(register: RegisterRoute, cls: type[SipPhoneDriver]) -> None:
    """Register the action-URL receiver and the key-press route of vendor driver ``cls``."""
    base = f"/api/v1/{cls.vendor}/{{link}}"
    # Phones have no TWP login: the link's action_url_secret (?key=) and the phone's address authenticate them.
    register("GET", base + "/{event}", action_url_handler(cls), access="public",
             summary=f"An action URL sent by a {cls.vendor} phone (?key=&device=&remote=&local=&call_id=)", errors=(400, 403, 404, 409))
    register("POST", base + "/keys", keys_handler(cls), access="admin",
             summary=f"Press keys on a {cls.vendor} phone by HTTP remote control (super users)", body=KEYS_BODY, errors=(400, 403, 404, 502))
