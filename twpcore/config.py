"""The server configuration file (``twp.toml``): its schema, loading and checking.

Kernel sections are attrs classes checked by ``twpcore.schema``.  Instance tables
(``[pbx.links.<name>]``, ``[directories.<name>]``, ``[sms.providers.<name>]``,
``[auth.methods.<Name>]``) keep their plugin-specific options raw here; the kernel
checks them against the plugin type's ``Config`` class once plugins are loaded
(``twpcore.app.check_instances``), so one file can be fully checked by ``twp config check``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs

from twpcore.kinds import Kind
from twpcore.schema import SECRET_KEY, ConfigErrors, ConfigProblem, Duration, join, looks_secret, setting, show, structure

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<password>[^@/\s]+)(?P<at>@)", re.I)


@attrs.frozen
class StorageConfig:
    url: str = setting("sqlite:///var/twp.db", help="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db")
    backup_dir: str = setting("var/backups", help="where `twp backup` writes when given no file")


@attrs.frozen
class HttpConfig:
    host: str = setting("127.0.0.1", help="address to listen on")
    port: int = setting(8080, min=1, max=65535, help="TCP port to listen on")
    public_url: str | None = setting(None, help="URL printed for people and used in links")
    max_request_bytes: int = setting(1_048_576, min=1024, help="largest accepted request body")
    websocket_queue: int = setting(
        500, min=1, max=100_000, help="events buffered for one WebSocket client; a client further behind is sent system.resync"
    )


@attrs.frozen
class LimitsConfig:
    companies: int = setting(50, min=1, help="maximum number of companies (prerequisites: 50)")
    domains_per_company: int = setting(50, min=1, help="maximum domains in one company (prerequisites: 50)")
    users_per_domain: int = setting(0, min=0, help="maximum users in one domain; 0 means no limit (500 recommended)")
    calls_per_device: int = setting(
        32, min=1, max=1000, help="calls kept at one device; past it the PBX's stalest call there is dropped with a warning"
    )
    calls_kept_after_link_down: Duration = setting(
        Duration(60),
        min=0,
        max=86400,
        help="how long the calls of a device stay listed after its PBX link went down; then they are cleared (0: at once)",
    )
    monitor_retry: Duration = setting(
        Duration(30),
        min=0,
        max=3600,
        help="how long before a device whose monitoring the PBX refused or did not answer is tried again (0: only when the link comes back)",
    )


@attrs.frozen
class AuthConfig:
    token_lifetime: Duration = setting(Duration(8 * 3600), min=60, help="how long a login token stays valid")
    admin_token_lifetime: Duration = setting(Duration(3600), min=60, help="how long an admin token stays valid")
    session_max_lifetime: Duration = setting(
        Duration(3 * 86400), min=60, help="how long refreshed user tokens may go on, counted from the login (POST /auth/refresh)"
    )
    admin_session_max_lifetime: Duration = setting(Duration(12 * 3600), min=60, help="the same for admin tokens")
    lockout_threshold: int = setting(5, min=0, max=1000, help="failed logins of one login name before it is locked out; 0 turns lock-out off")
    lockout_address_threshold: int = setting(
        50, min=0, max=100_000, help="failed logins from one source address before it is locked out; 0 turns it off"
    )
    lockout_base_delay: Duration = setting(Duration(60), min=0.01, help="first lock-out; each further failure doubles it")
    lockout_max_delay: Duration = setting(Duration(900), min=0.01, help="longest lock-out")
    lockout_reset_after: Duration = setting(Duration(12 * 3600), min=0.01, help="failures are forgotten after this long without a new one")
    password_min_length: int = setting(10, min=1, max=1024, help="TWS passwords: fewest characters")
    password_min_classes: int = setting(2, min=1, max=4, help="TWS passwords: fewest character classes among lower case, upper case, digits, others")
    password_refuse_login: bool = setting(
        True, help="TWS passwords: refuse the login as password (in any case, reversed, or with digits or symbols added)"
    )
    password_refuse_common: bool = setting(True, help="TWS passwords: refuse the well-known passwords of twpcore/passwords.py")
    password_check_concurrency: int = setting(
        0, min=0, max=1024, help="password checks (argon2 at 64 MiB each, LDAP binds) running at once on all login doors; 0 means the number of CPUs"
    )
    password_check_queue: int = setting(
        64, min=0, max=100_000, help="password checks waiting for a turn; a login beyond them is answered 429 busy with Retry-After"
    )
    reset_code_lifetime: Duration = setting(Duration(86400), min=60, help="how long a password-reset code from an administrator stays valid")
    websocket_recheck: Duration = setting(
        Duration(30),
        min=0.05,
        max=3600,
        help="how often an open events WebSocket checks that its token still works (revoked elsewhere, user disabled)",
    )
    methods: dict[str, dict[str, Any]] = setting(factory=dict, help="options per auth method: [auth.methods.<Name>]")


@attrs.frozen
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting("INFO", help="log level")
    syslog: str | None = setting(None, help='also send logs to a syslog server (guide 10.6): "udp://host:514" or "tcp://host:514"')
    syslog_facility: str = setting("daemon", help="syslog facility: daemon, local0 ... local7, user")

    def __attrs_post_init__(self) -> None:
        from twpcore.logs import parse_syslog

        if self.syslog is not None:
            parse_syslog(self.syslog, self.syslog_facility)  # raises ValueError naming the problem


@attrs.frozen
class ClusterConfig:
    """``[cluster]``: several nodes on one PostgreSQL and one Redis (docs/cluster.md); empty: one process, as before."""

    redis: str | None = setting(None, help='Redis URL shared by the nodes, e.g. "redis://redis-host:6379/0"; unset: one process')
    node: str | None = setting(None, help="this node's name, unique in the cluster (letters, digits, - and _); required with redis")
    lease_ttl: Duration = setting(Duration(3.0), help="how long a PBX link or job lease lives unrenewed; takeover happens within about this")
    prefix: str = setting("twp", help="prefix of every Redis key, so several clusters can share one Redis")

    def __attrs_post_init__(self) -> None:
        if self.redis is None:
            return
        if not self.redis.startswith(("redis://", "rediss://", "unix://")):
            shown = _URL_PASSWORD.sub(r"\g<head>***\g<at>", self.redis)
            raise ValueError(f'redis: expected a redis://, rediss:// or unix:// URL such as "redis://redis-host:6379/0", got "{shown}"')
        if not self.node or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.node):
            raise ValueError(f'node: expected a node name of letters, digits, "-" and "_" (set node = "a" on one node, "b" on the next...), '
                             f"got {self.node!r}")
        if not 1.0 <= float(self.lease_ttl) <= 60.0:
            raise ValueError(f"lease_ttl: expected 1 s to 60 s, got {float(self.lease_ttl)} s")


@attrs.frozen
class DemoConfig:
    seed: bool = setting(False, help="create the demo company, domain, users and groups when the store is empty")


@attrs.frozen
class InstanceSpec:
    """One configured plugin instance, as written in the config file."""

    kind: Kind
    name: str
    type_name: str
    path: str
    """Key path of the table, for error messages (``pbx.links.paris``)."""
    enabled: bool = True
    company: str | None = None
    domain: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    """Plugin-specific keys, checked against the type's ``Config`` class."""
    settings: dict[str, Any] = attrs.field(factory=dict)
    """Kernel-side keys of the instance (a directory's type, priority, fields...: ``DIRECTORY_KEYS``)."""


# Which table configures which kind, and the key that names the plugin type.
INSTANCE_TABLES: dict[Kind, tuple[tuple[str, ...], str]] = {
    Kind.PBX_DRIVER: (("pbx", "links"), "driver"),
    Kind.DIRECTORY_CONNECTOR: (("directories",), "connector"),
    Kind.SMS_PROVIDER: (("sms", "providers"), "provider"),
}
COMMON_INSTANCE_KEYS = ("enabled", "company", "domain")
DIRECTORY_KEYS = ("name", "type", "priority", "fields", "labels", "merge", "sync_daily", "sync_time", "sync_every")
"""Keys of a ``[directories.<name>]`` table read by the directory service, not by the connector."""


@attrs.frozen
class Config:
    """The whole, checked configuration."""

    source: str = "<defaults>"
    storage: StorageConfig = attrs.field(factory=StorageConfig)
    http: HttpConfig = attrs.field(factory=HttpConfig)
    limits: LimitsConfig = attrs.field(factory=LimitsConfig)
    auth: AuthConfig = attrs.field(factory=AuthConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    demo: DemoConfig = attrs.field(factory=DemoConfig)
    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)
    disabled_plugins: tuple[str, ...] = ()
    plugin_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    instances: tuple[InstanceSpec, ...] = ()
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Config:
        return parse(data, source)

    def instances_of(self, kind: Kind) -> list[InstanceSpec]:
        return [i for i in self.instances if i.kind == kind]

    def redacted(self) -> dict[str, Any]:
        """The config as a plain dict with every secret replaced by ``***``."""
        return redact(self.raw)


SECTIONS = {
    "storage": StorageConfig,
    "http": HttpConfig,
    "limits": LimitsConfig,
    "logging": LoggingConfig,
    "demo": DemoConfig,
    "cluster": ClusterConfig,
}
TOP_LEVEL = (*SECTIONS, "auth", "plugins", "pbx", "directories", "sms")


def load(path: str | Path) -> Config:
    """Read and check a TOML config file; raise ``ConfigErrors`` naming the file and keys."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigErrors([ConfigProblem(source, "", "file not found; pass --config with the path of your twp.toml")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigErrors([ConfigProblem(source, "", f"cannot be read: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigErrors([_syntax_problem(source, text, exc)]) from None
    return parse(data, source)


def _syntax_problem(source: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigProblem:
    """A TOML syntax error, placed at the table and key of the faulty line when it has one."""
    message = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if not m:
        return ConfigProblem(source, "", f"is not valid TOML: {message}; fix the syntax at that place")
    lineno = int(m.group(1))
    lines = text.splitlines()
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    table = ""
    for previous in reversed(lines[: lineno - 1]):
        header = re.match(r"^\s*\[+\s*([^\]]+?)\s*\]+", previous)
        if header:
            table = header.group(1).replace(" ", "")
            break
    key = re.match(r"^\s*([A-Za-z0-9_.\"-]+)\s*=", line)
    path = join(table, key.group(1).strip('"')) if key else table
    reason = message[: m.start()].strip()
    shown = "(not shown: the key looks secret)" if looks_secret(path) else repr(line.strip()[:120])
    return ConfigProblem(
        source, path, f"is not valid TOML at line {lineno}, column {m.group(2)}: {reason}; the line reads {shown}; fix the syntax there"
    )


def parse(data: dict[str, Any], source: str) -> Config:
    problems: list[ConfigProblem] = []
    kwargs: dict[str, Any] = {"source": source, "raw": data}
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(key, TOP_LEVEL, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            problems.append(ConfigProblem(source, key, f"unknown section{hint}; known sections: {', '.join(TOP_LEVEL)}"))
    for name, cls in SECTIONS.items():
        kwargs[name] = _section(cls, data.get(name, {}), source, name, problems)
    auth_raw = data.get("auth", {})
    kwargs["auth"] = _section(AuthConfig, auth_raw, source, "auth", problems)
    if isinstance(auth_raw, dict) and isinstance(auth_raw.get("methods"), dict):
        for mname, table in auth_raw["methods"].items():
            if not isinstance(table, dict):
                problems.append(ConfigProblem(source, join("auth.methods", mname), f"expected a table, got {show(table)}"))
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        problems.append(ConfigProblem(source, "plugins", f"expected a table, got {show(plugins)}"))
        plugins = {}
    disabled = plugins.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(x, str) for x in disabled):
        problems.append(ConfigProblem(source, "plugins.disabled", f"expected an array of plugin names, got {show(disabled)}"))
        disabled = []
    kwargs["disabled_plugins"] = tuple(disabled)
    options = {}
    for key, value in plugins.items():
        if key == "disabled":
            continue
        if not isinstance(value, dict):
            problems.append(ConfigProblem(source, join("plugins", key), f"expected a table of options for plugin {key!r}, got {show(value)}"))
        else:
            options[key] = value
    kwargs["plugin_options"] = options
    kwargs["instances"] = tuple(_instances(data, source, problems))
    if problems:
        raise ConfigErrors(problems)
    return Config(**kwargs)


def _section(cls: type, value: Any, source: str, path: str, problems: list[ConfigProblem]) -> Any:
    try:
        return structure(cls, value, source=source, path=path)
    except ConfigErrors as exc:
        problems.extend(exc.problems)
        return cls()


def _instances(data: dict[str, Any], source: str, problems: list[ConfigProblem]) -> list[InstanceSpec]:
    specs: list[InstanceSpec] = []
    for kind, (keys, type_key) in INSTANCE_TABLES.items():
        table: Any = data
        path = ""
        for k in keys:
            if not isinstance(table, dict):
                break
            path = join(path, k)
            table = table.get(k, {})
        if not isinstance(table, dict):
            problems.append(ConfigProblem(source, path, f"expected a table of {kind.label} instances, got {show(table)}"))
            continue
        if len(keys) > 1 and isinstance(data.get(keys[0]), dict):
            extra = set(data[keys[0]]) - {keys[1]}
            for k in sorted(extra):
                hint = f' (did you mean "{keys[1]}"?)' if difflib.get_close_matches(k, [keys[1]], n=1) else ""
                problems.append(ConfigProblem(source, join(keys[0], k), f"unknown key{hint}; {kind.label} instances go under [{path}.<name>]"))
        for name, body in table.items():
            ipath = join(path, name)
            if not isinstance(body, dict):
                problems.append(ConfigProblem(source, ipath, f"expected a table, got {show(body)}"))
                continue
            type_name = body.get(type_key)
            if not isinstance(type_name, str) or not type_name:
                problems.append(
                    ConfigProblem(
                        source,
                        join(ipath, type_key),
                        f"is required: the {kind.label} type that serves this instance, "
                        f"got {show(type_name) if type_name is not None else 'nothing'}",
                    )
                )
                continue
            enabled = body.get("enabled", True)
            if not isinstance(enabled, bool):
                problems.append(ConfigProblem(source, join(ipath, "enabled"), f"expected true or false, got {show(enabled)}"))
                continue
            bad = False
            for k in ("company", "domain"):
                if k in body and not isinstance(body[k], str):
                    problems.append(ConfigProblem(source, join(ipath, k), f"expected a string ({k} name), got {show(body[k])}"))
                    bad = True
            if bad:
                continue
            kernel_keys = DIRECTORY_KEYS if kind == Kind.DIRECTORY_CONNECTOR else ()
            options = {k: v for k, v in body.items() if k not in (type_key, *COMMON_INSTANCE_KEYS, *kernel_keys)}
            settings = {k: v for k, v in body.items() if k in kernel_keys}
            specs.append(InstanceSpec(kind, name, type_name, ipath, enabled, body.get("company"), body.get("domain"), options, settings))
    return specs


def redact(value: Any, key: str = "") -> Any:
    """Replace secret-looking values (by key name, or passwords inside URLs) with ``***``.

    ``{ env = "VAR" }`` tables are kept as they are: they name a variable, not its value.
    """
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {"env": value["env"]}
        return {k: ("***" if SECRET_KEY.search(k) and not isinstance(v, dict) and v not in (None, "") else redact(v, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m["head"] + "***" + m["at"], value)
    return value
