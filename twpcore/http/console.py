"""The web console's pages and packaged assets (``twpcore/web``): login, admin console, Caller page, API explorer.

The pages are static HTML shells; their scripts talk to the same JSON API and WebSocket as any
integrator (docs/architecture.md, "The web console").  Nothing here reads the store.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

WEB = Path(__file__).resolve().parent.parent / "web"
STATIC = WEB / "static"
LANGUAGES = ("en", "fr")
PAGES = {"/": "login.html", "/admin": "admin.html", "/app": "app.html", "/docs": "docs.html"}
"""Console path -> the HTML shell in ``twpcore/web/pages``."""
ASSET_PREFIX = "/console/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}


def page_language(accept_language: str) -> str:
    """The first language of ``Accept-Language`` the console speaks (``fr-FR,fr;q=0.9`` -> ``fr``); English otherwise."""
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        weighted.append((-q, i, tag.strip().lower()[:2]))
    for _, _, lang in sorted(weighted):
        if lang in LANGUAGES:
            return lang
    return "en"


def wants_html(request: web.Request) -> bool:
    """A browser asks for HTML; curl and API clients (``*/*``, ``application/json``) keep the JSON index at ``/``."""
    return "text/html" in request.headers.get("Accept", "")


def render_page(name: str, request: web.Request) -> web.Response:
    html = (WEB / "pages" / name).read_text(encoding="utf-8")
    html = html.replace("{{lang}}", page_language(request.headers.get("Accept-Language", "")))
    resp = web.Response(text=html, content_type="text/html", headers={
        "Cache-Control": "no-cache",
        # The pages run only their own packaged scripts: no inline script, nothing from elsewhere.
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                   "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
    resp.enable_compression()
    return resp


async def asset(request: web.Request) -> web.StreamResponse:
    """A file of ``twpcore/web/static``, compressed when the browser accepts it; 404 outside that folder."""
    rel = request.match_info["path"]
    path = (STATIC / rel).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        raise web.HTTPNotFound(text=f"no console asset {rel}")
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    resp = web.Response(body=path.read_bytes(), content_type=content_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
    if content_type.startswith(("text/", "application/json", "image/svg")):
        resp.enable_compression()
    return resp


def page_handler(name: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return render_page(name, request)

    return handler


def add_console_routes(app: web.Application, index_json: Handler) -> None:
    """Serve the console: ``/`` (login, or the JSON index to non-browsers), ``/admin``, ``/app``, ``/docs`` and ``/console/*``."""
    async def index(request: web.Request) -> web.StreamResponse:
        if wants_html(request):
            return render_page(PAGES["/"], request)
        return await index_json(request)

    app.router.add_get("/", index)
    for path, name in PAGES.items():
        if path != "/":
            app.router.add_get(path, page_handler(name))
    app.router.add_get(ASSET_PREFIX + "{path:.+}", asset)
