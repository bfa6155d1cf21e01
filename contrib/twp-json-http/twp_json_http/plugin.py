"""TWP directory connector "json-http": contacts read from a JSON API over HTTP, page by page.

A CRM or an intranet often has a JSON endpoint listing its contacts: an array, or an
object holding the array under a key (``{"contacts": [...], "next": "https://..."}``),
sometimes in pages linked by a "next" URL.  This connector reads every page, then hands
the kernel one ``SourceRecord`` per contact; the kernel maps fields, computes numbers and
replaces the directory's contacts.  Written from ``twp plugins new json-http --kind
directory``; the README walks through how.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import aiohttp
import attrs

from twpcore.plugin_api import (
    AuthFailed,
    ConnectorError,
    DirectoryConnector,
    Duration,
    NotReady,
    Secret,
    SkippedRecord,
    SourceRecord,
    hookimpl,
    setting,
)

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for; a TWP that does not provide it lists the plugin as incompatible."""


@attrs.frozen
class Config:
    """Options of one directory with ``connector = "json-http"``; checked before the directory is saved."""

    url: str = setting(help="http(s) URL of the first page of contacts, such as https://crm.example.com/api/contacts")
    token: Secret | None = setting(None, help='bearer token sent in the Authorization header; write it { env = "VAR" }')
    items: str = setting("", help='key of the array of contacts in an answer that is an object, such as "contacts"; empty: the answer is the array')
    next: str = setting("", help='key of the next page\'s URL in an answer that is an object, such as "next"; empty: one page')
    id_field: str = setting("id", help="field of a contact holding its stable identifier")
    max_pages: int = setting(1000, min=1, max=100_000, help="pages read at most; a source linking more is refused (a loop)")
    timeout: Duration = setting(Duration(30), min=1, max=600, help='how long one page may take: 30, "30s", "2m"')

    def __attrs_post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).hostname:
            raise ValueError(f'url: expected an http:// or https:// URL such as "https://crm.example.com/api/contacts", got "{_shown(self.url)}"')


def _shown(url: str) -> str:
    """A URL as messages show it: no user, password or query string (either may hold a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else url.split("?")[0]


class JsonHttpConnector(DirectoryConnector):
    """Contacts from a JSON API over HTTP."""

    type_name = "json-http"
    Config = Config
    capabilities = frozenset({"sync", "test_connection"})
    description = "contacts from a JSON API over HTTP (an array, or pages linked by a next URL)"
    default_fields: ClassVar[dict[str, str]] = {
        "id": "id", "last_name": "last_name", "first_name": "first_name", "company": "company",
        "email": "email", "phone": "phone", "mobile": "mobile",
    }
    """The source's field names for each TWP field (guide 8.1); a directory's ``fields`` override them."""

    session: aiohttp.ClientSession | None = None

    async def setup(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=float(self.config.timeout)))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def page(self, url: str) -> tuple[list[Any], str | None]:
        """One page: its contacts and the next page's URL; ``NotReady`` / ``AuthFailed`` / ``ConnectorError`` say why not."""
        assert self.session is not None, "setup() first"
        headers = {"Authorization": f"Bearer {self.config.token.reveal()}"} if self.config.token else {}
        where = _shown(url)
        try:
            async with self.session.get(url, headers=headers) as response:
                if response.status in (401, 403):
                    raise AuthFailed(f"{where} refused the token (HTTP {response.status}); check the token option")
                if response.status == 429 or response.status >= 500:
                    raise NotReady(f"{where} answered HTTP {response.status}; the kernel tries again later")
                if response.status != 200:
                    raise ConnectorError(f"{where} answered HTTP {response.status}; check the url option")
                body = await response.json(content_type=None)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise NotReady(f"{where} does not answer ({type(exc).__name__}); check that it is up and reachable") from exc
        except ValueError as exc:
            raise ConnectorError(f"{where} did not answer JSON; check the url option") from exc
        items, following = body, None
        if self.config.items or self.config.next:
            if not isinstance(body, dict):
                raise ConnectorError(f"{where} answered a JSON {type(body).__name__}, expected an object (the items and next options are set)")
            items = body.get(self.config.items) if self.config.items else []
            following = body.get(self.config.next) if self.config.next else None
        if not isinstance(items, list):
            what = f'its "{self.config.items}" is' if self.config.items else "it answered"
            raise ConnectorError(f"{where}: {what} a JSON {type(items).__name__}, expected an array of contacts; check the items option")
        if following is not None and not isinstance(following, str):
            raise ConnectorError(f'{where}: its "{self.config.next}" is a JSON {type(following).__name__}, expected a URL')
        return items, urljoin(url, following) if following else None

    async def pages(self) -> AsyncIterator[list[Any]]:
        url: str | None = self.config.url
        seen = 0
        while url is not None:
            if seen == self.config.max_pages:
                raise ConnectorError(f"{_shown(self.config.url)} links more than {self.config.max_pages} pages; raise max_pages "
                                     "if the source really has that many")
            items, url = await self.page(url)
            seen += 1
            yield items

    async def test_connection(self) -> str:
        items, following = await self.page(self.config.url)
        more = ", more pages follow" if following else ""
        return f"{len(items)} contacts on the first page at {_shown(self.config.url)}{more}"

    async def records(self, user: Any = None) -> AsyncIterator[SourceRecord | SkippedRecord]:
        number = 0
        async for items in self.pages():
            for item in items:
                number += 1
                ident = item.get(self.config.id_field) if isinstance(item, dict) else None
                if ident in (None, ""):
                    yield SkippedRecord(f"contact {number}", f'expected an object with an "{self.config.id_field}" field')
                    continue
                yield SourceRecord(str(ident), {k: v if isinstance(v, (str, list)) or v is None else str(v) for k, v in item.items()})


@hookimpl
def twp_register_directory_connectors(register):
    register(JsonHttpConnector)
