"""The ``twp`` command: serve, check config, list and scaffold plugins, admins, store upkeep."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import attrs
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


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, bound before anything is printed or created; OSError when busy."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As aiohttp does: a restarted server may bind while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serving_banner(url: str, first: tuple[str, str] | None) -> str:
    """What ``twp serve`` prints once it answers: the URLs, then the first admin's password framed, last."""
    lines = [f"TWP {__import__('twpcore').__version__} serving {url}  (API: {url}/api/v1, OpenAPI: {url}/api/v1/openapi.json)"]
    if first:
        lines += ["", "=" * 72, "  First start: an administrator account was created.", "",
                  f"    login:    {first[0]}", f"    password: {first[1]}", "",
                  "  It is shown only this once: keep it safe, or create another admin",
                  "  with `twp admin create`.", "=" * 72]
    return "\n".join(lines)


async def announce(kernel: Any, banner: str, settle: float = 3.0) -> None:
    """Print ``banner`` once the instances' first connection attempts are over (at most ``settle`` s after the
    kernel is ready), so the password comes after their log lines, not lost among them; printed even when cancelled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    try:
        while loop.time() < deadline and any(  # noqa: ASYNC110 - at most `settle` s, for the banner; instance states have no event to await
                getattr(i.state, "value", i.state) in ("starting", "retrying") for i in kernel.instances.instances.values()):
            await asyncio.sleep(0.05)
    finally:
        print(banner, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from twpcore.server import build_app, build_kernel

    config = load_config(args.config)
    from twpcore.logs import configure

    configure(config.logging.level, config.logging.syslog, config.logging.syslog_facility)
    host = args.host or config.http.host
    port = args.port if args.port is not None else config.http.port
    # Bind first: on a busy port nothing is started, created or announced.
    try:
        sock = listen(host, port)
    except OSError as exc:
        err(f"cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (perhaps another `twp serve`) "
            f"uses that address: stop it, or choose another port with `port` under [http] in {config.source} "
            f"(http.port) or `twp serve --port N`")
        return 2
    kernel = build_kernel(config)
    for problem in kernel.config_problems():
        log.error("%s", problem)
    store = open_store(config)
    first = ensure_first_admin(store)
    url = config.http.public_url or f"http://{host}:{port}"
    app = build_app(kernel, manage_kernel=False)

    async def lifecycle(app: web.Application):
        await kernel.start(store=store)
        announcing = asyncio.get_running_loop().create_task(announce(kernel, serving_banner(url, first)))
        yield
        announcing.cancel()
        await asyncio.gather(announcing, return_exceptions=True)
        await kernel.stop()

    app.cleanup_ctx.append(lifecycle)
    with sock:
        web.run_app(app, sock=sock, print=None, access_log=None)
    # Stopped cleanly.  The interpreter's last garbage collections of everything the plugins
    # loaded took 2 s of the exit on a busy 2-core machine; the process ends, so the OS frees it.
    gc.freeze()
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from twpcore.app import check_config

    config = load_config(args.config)
    problems = check_config(config)
    owners, note = _owner_problems(config)
    problems += owners
    if problems:
        err(f"the configuration has {len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    print(f"{config.source}: configuration OK ({len(config.instances)} instance(s))")
    if note:
        print(note)
    return 0


def _owner_problems(config: cfgmod.Config) -> tuple[list[str], str | None]:
    """The PBX links whose ``company`` / ``domain`` the store lacks; or, when the store cannot be read, a note saying so."""
    from twpcore.instances import owner_problem
    from twpcore.kinds import Kind
    from twpcore.store import redact_url

    links = [s for s in config.instances_of(Kind.PBX_DRIVER) if s.enabled and (s.company is not None or s.domain is not None)]
    if not links:
        return [], None
    found = _read_store(config, lambda conn: [owner_problem(conn, s, config.source) for s in links])
    if isinstance(found, str):
        return [], (f"note: the company and domain names of {len(links)} PBX link(s) were not checked: the store "
                    f"{redact_url(config.storage.url)} {found}; `twp serve` checks them and shows a missing one as config_error")
    return [p for p in found if p is not None], None


def _read_store(config: cfgmod.Config, fn: Any) -> Any:
    """``fn(conn)`` in a read-only transaction on the store, when it exists and is migrated; else why not (a string).

    Creates nothing: a SQLite file that does not exist yet is not created.
    """
    from twpcore.store import Store, StoreError

    url = sa.engine.make_url(config.storage.url) if "://" in config.storage.url else None
    if url is None or (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") and not Path(url.database).exists()):
        return "does not exist yet"
    try:
        store = Store(config.storage.url, workers=1)
    except StoreError as exc:
        return f"cannot be opened ({exc})"
    try:
        store.check_ready()
        return store.read_transaction(fn)
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        return f"cannot be read ({str(exc).splitlines()[0]})"
    finally:
        store.close()


def _show_last_syncs(kernel: Any) -> None:
    """Offline, a config-declared directory whose last sync failed shows that failure (read from the store)."""
    from twpcore.directory.service import config_directory_states
    from twpcore.instances import InstanceState
    from twpcore.kinds import Kind

    specs = [
        i.spec for (kind, _), i in kernel.instances.instances.items() if kind == Kind.DIRECTORY_CONNECTOR and i.state == InstanceState.CONFIGURED
    ]
    states = _read_store(kernel.config, lambda conn: config_directory_states(conn, specs)) if specs else {}
    for name, (state, reason) in (states if isinstance(states, dict) else {}).items():
        if state != InstanceState.READY:
            kernel.instances.instances[(Kind.DIRECTORY_CONNECTOR, name)].set(state, f"last sync: {reason}")


async def _try_setup(kernel: Any, timeout: float) -> None:
    """Run every instance's setup (connect, log in), so setup errors show offline; then close."""
    try:
        await asyncio.wait_for(kernel.instances.start_all(), timeout)
    except TimeoutError:
        for inst in kernel.instances.instances.values():
            if inst.state == "starting":
                inst.set("setup_error", f"setup did not finish within {timeout:g} s")
    finally:
        states = {key: (i.state, i.reason) for key, i in kernel.instances.instances.items()}
        await kernel.instances.close_all()
        for key, (state, reason) in states.items():  # report what setup gave, not the closing
            kernel.instances.instances[key].state, kernel.instances.instances[key].reason = state, reason


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from twpcore.server import build_kernel

    config = load_config(args.config) if Path(args.config).exists() else cfgmod.Config()
    kernel = build_kernel(config)
    if args.setup:
        asyncio.run(_try_setup(kernel, args.timeout))
    _show_last_syncs(kernel)
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


def cmd_plugins_check(args: argparse.Namespace) -> int:
    from twpcore.plugin_check import check, report
    from twpcore.server import build_kernel

    config = load_config(args.config) if Path(args.config).exists() else cfgmod.Config()
    findings = check(build_kernel(config), args.name)
    text, status = report(args.name, findings)
    if args.json:
        print(json.dumps({"plugin": args.name, "ok": status == 0, "checks": [attrs.asdict(f) for f in findings]}, indent=2))
    else:
        print(text)
    return status


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
    try:
        header = backup(store, path)
    except OSError as exc:
        err(f"cannot write the backup {path}: {exc.strerror or exc}; choose a writable place (storage.backup_dir in {config.source})")
        return 2
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

    config = load_config(args.config)
    store = open_store(config, upgrade=False)

    def run(conn: sa.Connection) -> dict[str, Any]:
        domain_id = _find_domain(conn, args.domain)
        return test_number(DialingPlans().get(conn, domain_id), args.number, "received" if args.received else "dial")

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


def _find_domain(conn: sa.Connection, spec: str) -> int:
    from twpcore.store import schema as t

    company, _, name = spec.rpartition("/")
    sel = sa.select(t.domains.c.id).join(t.companies, t.companies.c.id == t.domains.c.company_id).where(t.domains.c.name == name)
    if company:
        sel = sel.where(t.companies.c.name == company)
    ids = conn.execute(sel.limit(2)).scalars().all()
    if not ids:
        raise SystemExit(f"twp: domain {spec!r} does not exist")
    if len(ids) > 1:
        raise SystemExit(f"twp: several companies have a domain {name!r}; write --domain Company/{name}")
    return ids[0]


def _ids_in_domain(conn: sa.Connection, column: sa.Column, value: str, domain: str | None) -> list[int]:
    """Ids of the rows whose ``column`` is ``value`` (in ``domain``, "Company/Domain", when given); two at most, enough to see ambiguity."""
    table = column.table
    sel = sa.select(table.c.id).where(column == value)
    if domain:
        sel = sel.where(table.c.domain_id == _find_domain(conn, domain))
    return list(conn.execute(sel.limit(2)).scalars())


def _directory_run(args: argparse.Namespace, work: Any) -> Any:
    """Run ``await work(kernel)`` with the kernel's directory service on the configured store (no server started)."""
    from twpcore.server import build_kernel

    config = load_config(args.config)
    kernel = build_kernel(config)
    store = open_store(config, upgrade=False)
    kernel.attach_store(store)

    async def main() -> Any:
        await kernel.directories.reload()
        kernel.directories.ready.set()
        return await work(kernel)

    try:
        return asyncio.run(main())
    finally:
        store.close()


def cmd_directory_sync(args: argparse.Namespace) -> int:
    """Synchronize a directory now (guide 8.2.1); a running server picks the new contacts up within its scheduler tick."""
    from twpcore.directory.service import DirectoryError
    from twpcore.store import schema as t

    async def work(kernel: Any) -> Any:
        ids = kernel.store.transaction(_ids_in_domain, t.directories.c.name, args.name, args.domain)
        if not ids:
            raise SystemExit(f"twp: directory {args.name!r} does not exist" + (f" in domain {args.domain}" if args.domain else ""))
        if len(ids) > 1:
            raise SystemExit(f"twp: several domains have a directory {args.name!r}; add --domain Company/Domain")
        try:
            return await kernel.directories.sync(ids[0], "cli")
        except DirectoryError as exc:
            raise SystemExit(f"twp: {exc.detail}") from None

    report = _directory_run(args, work).as_json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"directory {report['directory']}: {report['status']} in {report['duration']} s: {report['records']} records, "
              f"{report['created']} created, {report['updated']} updated, {report['deleted']} deleted, {report['unchanged']} unchanged, "
              f"{report['ignored']} ignored")
        for p in report["problems"][:50]:
            print(f"  ignored {p['record']}: {p['reason']}")
        if report["error"]:
            err(report["error"])
    return 0 if report["status"] == "ok" else 1


def cmd_directory_search(args: argparse.Namespace) -> int:
    """Search as a user would (the user's rights apply)."""
    from twpcore.directory.service import DirectoryError
    from twpcore.store import schema as t

    async def work(kernel: Any) -> Any:
        ids = kernel.store.transaction(_ids_in_domain, t.users.c.login, args.user, args.domain)
        if len(ids) != 1:
            raise SystemExit(
                f"twp: user {args.user!r} " + ("does not exist" if not ids else "exists in several domains; add --domain Company/Domain")
            )
        try:
            return await kernel.directories.search(ids[0], args.text, args.offset, args.limit)
        except DirectoryError as exc:
            raise SystemExit(f"twp: {exc.detail}") from None

    result = _directory_run(args, work)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for c in result["items"]:
        numbers = ", ".join(f"{n['type']} {n['number']}" for n in c["numbers"])
        print(f"{c['name']:<32} {c.get('company', ''):<24} {c['directory']:<20} {numbers}")
    if not result["items"]:
        print("no contact found")
    elif result["more"]:
        print(f"... more: --offset {args.offset + args.limit}")
    return 0


def cmd_directory_reverse(args: argparse.Namespace) -> int:
    """Identify a number for a domain: its public directories and those shared with it (red-listed numbers are not matched)."""

    async def work(kernel: Any) -> Any:
        domain_id = kernel.store.transaction(_find_domain, args.domain)
        return await kernel.directories.reverse(args.number, domain_id=domain_id)

    found = _directory_run(args, work)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0 if found else 1
    if not found:
        print(f"{args.number}: no contact")
        return 1
    c = found["contact"]
    print(f"{args.number} -> {c['name']}" + (f" ({c['company']})" if c.get("company") else "") + f", {found['number_type']} in {c['directory']}"
          + (f", VIP: {c['vip']}" if c.get("vip") else ""))
    print(f"canonical keys: {', '.join(found['keys'])}")
    return 0


def _imports_run(args: argparse.Namespace, work: Any) -> Any:
    """Run ``await work(kernel)`` with the kernel's users-import service on the configured store (no server started)."""
    from twpcore.server import build_kernel

    config = load_config(args.config)
    kernel = build_kernel(config)
    store = open_store(config, upgrade=False)
    kernel.attach_store(store)
    try:
        return asyncio.run(work(kernel))
    finally:
        store.close()


def cmd_users_import_list(args: argparse.Namespace) -> int:
    """List the users imports (guide 7.2) with their last run."""
    from twpcore.store import schema as t
    from twpcore.user_imports import definition_select, present, run_json

    async def work(kernel: Any) -> Any:
        def run(conn: sa.Connection) -> list[dict[str, Any]]:
            out = []
            for row in conn.execute(definition_select().order_by(t.user_imports.c.id)):
                item = present(dict(row._mapping))
                r = t.user_import_runs
                last = conn.execute(sa.select(r).where(r.c.import_id == row.id).order_by(r.c.id.desc()).limit(1)).one_or_none()
                item["last_run"] = run_json(last) if last is not None else None
                out.append(item)
            return out

        return await kernel.store.run(run)

    items = _imports_run(args, work)
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    for i in items:
        last = i["last_run"]
        when = f"last run {last['started_at'][:19]} {last['status']}" if last else "never run"
        print(f"{i['id']:>4}  {i['name'][:30]:<30} {i['source']:<16} {i['sync_type']:<22} {i['schedule']:<8} {when}")
    return 0


def cmd_users_import_run(args: argparse.Namespace) -> int:
    """Run a users import now and print its report (``--dry-run``: write nothing)."""
    from twpcore.user_imports import UserImportError, load_definition

    async def work(kernel: Any) -> Any:
        row = await kernel.store.run(load_definition, args.id)
        if row is None:
            raise SystemExit(f"twp: user import {args.id} does not exist; `twp users import list` shows them")
        if row["source"] == "pbx":
            raise SystemExit(f"twp: user import {args.id} reads a PBX's subscriber list through the server's PBX link "
                             f"{row['link']!r}; run it on the server: POST /api/v1/user-imports/{args.id}/run")
        try:
            return await kernel.user_imports.run(args.id, "cli", dry_run=args.dry_run)
        except UserImportError as exc:
            raise SystemExit(f"twp: {exc.detail}") from None

    report = _imports_run(args, work).as_json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"user import {report['import']}{' (dry run: nothing written)' if report['dry_run'] else ''}: {report['status']}: "
              f"{report['records']} entries, {report['created']} created, {report['updated']} updated, {report['unchanged']} unchanged, "
              f"{report['disabled']} disabled, {report['deleted']} deleted, {report['ignored']} ignored")
        for e in report["entries"][:50]:
            if e["action"] != "created" or args.verbose:
                print(f"  {e['action']} {e['login'] or e['entry']}" + (f": {e['reason']}" if e.get("reason") else ""))
        if report["error"]:
            err(report["error"])
    return 0 if report["status"] == "ok" else 1


def _cluster_config(args: argparse.Namespace) -> Any:
    config = load_config(args.config)
    if not config.cluster.redis:
        err(f"{config.source}: no [cluster] section: this server runs alone; set redis and node under [cluster] (docs/cluster.md)")
        raise SystemExit(1)
    return config.cluster


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from twpcore.cluster.status import command_status, format_status

    cluster = _cluster_config(args)
    try:
        status = asyncio.run(command_status(cluster.redis, cluster.prefix, float(cluster.lease_ttl)))
    except Exception as exc:  # noqa: BLE001 - Redis away: say so in one line
        err(f"cannot read the cluster's state from Redis ({type(exc).__name__}: {exc}); check that Redis runs and [cluster] redis")
        return 1
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_cluster_move(args: argparse.Namespace) -> int:
    from twpcore.cluster.status import command_move

    cluster = _cluster_config(args)
    try:
        problem = asyncio.run(command_move(cluster.redis, cluster.prefix, float(cluster.lease_ttl), args.link, args.node))
    except Exception as exc:  # noqa: BLE001 - Redis away: say so in one line
        err(f"cannot reach Redis ({type(exc).__name__}: {exc}); check that Redis runs and [cluster] redis")
        return 1
    if problem:
        err(problem)
        return 1
    print(f"PBX link {args.link} moves to node {args.node} within a few seconds; `twp cluster status` shows it")
    return 0


def cmd_lockouts_list(args: argparse.Namespace) -> int:
    from twpcore import lockout

    config = load_config(args.config)
    store = open_store(config)
    items = store.transaction(lockout.current, config.auth)
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("nothing is locked")
    for item in items:
        print(f"{item['scope']:8} {item['subject']:40} {item['failures']:3} failures, locked until {item['locked_until']}")
    return 0


def cmd_lockouts_unlock(args: argparse.Namespace) -> int:
    from twpcore import lockout
    from twpcore.auth import now
    from twpcore.store import schema as t

    config = load_config(args.config)
    store = open_store(config)
    subject = args.subject if args.scope == "address" else lockout.login_key(args.subject)

    def run(conn: sa.Connection) -> dict[str, Any]:
        was = lockout.state(conn, config.auth, args.scope, subject)
        lockout.reset(conn, args.scope, subject)
        conn.execute(sa.insert(t.audit_log).values(at=now(), actor="cli", action="unlock", object_type=args.scope, object_id=subject[:64],
                                                   source="twp lockouts unlock", detail={"was_locked": was["locked"], "failures": was["failures"]}))
        return was

    was = store.transaction(run)
    if was["locked"]:
        print(f"{args.scope} {subject} unlocked (it had {was['failures']} failures)")
    else:
        print(f"{args.scope} {subject} was not locked ({was['failures']} recent failures, now forgotten)")
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
    ls.add_argument("--setup", action="store_true", help="also run each instance's setup (connect to PBXs, servers) to show setup errors, then close")
    ls.add_argument("--timeout", type=float, default=20.0, help="seconds --setup may take (default 20)")
    ls.set_defaults(func=cmd_plugins_list)
    check_help = ("grade an installed plugin: it loads and registers, declares its plugin API version, imports only "
                  "twpcore.plugin_api, its options have help texts, secrets and server-side paths are marked, it has "
                  "tests; prints what to fix and exits 1 when a check fails")
    ck = pl.add_parser("check", help=check_help, description=check_help)
    ck.add_argument("name", help="the plugin name (its entry-point name, as `twp plugins list` shows it)")
    ck.add_argument("--json", action="store_true", help="print the checks as JSON")
    ck.set_defaults(func=cmd_plugins_check)
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
    dr = sub.add_parser("directory", help="directories (guide 8)").add_subparsers(dest="sub", required=True)
    ds = dr.add_parser("sync", help="synchronize a directory now and print its report")
    ds.add_argument("name")
    ds.add_argument("--domain", help="Domain, or Company/Domain, when several domains have a directory of that name")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=cmd_directory_sync)
    dq = dr.add_parser("search", help="search the directories as a user (with that user's rights)")
    dq.add_argument("--user", required=True, help="the user's login")
    dq.add_argument("--domain", help="Domain, or Company/Domain, when the login exists in several domains")
    dq.add_argument("--limit", type=int, default=20)
    dq.add_argument("--offset", type=int, default=0)
    dq.add_argument("--json", action="store_true")
    dq.add_argument("text")
    dq.set_defaults(func=cmd_directory_search)
    dv = dr.add_parser("reverse", help="identify a number through the domain's dialing plan")
    dv.add_argument("--domain", required=True, help="Domain, or Company/Domain")
    dv.add_argument("--json", action="store_true")
    dv.add_argument("number")
    dv.set_defaults(func=cmd_directory_reverse)
    us = sub.add_parser("users", help="users (guide 7)").add_subparsers(dest="sub", required=True)
    ui = us.add_parser("import", help="users imports (guide 7.2)").add_subparsers(dest="action", required=True)
    uil = ui.add_parser("list", help="list the users imports and their last run")
    uil.add_argument("--json", action="store_true")
    uil.set_defaults(func=cmd_users_import_list)
    uir = ui.add_parser("run", help="run a users import now and print its report")
    uir.add_argument("id", type=int)
    uir.add_argument("--dry-run", action="store_true", help="compute and report the changes, write nothing")
    uir.add_argument("--verbose", "-v", action="store_true", help="also list the users created")
    uir.add_argument("--json", action="store_true")
    uir.set_defaults(func=cmd_users_import_run)
    lk = sub.add_parser("lockouts", help="login lock-outs (guide 6)").add_subparsers(dest="sub", required=True)
    lkl = lk.add_parser("list", help="the login names and addresses locked now")
    lkl.add_argument("--json", action="store_true")
    lkl.set_defaults(func=cmd_lockouts_list)
    lku = lk.add_parser("unlock", help="lift a lock-out now (also when no administrator can log in)")
    lku.add_argument("scope", choices=("login", "admin", "address"), help="a user login name, an admin login name, or a source address")
    lku.add_argument("subject", help="the login name (any case) or the address")
    lku.set_defaults(func=cmd_lockouts_unlock)
    cl = sub.add_parser("cluster", help="several nodes on PostgreSQL and Redis (docs/cluster.md)").add_subparsers(dest="sub", required=True)
    cls_ = cl.add_parser("status", help="nodes, the PBX links each serves with lease ages, running jobs (read from Redis)")
    cls_.add_argument("--json", action="store_true")
    cls_.set_defaults(func=cmd_cluster_status)
    clm = cl.add_parser("move", help="move a PBX link to another live node")
    clm.add_argument("link")
    clm.add_argument("node")
    clm.set_defaults(func=cmd_cluster_move)
    r = sub.add_parser("restore", help="replace the store's content with a backup")
    r.add_argument("file")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(func=cmd_restore)
    _accept_config_after_command(p)
    return p


def _accept_config_after_command(p: argparse.ArgumentParser) -> None:
    """Let every command take ``--config`` after its name too (``twp serve --config FILE``, as in ``make run``)."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    _accept_config_after_command(sub)
                else:
                    # SUPPRESS: when absent here, the value given before the command (or its default) stays.
                    sub.add_argument("--config", "-c", default=argparse.SUPPRESS, help="config file (may also come before the command)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not logging.getLogger().handlers and args.func is not cmd_serve:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
