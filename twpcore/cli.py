"""The ``twp`` command: serve, check config, list and scaffold plugins, admins, store upkeep."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from twpcore import config as cfgmod
from twpcore.schema import ConfigErrors

DEFAULT_CONFIG = os.environ.get("TWP_CONFIG", "config/twp.toml")
log = logging.getLogger("twpcore.cli")


def err(message: str) -> None:
    print(f"twp: {message}", file=sys.stderr)


def load_config(path: str) -> cfgmod.Config:
    try:
        return cfgmod.load(path)
    except ConfigErrors as exc:
        err(f"the configuration has {len(exc.problems)} problem(s):")
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        raise SystemExit(2) from None


def open_store(config: cfgmod.Config, *, upgrade: bool = True) -> Any:
    from twpcore.store import Store, StoreError

    try:
        store = Store(config.storage.url)
        if upgrade:
            store.upgrade()
        else:
            store.check_ready()
        return store
    except StoreError as exc:
        err(f"{config.source}: {exc}")
        raise SystemExit(2) from None


def ensure_first_admin(store: Any) -> tuple[str, str] | None:
    """Create the first admin with a generated password when there is none."""
    from twpcore.auth import create_admin
    from twpcore.store import schema as t

    def run(conn: sa.Connection) -> tuple[str, str] | None:
        if conn.execute(sa.select(sa.func.count()).select_from(t.admins)).scalar_one():
            return None
        _, password = create_admin(conn, "admin", super_user=True)
        return "admin", password

    return store.transaction(run)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from twpcore.api.app import create_app
    from twpcore.app import Kernel

    config = load_config(args.config)
    logging.basicConfig(level=config.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = args.host or config.http.host
    port = args.port if args.port is not None else config.http.port
    kernel = Kernel.build(config)
    for problem in kernel.config_problems():
        log.error("%s", problem)
    store = open_store(config)
    first = ensure_first_admin(store)
    url = config.http.public_url or f"http://{host}:{port}"
    print(f"TWP {__import__('twpcore').__version__} serving {url}  (API: {url}/api/v1, OpenAPI: {url}/api/v1/openapi.json)", flush=True)
    if first:
        print("=" * 72, flush=True)
        print("First start: an administrator account was created.", flush=True)
        print(f"  login:    {first[0]}", flush=True)
        print(f"  password: {first[1]}", flush=True)
        print("It is shown only this once: keep it safe, or create another admin with `twp admin create`.", flush=True)
        print("=" * 72, flush=True)
    app = create_app(kernel, manage_kernel=False)

    async def lifecycle(app: web.Application):
        await kernel.start(store=store)
        yield
        await kernel.stop()

    app.cleanup_ctx.append(lifecycle)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from twpcore.app import check_config

    config = load_config(args.config)
    problems = check_config(config)
    if problems:
        err(f"the configuration has {len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    print(f"{config.source}: configuration OK ({len(config.instances)} instance(s))")
    return 0


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from twpcore.app import Kernel

    config = load_config(args.config) if Path(args.config).exists() else cfgmod.Config()
    kernel = Kernel.build(config)
    plugins = kernel.plugins.as_json()
    instances = kernel.instances.as_json()
    if args.json:
        print(json.dumps({"plugins": plugins, "instances": instances}, indent=2))
        return 0
    print(f"{'PLUGIN':<24} {'SOURCE':<22} {'STATE':<15} PROVIDES / REASON")
    for p in plugins:
        detail = p["reason"] or ", ".join(p["provides"]) or ", ".join(p["hooks"])
        print(f"{p['name']:<24} {(p['source'] + ' ' + (p['version'] or '')).strip():<22} {p['state']:<15} {detail}")
    if instances:
        print()
        print(f"{'INSTANCE':<34} {'TYPE':<16} {'STATE':<15} REASON")
        for i in instances:
            print(f"{i['config']:<34} {i['type']:<16} {i['state']:<15} {i['reason'] or ''}")
    return 0


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from twpcore.scaffold import ScaffoldError, scaffold

    try:
        target = scaffold(args.name, args.kind, Path(args.dir))
    except ScaffoldError as exc:
        err(str(exc))
        return 2
    print(f"created {target}; install it with: pip install -e {target}")
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    from twpcore.auth import create_admin
    from twpcore.store import schema as t

    config = load_config(args.config)
    store = open_store(config)
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            err("the password must have at least 12 characters")
            return 2

    def run(conn: sa.Connection) -> str:
        if conn.execute(sa.select(t.admins.c.id).where(t.admins.c.login == args.login)).first():
            raise SystemExit(f"twp: admin {args.login!r} already exists; choose another login")
        ids = []
        for name in args.company or []:
            cid = conn.execute(sa.select(t.companies.c.id).where(t.companies.c.name == name)).scalar_one_or_none()
            if cid is None:
                raise SystemExit(f"twp: company {name!r} does not exist")
            ids.append(cid)
        _, pw = create_admin(conn, args.login, password, super_user=not ids, companies=tuple(ids))
        return pw

    pw = store.transaction(run)
    scope = "super user" if not args.company else "limited to " + ", ".join(args.company)
    print(f"admin {args.login} created ({scope})")
    if not args.password_stdin:
        print(f"password: {pw}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from twpcore.store import Store, StoreError, redact_url

    config = load_config(args.config)

    try:
        store = Store(config.storage.url)
        before, after = store.upgrade()
    except StoreError as exc:
        err(str(exc))
        return 2
    print(f"{redact_url(config.storage.url)}: {'already at' if before == after else f'upgraded from {before} to'} revision {after}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from twpcore.backup import backup

    config = load_config(args.config)
    store = open_store(config, upgrade=False)
    path = Path(args.file) if args.file else Path(config.storage.backup_dir) / f"twp-{dt.datetime.now():%Y%m%d-%H%M%S}.jsonl.gz"
    header = backup(store, path)
    print(f"backup written to {path} ({sum(header['counts'].values())} rows, revision {header['revision']})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from twpcore.backup import BackupError, restore

    config = load_config(args.config)
    store = open_store(config)
    if not args.yes:
        if not sys.stdin.isatty():
            err("restore replaces every stored object; pass --yes to confirm")
            return 2
        if input(f"Replace everything in {config.storage.url.split('@')[-1]} with {args.file}? [y/N] ").strip().lower() != "y":
            return 1
    try:
        header = restore(store, args.file)
    except BackupError as exc:
        err(str(exc))
        return 2
    print(f"restored {sum(header['counts'].values())} rows from {args.file} (made {header['created']})")
    return 0


def cmd_dialplan_test(args: argparse.Namespace) -> int:
    from twpcore.dialing import DialingPlans, test_number
    from twpcore.store import schema as t

    config = load_config(args.config)
    store = open_store(config, upgrade=False)
    company, _, name = args.domain.rpartition("/")

    def run(conn: sa.Connection) -> dict[str, Any]:
        sel = sa.select(t.domains.c.id).join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.name == name)
        if company:
            sel = sel.where(t.companies.c.name == company)
        ids = conn.execute(sel.limit(2)).scalars().all()
        if not ids:
            raise SystemExit(f"twp: domain {args.domain!r} does not exist")
        if len(ids) > 1:
            raise SystemExit(f"twp: several companies have a domain {name!r}; write --domain Company/{name}")
        return test_number(DialingPlans().get(conn, ids[0]), args.number, "received" if args.received else "dial")

    result = store.transaction(run)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rule = result["rule"]
    print(f"{result['input']!r} -> {result['output']!r}")
    fired = "none" if rule is None else "priority {priority}: {pattern!r} -> {value!r}".format(**rule)
    print(f"rule: {fired}")
    for step in result["steps"]:
        print(f"  - {step}")
    print(f"canonical keys: {', '.join(result['canonical_keys']) or 'none'}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twp", description="TWP telephony gateway")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG}, or $TWP_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the API")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_serve)
    c = sub.add_parser("config", help="configuration").add_subparsers(dest="sub", required=True)
    c.add_parser("check", help="check the config file without starting").set_defaults(func=cmd_config_check)
    pl = sub.add_parser("plugins", help="plugins").add_subparsers(dest="sub", required=True)
    ls = pl.add_parser("list", help="installed plugins and configured instances with their states")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_plugins_list)
    new = pl.add_parser("new", help="create a plugin package from the template")
    new.add_argument("name")
    new.add_argument("--kind", required=True, choices=["pbx", "directory", "auth", "sms"])
    new.add_argument("--dir", default=".", help="where to create the package directory")
    new.set_defaults(func=cmd_plugins_new)
    ad = sub.add_parser("admin", help="administrator accounts").add_subparsers(dest="sub", required=True)
    ac = ad.add_parser("create", help="create an admin; prints a generated password")
    ac.add_argument("login")
    ac.add_argument("--company", action="append", help="limit the admin to this company (repeatable); default: super user")
    ac.add_argument("--password-stdin", action="store_true", help="read the password from standard input instead of generating one")
    ac.set_defaults(func=cmd_admin_create)
    db = sub.add_parser("db", help="the store").add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(func=cmd_db_upgrade)
    b = sub.add_parser("backup", help="write a consistent online backup")
    b.add_argument("file", nargs="?")
    b.set_defaults(func=cmd_backup)
    dp = sub.add_parser("dialplan", help="dialing plans (guide 5)").add_subparsers(dest="sub", required=True)
    dt_ = dp.add_parser("test", help="show what a domain's dialing plan makes of a number, and which rule fired")
    dt_.add_argument("--domain", required=True, help="Domain, or Company/Domain")
    dt_.add_argument("--received", action="store_true", help="apply the reverse transformation (received numbers)")
    dt_.add_argument("--json", action="store_true")
    dt_.add_argument("number")
    dt_.set_defaults(func=cmd_dialplan_test)
    r = sub.add_parser("restore", help="replace the store's content with a backup")
    r.add_argument("file")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(func=cmd_restore)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not logging.getLogger().handlers and args.func is not cmd_serve:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
