"""The ``a5000`` directory connector: the A5000's own directory (or its subscriber list) as a TWP directory.

The migration log of the guide (2.3) counts "directory servers A5000": the PBX's
directory is a directory source of its own.  The connector logs in on a VTI-XML link
(``twp_csta.vtixml``), asks for ``Directory`` (entries: name and number) or
``Subscribers`` (number, name, site) and yields one record per entry, keyed by its
number.  A PBX that cannot be reached makes the sync fail with ``NotReady`` (the
previous contacts stay), a refused log-in with ``AuthFailed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from twp_a5000.config import A5000DirectoryConfig
from twp_csta.errors import CstaBaseError
from twp_csta.vtixml import VtiClient, VtiError, VtiMessage
from twpcore.plugin_api import AuthFailed, DirectoryConnector, NotReady, SkippedRecord, SourceRecord


class A5000Directory(DirectoryConnector):
    """The A5000's directory over VTI-XML."""

    type_name = "a5000"
    Config = A5000DirectoryConfig
    capabilities = frozenset({"sync", "test_connection"})
    description = "the directory (or subscriber list) of an Aastra / Mitel A5000, read over VTI-XML (guide 2.3 \"directory servers A5000\")"
    default_fields: ClassVar[Mapping[str, str]] = {"id": "number", "last_name": "last_name", "first_name": "first_name", "phone": "number"}

    def source_fields(self) -> list[str]:
        return ["number", "name", "first_name", "last_name", "site"]

    async def _read(self) -> VtiMessage:
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        try:
            client = await VtiClient.connect(cfg.host, cfg.port, user=cfg.username, password=cfg.password.reveal(), name=f"directory {where}",
                                             connect_timeout=float(cfg.timeout), request_timeout=float(cfg.timeout), keepalive_interval=None)
        except VtiError as exc:
            if exc.code == "badCredentials":
                raise AuthFailed(f"{where}: the A5000 refused the VTI-XML log-in of user {cfg.username!r}; check username and password") from None
            raise NotReady(f"{where}: {exc.message}") from None
        except CstaBaseError as exc:
            raise NotReady(exc.message if exc.message.startswith(where) else f"{where}: {exc.message}") from None
        try:
            return await client.request("Directory" if cfg.source == "directory" else "Subscribers")
        except CstaBaseError as exc:
            raise NotReady(f"{where}: {exc.message}") from None
        finally:
            await client.close()

    async def test_connection(self) -> str:
        answer = await self._read()
        return f"A5000 at {self.config.host}:{self.config.port}: {len(answer.items)} {self.config.source} entries"

    async def records(self, user: Any = None) -> AsyncIterator[Any]:
        answer = await self._read()
        for entry in answer.items:
            number = (entry.get("number") or "").strip()
            name = (entry.get("name") or "").strip()
            if not number:
                yield SkippedRecord(name or "(no name)", "entry without a number")
                continue
            first, _, last = name.partition(" ")
            yield SourceRecord(number, {"number": number, "name": name, "first_name": first if last else "", "last_name": last or first,
                                        "site": entry.get("site")})
