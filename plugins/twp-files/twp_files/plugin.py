"""TWP directory connector "files": contacts from a CSV or Excel (.xlsx) file.

The guide (8.4.3) reaches CSV and Excel files through Windows-only ODBC text and Excel
drivers; this connector reads them directly on any system.  The first row holds the
column names, which the directory's mapping refers to (guide 8.4.2: avoid spaces and
punctuation in them, though this connector copes with both).

Options: ``path``; ``format`` (``auto`` from the extension, ``csv`` or ``xlsx``); for CSV
``delimiter`` (``auto`` sniffs among ``, ; TAB |``) and ``encoding`` (``utf-8-sig``, which
also reads plain UTF-8; ``cp1252`` for files saved by older Excel); for Excel ``sheet``
(default: the first).  A row with more cells than the header, or a CSV line the parser
cannot read, is skipped and named in the sync report with its line number.  A missing
file is ``NotReady`` (a share not mounted yet, a file being replaced): the previous
contacts are kept and the next scheduled sync tries again.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import attrs

from twpcore.plugin_api import ConnectorError, DirectoryConnector, NotReady, Register, SkippedRecord, SourceRecord, hookimpl, setting

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""

DELIMITERS = ",;\t|"


@attrs.frozen
class FilesConfig:
    """Options of one file directory."""

    path: str = setting(help="the CSV or .xlsx file (absolute path, readable by the TWP server); super users only", server_side=True)
    format: Literal["auto", "csv", "xlsx"] = setting("auto", help="auto: from the file extension")
    sheet: str | None = setting(None, help="Excel sheet name (default: the first sheet)")
    delimiter: str = setting("auto", help='CSV delimiter: "auto", ",", ";", "\\t" or "|"')
    encoding: str = setting("utf-8-sig", help="CSV text encoding (utf-8-sig reads UTF-8 with or without BOM; cp1252 for old Excel exports)")
    key_column: str | None = setting(None, help="column naming a row in sync reports (default: the line number)")

    def __attrs_post_init__(self) -> None:
        if self.delimiter != "auto" and (len(self.delimiter) != 1 or self.delimiter in "\"\r\n"):
            raise ValueError(f'delimiter: expected "auto" or one character such as ";", got {self.delimiter!r}')
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"encoding: {self.encoding!r} is not a known text encoding; use utf-8-sig, cp1252, latin-1...") from None


Row = tuple[str, dict[str, Any] | None, str | None]
"""(record id, fields, or None and the reason it was skipped)."""


class FileDirectory(DirectoryConnector):
    """Rows of a CSV or Excel file as directory records."""

    type_name = "files"
    Config = FilesConfig
    capabilities = frozenset({"sync", "test_connection"})
    description = "a CSV or Excel (.xlsx) file (replaces the guide's ODBC text and Excel drivers, 8.4.3)"

    @property
    def file_format(self) -> str:  # not `kind`: that name is the plugin kind (Kind.DIRECTORY_CONNECTOR)
        if self.config.format != "auto":
            return self.config.format
        suffix = Path(self.config.path).suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            return "xlsx"
        if suffix == ".xls":
            raise ConnectorError(f"{self.config.path}: .xls (Excel 97-2003) is not read; save the file as .xlsx or .csv")
        return "csv"

    def _open(self) -> bytes:
        path = Path(self.config.path)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotReady(f"file {path} not found; check the path (and that its share is mounted)") from None
        except IsADirectoryError:
            raise ConnectorError(f"{path} is a directory; give the path of the file itself") from None
        except PermissionError:
            raise ConnectorError(f"file {path} cannot be read by the TWP server (permission denied)") from None
        except OSError as exc:
            raise NotReady(f"file {path} cannot be read now: {exc}") from None

    def _rows(self) -> tuple[list[str], list[Row]]:
        data = self._open()
        return self._xlsx(data) if self.file_format == "xlsx" else self._csv(data)

    def _csv(self, data: bytes) -> tuple[list[str], list[Row]]:
        try:
            text = data.decode(self.config.encoding)
        except UnicodeDecodeError as exc:
            raise ConnectorError(
                f"{self.config.path}: not {self.config.encoding} text (byte {exc.start}); set the encoding option, e.g. cp1252"
            ) from None
        delimiter = self.config.delimiter
        if delimiter == "auto":
            head = text[:8192]
            try:
                delimiter = csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
            except csv.Error:
                first = head.splitlines()[0] if head else ""
                delimiter = max(DELIMITERS, key=first.count) if first else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        rows: list[Row] = []
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows.append((f"line {reader.line_num}", None, f"unreadable CSV line: {exc}"))
                continue
            if header is None:
                if not any(c.strip() for c in cells):
                    continue
                header = [c.strip() for c in cells]
                continue
            rows.append(self._row(f"line {reader.line_num}", header, cells))
        if header is None:
            raise ConnectorError(f"{self.config.path}: the file is empty; its first line must name the columns")
        return header, rows

    def _xlsx(self, data: bytes) -> tuple[list[str], list[Row]]:
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise ConnectorError(f"{self.config.path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
        try:
            if self.config.sheet is not None:
                if self.config.sheet not in book.sheetnames:
                    raise ConnectorError(f"{self.config.path}: no sheet {self.config.sheet!r} among the workbook's {len(book.sheetnames)} sheets; "
                                         "check its name in Excel, or leave sheet unset for the first one")
                sheet = book[self.config.sheet]
            else:
                sheet = book.worksheets[0]
            header: list[str] | None = None
            rows: list[Row] = []
            for n, values in enumerate(sheet.iter_rows(values_only=True), 1):
                cells = list(values)
                while cells and cells[-1] in (None, ""):
                    cells.pop()
                if header is None:
                    if not cells:
                        continue
                    header = ["" if c is None else str(c).strip() for c in cells]
                    continue
                if not cells:
                    continue
                rows.append(self._row(f"row {n}", header, cells))
        finally:
            book.close()
        if header is None:
            raise ConnectorError(f"{self.config.path}: the sheet is empty; its first row must name the columns")
        return header, rows

    def _row(self, where: str, header: list[str], cells: list[Any]) -> Row:
        if len(cells) > len(header) and any(c not in (None, "") for c in cells[len(header):]):
            return (where, None, f"{len(cells)} cells, the header has {len(header)}: a delimiter or quote is probably wrong in this line")
        if all(c in (None, "") for c in cells):
            return (where, None, "empty line")
        fields = {name: value for name, value in zip(header, cells, strict=False) if name}  # a short line leaves the last columns out
        key = self.config.key_column
        if key and fields.get(key) not in (None, ""):
            where = str(fields[key])
        return (where, fields, None)

    async def test_connection(self) -> str:
        header, rows = await asyncio.to_thread(self._rows)
        bad = sum(1 for _, fields, reason in rows if fields is None and reason != "empty line")
        good = sum(1 for _, fields, _ in rows if fields is not None)
        # Counts only: the file's own text (even its header line) is never echoed (admin guide 15).
        return f"{self.config.path}: {good} rows, {len(header)} columns" + (f"; {bad} malformed rows" if bad else "")

    async def records(self, user: Any = None) -> AsyncIterator[Any]:
        header, rows = await asyncio.to_thread(self._rows)
        if self.config.key_column and self.config.key_column not in header:
            raise ConnectorError(f"{self.config.path}: key_column {self.config.key_column!r} is not one of the {len(header)} names of the "
                                 "header line; check its spelling against the file's first line")
        for where, fields, reason in rows:
            if fields is None:
                if reason != "empty line":
                    yield SkippedRecord(where, reason or "malformed")
                continue
            yield SourceRecord(where, fields)


@hookimpl
def twp_register_directory_connectors(register: Register[type[DirectoryConnector]]) -> None:
    register(FileDirectory)
