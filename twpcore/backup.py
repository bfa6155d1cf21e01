"""Online backup and restore of the store (guide 10.7), portable between SQLite and PostgreSQL.

A backup is a gzip file of JSON lines: a header (format, schema revision, date, row
counts) then one line per row, table by table in dependency order.  It is read inside
one snapshot transaction (REPEATABLE READ on PostgreSQL; a single read transaction on
SQLite in WAL mode), so it is consistent while the server keeps running.

Restore checks the header, then in one transaction empties every table and loads the
rows; if anything fails nothing is changed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from twpcore.store import Store, schema

FORMAT = "twp-backup"
VERSION = 1


class BackupError(Exception):
    """The backup file cannot be written or restored; the message says why and what to do."""


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # SQLite hands back naive UTC times, PostgreSQL aware ones: write both as UTC.
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return {"$dt": value.astimezone(dt.UTC).isoformat()}
    return value


def _decode(column: sa.Column, value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$dt"}:
        v = dt.datetime.fromisoformat(value["$dt"])
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        return v
    return value


def backup(store: Store, path: str | Path) -> dict[str, Any]:
    """Write a consistent backup to ``path``; return the header (with row counts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    counts: dict[str, int] = {}
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            # A deferred transaction reads one WAL snapshot and never blocks the server's writers.
            conn = conn.execution_options(sqlite_begin="DEFERRED")
        with conn.begin():
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            with gzip.open(tmp, "wt", encoding="utf-8") as out:
                header = {"format": FORMAT, "version": VERSION, "revision": revision,
                          "created": dt.datetime.now(dt.UTC).isoformat(), "dialect": store.dialect,
                          "tables": [t.name for t in schema.TABLES]}
                out.write(json.dumps(header) + "\n")
                for table in schema.TABLES:
                    n = 0
                    order = list(table.primary_key.columns)
                    for row in conn.execute(sa.select(table).order_by(*order)):
                        out.write(json.dumps({"t": table.name, "r": {k: _encode(v) for k, v in row._mapping.items()}}) + "\n")
                        n += 1
                    counts[table.name] = n
                out.write(json.dumps({"end": True, "counts": counts}) + "\n")
    tmp.replace(path)
    return {**header, "counts": counts}


def _read(fh: IO[str], path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, int]]:
    try:
        header = json.loads(fh.readline())
    except (json.JSONDecodeError, EOFError, OSError) as exc:
        raise BackupError(f"{path}: not a TWP backup ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"{path}: not a TWP backup (no {FORMAT} header)")
    if header.get("version") != VERSION:
        raise BackupError(f"{path}: backup format version {header.get('version')} is not supported by this TWP (expects {VERSION})")
    rows, end = [], None
    for number, line in enumerate(fh, start=2):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise BackupError(f"{path}: line {number} is not valid JSON; the backup is damaged, use another one") from None
        if not isinstance(item, dict) or not ("end" in item or ("t" in item and isinstance(item.get("r"), dict))):
            raise BackupError(f"{path}: line {number} is not a backup row; the backup is damaged, use another one")
        if "end" in item:
            end = item
            break
        rows.append(item)
    if end is None:
        raise BackupError(f"{path}: the backup is truncated (no end marker); use another backup")
    counts = end.get("counts")
    found: dict[str, int] = {}
    for item in rows:
        found[item["t"]] = found.get(item["t"], 0) + 1
    if not isinstance(counts, dict) or {k: v for k, v in counts.items() if v} != found:
        raise BackupError(f"{path}: the rows do not match the counts written at the end of the backup; the backup is damaged, use another one")
    return header, rows, counts


def restore(store: Store, path: str | Path) -> dict[str, Any]:
    """Replace the store's content with the backup's, in one transaction."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            header, rows, counts = _read(fh, path)
    except FileNotFoundError:
        raise BackupError(f"{path}: no such backup file") from None
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise BackupError(f"{path}: cannot be read as a TWP backup ({exc})") from None
    head = store.head_revision()
    if header.get("revision") != head:
        raise BackupError(
            f"{path}: backup schema revision {header.get('revision')} differs from this TWP's {head}; "
            "restore it with the TWP version that made it, then upgrade"
        )
    tables = {t.name: t for t in schema.TABLES}
    by_table: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for item in rows:
        if item.get("t") not in tables:
            raise BackupError(f"{path}: unknown table {item.get('t')!r} in backup")
        table = tables[item["t"]]
        by_table[item["t"]].append({k: _decode(table.c[k], v) for k, v in item["r"].items() if k in table.c})
    try:
        with store.engine.begin() as conn:
            for table in reversed(schema.TABLES):
                conn.execute(sa.delete(table))
            for table in schema.TABLES:
                if by_table[table.name]:
                    conn.execute(sa.insert(table), by_table[table.name])
            if store.dialect == "postgresql":
                for table in schema.TABLES:
                    if "id" in table.c and isinstance(table.c.id.type, sa.Integer) and table.c.id.primary_key:
                        conn.execute(
                            sa.text(
                                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
                            )
                        )
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        raise BackupError(
            f"{path}: the rows cannot be loaded ({type(orig).__name__}: {str(orig).splitlines()[0][:300]}); nothing was changed"
        ) from None
    return {**header, "counts": counts}
