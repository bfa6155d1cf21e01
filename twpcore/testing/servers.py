"""Real servers started for tests: PostgreSQL, Redis, OpenLDAP (slapd), and a private unixODBC set-up.

Tests use the real component wherever Debian ships one (see ``DESIGN.md``). Each
server here is a ``ServerProcess``: ``start()`` prepares a private temporary
directory, runs the server in the foreground as a child process listening on
127.0.0.1 on a free port, writes its output to a log file in that directory and waits
until it answers; ``stop()`` ends it and removes the directory. A server that does not
come up raises ``ServerStartError`` with the tail of its log.

Some servers (PostgreSQL) refuse to run as root, which is what CI is. When the
effective uid is 0 such a server runs as its Debian system user (``postgres``), through
``setpriv`` (or ``runuser``), and its temporary directory is given to that user.

``TwpServeProcess`` runs TWP itself, ``twp serve`` as a child process, for the tests that need
the whole server as a user starts it (its command line, its shutdown, a browser, a fuzzer)::

    with TwpServeProcess(tmp_path, demo=True) as twp:    # demo data and the simulated PBX
        requests.post(f"{twp.base_url}/api/v1/auth/admin-login", json={"login": "admin", "password": twp.password})

This module imports nothing from the kernel, so plugin test suites may use it alone::

    with PostgresServer() as pg:
        url = pg.create_database("directory")
        engine = sqlalchemy.create_engine(url)

    with SlapdServer(entries=[...]) as ldap:      # size limit 1,000 like Active Directory
        ldap3.Connection(ldap.url, ldap.reader_dn, ldap.reader_password)

    odbc = OdbcEnvironment(tmp_path)              # odbcinst.ini listing the installed drivers
    with odbc.activated():                        # ODBCSYSINI / ODBCINI point at it
        pyodbc.connect(f"Driver={{SQLite3}};Database={path}")
        write_mdb(tmp_path / "a.mdb", "Contacts", [("Id", "long"), ("Nom", "text")], [(1, "Martin")])
        pyodbc.connect(f"Driver={{MDBTools}};DBQ={tmp_path / 'a.mdb'}")
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import glob
import json
import logging
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import attrs

log = logging.getLogger(__name__)

__all__ = [
    "ACTIVE_DIRECTORY_SCHEMA", "ODBC_DRIVERS", "OdbcEnvironment", "PostgresServer", "RedisServer", "ServerProcess",
    "ServerStartError", "SlapdServer", "TwpServeProcess", "find_free_port", "find_odbc_driver", "make_test_certificates",
    "to_ldif", "write_mdb",
]


class ServerStartError(RuntimeError):
    """A test server could not be found, prepared or started."""


def find_free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _version_key(path: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/15/bin``-like paths: the version as numbers."""
    return tuple(int(part) for part in re.findall(r"\d+", path)) or (0,)


# Servers still running when the interpreter exits (a test run killed half-way, a
# fixture that forgot to stop) are stopped here, so no postgres outlives pytest.
_running: set[ServerProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        try:
            server.stop()
        except Exception:  # best effort at exit
            log.exception("could not stop %s at exit", server.name)


class ServerProcess:
    """One server run in the foreground as a child process, in its own temp directory.

    Subclasses set ``name`` and ``binaries``, may set ``system_user`` when the server
    refuses to run as root, and implement ``prepare()`` (one-off setup such as
    ``initdb``), ``command()`` (the server's argv) and ``is_ready()``.
    """

    name: ClassVar[str] = "server"
    """Short name used in log file names and error messages."""
    binaries: ClassVar[tuple[str, ...]] = ()
    """Programs the server needs; ``available()`` is true when all are found."""
    system_user: ClassVar[str | None] = None
    """Debian system user to run as when we are root; ``None`` to run as root."""
    search_dirs: ClassVar[tuple[str, ...]] = ()
    """Glob patterns of directories searched before PATH, best match first."""
    start_timeout: ClassVar[float] = 20.0
    """Seconds ``start()`` waits for ``is_ready()``."""
    stop_timeout: ClassVar[float] = 10.0
    """Seconds ``stop()`` waits after the polite signal before killing."""
    stop_signal: ClassVar[int] = signal.SIGTERM
    """Signal asking the server to shut down cleanly."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int = 0
        self.tmpdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- finding binaries ---------------------------------------------------------

    @classmethod
    def find_binary(cls, program: str) -> str | None:
        """Full path of ``program``: first in ``search_dirs`` (highest version), then PATH."""
        candidates: list[str] = []
        for pattern in cls.search_dirs:
            candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
        for directory in candidates:
            path = os.path.join(directory, program)
            if os.access(path, os.X_OK):
                return path
        return shutil.which(program)

    @classmethod
    def available(cls) -> bool:
        """Whether every program the server needs is installed (and, as root, its user)."""
        if os.geteuid() == 0 and cls.system_user is not None:
            try:
                pwd.getpwnam(cls.system_user)
            except KeyError:
                return False
        return all(cls.find_binary(program) for program in cls.binaries)

    def binary(self, program: str) -> str:
        path = self.find_binary(program)
        if path is None:
            raise ServerStartError(
                f"{self.name}: program {program!r} not found in {list(self.search_dirs)} "
                "or PATH; install the system packages with `bash scripts/install-system-deps.sh`"
            )
        return path

    # -- running as the right user -------------------------------------------------

    @property
    def run_as(self) -> pwd.struct_passwd | None:
        """The system user the server runs as, or ``None`` to run as ourselves."""
        if os.geteuid() != 0 or self.system_user is None:
            return None
        try:
            return pwd.getpwnam(self.system_user)
        except KeyError:
            raise ServerStartError(
                f"{self.name}: refuses to run as root and system user {self.system_user!r} "
                "does not exist; install the Debian package that creates it "
                "(`bash scripts/install-system-deps.sh`) or run the tests as a normal user"
            ) from None

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs as ``run_as`` when we are root."""
        user = self.run_as
        if user is None:
            return list(argv)
        # setpriv execs the program itself (no PAM session, no extra process), so the
        # Popen pid is the server's and signals reach it directly.
        setpriv = shutil.which("setpriv")
        if setpriv:
            return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                    "--init-groups", "--", *argv]
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", user.pw_name, "--", *argv]
        raise ServerStartError(f"{self.name}: need setpriv or runuser to run as {user.pw_name}")

    def environment(self) -> dict[str, str]:
        """Environment for the server's processes; subclasses drop variables that leak in."""
        env = dict(os.environ)
        if self.run_as is not None:
            env["HOME"] = str(self.tmpdir)
            env["USER"] = env["LOGNAME"] = self.run_as.pw_name
        return env

    def run(self, argv: Sequence[str], what: str) -> str:
        """Run a setup command to completion; raise ``ServerStartError`` with its output."""
        result = subprocess.run(
            self.wrap(argv), cwd=self.tmpdir, env=self.environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=120, check=False,
        )
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            raise ServerStartError(
                f"{self.name}: {what} failed with exit code {result.returncode}: "
                f"{' '.join(argv)}\n{output[-4000:]}"
            )
        return output

    # -- the log -------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines the server wrote, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    # -- what subclasses provide ---------------------------------------------------

    def prepare(self) -> None:
        """One-off setup in ``self.tmpdir`` before the first start."""

    def command(self) -> list[str]:
        """The server's argv, running in the foreground on ``self.host:self.port``."""
        raise NotImplementedError

    def is_ready(self) -> bool:
        """Whether the server answers requests yet."""
        raise NotImplementedError

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> Self:
        """Prepare a temp directory, start the server and wait until it answers."""
        if self.process is not None:
            raise ServerStartError(f"{self.name}: already started on port {self.port}")
        for program in self.binaries:
            self.binary(program)
        user = self.run_as
        # /tmp rather than $TMPDIR: unix socket paths are short, and the system user
        # must be able to reach the directory (root's TMPDIR may be under /root).
        base = "/tmp" if os.path.isdir("/tmp") else None
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"twp-{self.name}-", dir=base))
        try:
            if user is not None:
                os.chown(self.tmpdir, user.pw_uid, user.pw_gid)
            self.prepare()
            self._launch()
        except BaseException:
            self._cleanup()
            raise
        _running.add(self)
        return self

    def _launch(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = find_free_port(self.host)
            argv = self.command()
            with open(self.log_path, "ab") as logfile:
                self.process = subprocess.Popen(
                    self.wrap(argv), cwd=self.tmpdir, env=self.environment(),
                    stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                )
            try:
                self._wait_ready(argv)
                log.info("%s listening on %s:%s (%s)", self.name, self.host, self.port, self.tmpdir)
                return
            except ServerStartError:
                self._terminate()
                # Another process may have taken the port between probing and binding.
                if attempt < attempts and "already in use" in self.log_tail(5):
                    continue
                raise

    def _wait_ready(self, argv: Sequence[str]) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.name}: exited with code {code} while starting: {' '.join(argv)}\n"
                    f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name}: not ready on {self.host}:{self.port} after "
                    f"{self.start_timeout:.0f} s: {' '.join(argv)}\n"
                    f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal)
        # A server paused by a test (``pause()``) only acts on the signal once resumed.
        process.send_signal(signal.SIGCONT)
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, self.stop_timeout)
            process.kill()
            process.wait()

    def _cleanup(self) -> None:
        self._terminate()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def stop(self) -> None:
        """Stop the server and remove its temp directory; safe to call twice."""
        _running.discard(self)
        self._cleanup()

    # -- failures, for tests ---------------------------------------------------------

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is answered (a time-out)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()``."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would; ``stop()`` still cleans up."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _toml_value(value: Any) -> str:
    """A TOML value for a string, a number, a boolean or a list of them (JSON spells these as TOML does)."""
    return json.dumps(value)


class TwpServeProcess:
    """``twp serve`` run as a child process on 127.0.0.1, with its own config and SQLite store in ``directory``.

    ``start()`` writes ``directory/twp.toml`` (unless ``config`` is given), starts
    ``python -m twpcore.cli --config twp.toml serve``, reads the first admin's one-time
    password from the banner the server prints, and waits until ``GET /api/v1/health``
    answers 200.  ``stop()`` sends SIGTERM (or the signal given) and waits for the exit.
    The server's log (its stderr) is ``log_path``; what it printed on stdout is ``printed``.

    ``demo=True`` adds the demo data (``[demo] seed``) and the simulated PBX: the ``pbxsim``
    plugin listening on ``pbx_port``, with devices 201-203 and no generated traffic, and a
    PBX link ``demo`` (MX-One driver, company Demo, domain Paris) to it; ``pbxsim`` overrides
    or adds ``[plugins.pbxsim]`` options (``{"answer_after": "60s"}``).  ``extra_config`` is
    TOML appended to the generated file.
    """

    def __init__(self, directory: Path | str, *, demo: bool = False, port: int | None = None, pbxsim: Mapping[str, Any] | None = None,
                 extra_config: str = "", config: Path | str | None = None, env: Mapping[str, str] | None = None,
                 start_timeout: float = 120.0, stop_timeout: float = 20.0) -> None:
        self.directory = Path(directory)
        self.demo = demo
        self.port = port or find_free_port()
        self.pbx_port = find_free_port() if demo else None
        self.pbxsim = dict(pbxsim or {})
        self.extra_config = extra_config
        self.config_path = Path(config) if config is not None else self.directory / "twp.toml"
        self._write_config = config is None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.directory / "serve.log"
        """The server's stderr: its log."""
        self.printed: list[str] = []
        """The lines the server printed on stdout (the banner with the password)."""
        self.password: str | None = None
        """The first admin's one-time password, as the banner printed it."""
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The ``twp.toml`` that ``start()`` writes."""
        text = (f'[storage]\nurl = "sqlite:///{self.directory}/var/twp.db"\nbackup_dir = "{self.directory}/backups"\n'
                f'[http]\nhost = "127.0.0.1"\nport = {self.port}\n')
        if self.demo:
            options = {"listen": f"127.0.0.1:{self.pbx_port}", "traffic_interval": "0s", "devices": ["201-203"], **self.pbxsim}
            text += "[demo]\nseed = true\n[plugins.pbxsim]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in options.items())
            text += (f'[pbx.links.demo]\ndriver = "mxone"\ncompany = "Demo"\ndomain = "Paris"\nhost = "127.0.0.1"\n'
                     f"port = {self.pbx_port}\ncapacity = 100\n")
        return text + self.extra_config

    def argv(self) -> list[str]:
        """The command ``start()`` runs (for a test that runs it itself, for example to see it fail)."""
        return [sys.executable, "-m", "twpcore.cli", "--config", str(self.config_path), "serve"]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def start(self) -> Self:
        """Write the config, start the server, read the password it prints, wait until it is healthy."""
        if self.process is not None:
            raise ServerStartError(f"twp serve: already started on port {self.port}")
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._write_config:
            self.config_path.write_text(self.config_text())
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(self.argv(), cwd=self.directory, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=log_file, text=True)
        threading.Thread(target=self._read_stdout, name=f"twp-serve-{self.port}-stdout", daemon=True).start()
        try:
            self._wait_password()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_stdout(self) -> None:
        process = self.process
        assert process is not None and process.stdout is not None
        for line in process.stdout:  # read to the end, so a chatty server never blocks on a full pipe
            self._lines.put(line)
        self._lines.put(None)

    def _fail(self, why: str) -> ServerStartError:
        return ServerStartError(f"twp serve ({self.config_path}): {why}\n--- stdout ---\n{''.join(self.printed)}"
                                f"--- last lines of {self.log_path} ---\n{self.log_text()[-4000:]}")

    def _wait_password(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while self.password is None:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise self._fail(f"printed no admin password within {self.start_timeout:.0f} s") from None
            if line is None:
                assert self.process is not None
                raise self._fail(f"exited with code {self.process.wait()} before printing the admin password")
            self.printed.append(line)
            if match := re.match(r"^\s+password: (\S+)$", line):
                self.password = match.group(1)

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until ``GET /api/v1/health`` answers 200 (the banner comes just before the socket is served)."""
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        while True:
            if self.process is None or self.process.poll() is not None:
                raise self._fail("exited before it answered /api/v1/health")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v1/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise self._fail("did not answer /api/v1/health with 200 in time")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` and wait for the exit (kill after ``stop_timeout``); the exit code, None if never started."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("twp serve did not stop within %.0f s; killing it", self.stop_timeout)
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@cache
def _utf8_locale() -> str:
    """``C.UTF-8`` where the C library has it (Debian 12 does), else ``C``."""
    try:
        names = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "C"
    available = {name.lower().replace("-", "") for name in names.split()}
    return "C.UTF-8" if "c.utf8" in available else "C"


class PostgresServer(ServerProcess):
    """A throw-away PostgreSQL cluster: superuser ``twp``, trust auth, no durability.

    Durability is traded for speed (``fsync``, ``full_page_writes`` and
    ``synchronous_commit`` off): the cluster lives only as long as the test.
    """

    name = "postgres"
    binaries = ("initdb", "postgres", "pg_isready")
    system_user = "postgres"
    search_dirs = ("/usr/lib/postgresql/*/bin",)
    # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, stop at once.
    stop_signal = signal.SIGINT
    superuser: ClassVar[str] = "twp"

    @property
    def data_dir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "data"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in super().environment().items() if not k.startswith("PG")}
        env["LC_ALL"] = _utf8_locale()
        return env

    def prepare(self) -> None:
        self.run(
            [self.binary("initdb"), "-D", str(self.data_dir), "--auth=trust",
             "-U", self.superuser, "--encoding=UTF8", f"--locale={_utf8_locale()}", "--no-sync"],
            "initdb",
        )

    def command(self) -> list[str]:
        assert self.tmpdir is not None
        return [
            self.binary("postgres"), "-D", str(self.data_dir),
            "-c", f"listen_addresses={self.host}",
            "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.tmpdir}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
        ]

    def is_ready(self) -> bool:
        result = subprocess.run(
            [self.binary("pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
             "-U", self.superuser, "-d", "postgres", "-t", "1"],
            env=self.environment(), stdin=subprocess.DEVNULL, check=False,
        )
        return result.returncode == 0

    # -- for tests -----------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string, for ``psycopg.connect()``."""
        return f"host={self.host} port={self.port} user={self.superuser} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL using the psycopg 3 driver."""
        if not self.port:
            raise ServerStartError("postgres: url() called before start()")
        return f"postgresql+psycopg://{self.superuser}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def create_role(self, name: str, password: str) -> None:
        """Create a login role that must give ``password`` over TCP (the superuser stays on trust).

        For tests of refused credentials: a line for the role goes first in ``pg_hba.conf``
        and the configuration is reloaded.
        """
        import psycopg
        from psycopg import sql

        hba = self.data_dir / "pg_hba.conf"
        rule = f"host all {name} 0.0.0.0/0 scram-sha-256\nhost all {name} ::/0 scram-sha-256\n"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
            # Rewrite in place so the file keeps its owner (the postgres user when root).
            text = hba.read_text()
            with open(hba, "w") as handle:
                handle.write(rule + text)
            conn.execute("SELECT pg_reload_conf()")


# -- Redis ---------------------------------------------------------------------------

class RedisServer(ServerProcess):
    """A throw-away ``redis-server`` (Debian ``redis-server``): no persistence, no password, 127.0.0.1 only.

    ``kill()`` and ``pause()`` stand for a crashed or hung Redis; ``start_again()`` brings
    it back on the same port (empty, as a restarted Redis without persistence is).
    """

    name = "redis"
    binaries = ("redis-server",)

    def command(self) -> list[str]:
        assert self.tmpdir is not None
        return [self.binary("redis-server"), "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.tmpdir), "--protected-mode", "no", "--loglevel", "warning"]

    def is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``, for ``[cluster] redis``."""
        if not self.port:
            raise ServerStartError("redis: url read before start()")
        return f"redis://{self.host}:{self.port}/0"

    def start_again(self) -> None:
        """Start the server again on the same port after ``kill()``."""
        assert self.tmpdir is not None, "redis: start_again() before start()"
        argv = self.command()
        with open(self.log_path, "ab") as logfile:
            self.process = subprocess.Popen(self.wrap(argv), cwd=self.tmpdir, env=self.environment(),
                                            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT)
        self._wait_ready(argv)
        _running.add(self)


# -- OpenLDAP ------------------------------------------------------------------------

ACTIVE_DIRECTORY_SCHEMA = """\
# The part of Microsoft Active Directory's schema that address books read, with AD's
# own OIDs and names, so that a real slapd can stand in for a domain controller in
# tests.  Binary attributes (objectGUID, objectSid, thumbnailPhoto) are octet strings
# as in AD; sAMAccountType and userAccountControl are integers, so AD's filters
# (sAMAccountType=805306368, userAccountControl:1.2.840.113556.1.4.803:=2) work as-is.
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.146 NAME 'objectSid'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.782 NAME 'objectCategory'
    EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.302 NAME 'sAMAccountType'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.146 NAME 'company'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.721 NAME 'ipPhone'
    EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.18 NAME 'otherTelephone'
    EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
attributetype ( 1.2.840.113556.1.4.647 NAME 'otherMobile'
    EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
attributetype ( 1.2.840.113556.1.2.277 NAME 'otherHomePhone'
    EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
attributetype ( 1.2.840.113556.1.4.646 NAME 'otherFacsimileTelephoneNumber'
    EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
attributetype ( 2.16.840.1.113730.3.1.35 NAME 'thumbnailPhoto'
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.464 NAME 'wWWHomePage'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
    MAY ( objectGUID $ objectSid $ objectCategory $ sAMAccountName $ sAMAccountType $
          userAccountControl $ userPrincipalName $ company $ department $ ipPhone $
          otherTelephone $ otherMobile $ otherHomePhone $ otherFacsimileTelephoneNumber $
          thumbnailPhoto $ wWWHomePage $ givenName $ initials $ displayName $ mail $
          mobile $ homePhone $ pager $ co $ info $ manager $ streetAddress ) )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP user STRUCTURAL )
objectclass ( 1.2.840.113556.1.5.15 NAME 'contact' SUP organizationalPerson STRUCTURAL
    MAY ( objectGUID $ objectCategory $ company $ department $ ipPhone $ otherTelephone $
          otherMobile $ otherHomePhone $ otherFacsimileTelephoneNumber $ thumbnailPhoto $
          wWWHomePage $ givenName $ initials $ displayName $ mail $ mobile $ homePhone $
          pager $ co $ info $ manager $ streetAddress ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL MUST cn
    MAY ( objectGUID $ objectSid $ objectCategory $ sAMAccountName $ sAMAccountType $
          member $ mail $ description ) )
"""
"""Active Directory's address-book attributes and classes for slapd (``SlapdServer(active_directory=True)``)."""

LdapValue = str | bytes | int
LdapEntry = tuple[str, Mapping[str, LdapValue | Sequence[LdapValue]]]


def _ldif_line(name: str, value: LdapValue) -> str:
    if isinstance(value, int):
        value = str(value)
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    # RFC 2849: anything but printable ASCII, or a value that starts with a space, a
    # colon or "<" or ends with a space, is written in base64.
    safe = (
        isinstance(value, str) and value.isascii() and value.isprintable()
        and not value.startswith((" ", ":", "<")) and not value.endswith(" ")
    )
    if safe:
        return f"{name}: {raw.decode('ascii')}"
    return f"{name}:: {base64.b64encode(raw).decode('ascii')}"


def to_ldif(entries: Iterable[LdapEntry]) -> str:
    """LDIF for ``(dn, {attribute: value or values})`` pairs; bytes and non-ASCII go in base64."""
    blocks = []
    for dn, attributes in entries:
        lines = [_ldif_line("dn", dn)]
        for name, values in attributes.items():
            if isinstance(values, (str, bytes, int)):
                values = [values]
            lines += [_ldif_line(name, value) for value in values]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


@attrs.frozen
class TlsFiles:
    """A private CA and a server certificate it signed, as PEM files."""

    ca_file: Path
    """The CA certificate clients trust (``ca_file`` in a TLS config)."""
    cert_file: Path
    """The server's certificate."""
    key_file: Path
    """The server's private key (unencrypted)."""


def make_test_certificates(directory: Path | str, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Make a throw-away CA and a server certificate for ``hosts`` with ``openssl`` (valid 2 days)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerStartError("openssl not found; install it with `bash scripts/install-system-deps.sh`")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key_file, csr, cert_file = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    sans = ",".join(f"IP:{h}" if re.fullmatch(r"[\d.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", h) else f"DNS:{h}" for h in hosts)
    ext.write_text(
        f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_file), "-days", "2",
         "-subj", "/CN=TWP test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", str(key_file), "-out", str(csr), "-subj", f"/CN={hosts[0]}"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert_file), "-days", "2", "-extfile", str(ext)],
    ]
    for argv in steps:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise ServerStartError(f"openssl failed: {' '.join(argv)}\n{result.stderr[-2000:]}")
    return TlsFiles(ca_file, cert_file, key_file)


class SlapdServer(ServerProcess):
    """A throw-away OpenLDAP server (mdb backend) that caps searches like Active Directory.

    The tree: ``suffix`` (an organization), ``ou=people,<suffix>`` for entries, the
    root DN ``cn=admin,<suffix>`` (not subject to limits, as in slapd) and a reader
    account ``cn=reader,<suffix>`` that is: with the default ``size_limit`` of 1,000 a
    plain search by the reader stops at 1,000 entries with "size limit exceeded", a
    paged search (RFC 2696) with pages of at most 1,000 returns everything, and a larger
    page is refused ("illegal pagedResults page size"), which is what AD's MaxPageSize does.

    ``entries`` are loaded with ``slapadd`` before the server starts (fast: 20,000 entries
    in about a second); ``add()``, ``modify()`` and ``delete()`` change a running server.
    ``tls=True`` makes a private CA and a certificate for ``tls_names`` (default: the
    host and localhost; ``ca_file`` is the CA) and listens for LDAPS on ``ldaps_url``
    besides StartTLS on ``url``.  ``active_directory=True`` loads
    ``ACTIVE_DIRECTORY_SCHEMA``.  slapd runs as root when the tests do.
    """

    name = "slapd"
    binaries = ("slapd", "slapadd", "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete")
    search_dirs = ("/usr/sbin",)
    schema_dirs: ClassVar[tuple[str, ...]] = ("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
    module_dirs: ClassVar[tuple[str, ...]] = ("/usr/lib/ldap", "/usr/lib/openldap", "/usr/lib64/openldap", "/usr/libexec/openldap")

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        suffix: str = "dc=example,dc=com",
        entries: Iterable[LdapEntry] = (),
        size_limit: int | None = 1000,
        tls: bool = False,
        tls_names: Sequence[str] | None = None,
        active_directory: bool = False,
        root_password: str = "root-secret",
        reader_password: str = "reader-secret",
    ) -> None:
        super().__init__(host)
        self.suffix = suffix
        self.initial_entries = list(entries)
        self.size_limit = size_limit
        self.tls = tls
        self.tls_names = tuple(tls_names) if tls_names else (host, "localhost")
        self.active_directory = active_directory
        self.root_dn = f"cn=admin,{suffix}"
        self.root_password = root_password
        self.reader_dn = f"cn=reader,{suffix}"
        self.reader_password = reader_password
        self.people_dn = f"ou=people,{suffix}"
        self.ldaps_port = 0
        self.certificates: TlsFiles | None = None

    @property
    def url(self) -> str:
        """``ldap://host:port`` (StartTLS available when ``tls``)."""
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """``ldaps://host:port`` when started with ``tls=True``."""
        if not self.ldaps_port:
            raise ServerStartError("slapd: ldaps_url needs SlapdServer(tls=True)")
        return f"ldaps://{self.host}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the server's, when started with ``tls=True``."""
        if self.certificates is None:
            raise ServerStartError("slapd: ca_file needs SlapdServer(tls=True)")
        return self.certificates.ca_file

    @property
    def conf_path(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "slapd.conf"

    def _find_dir(self, candidates: Sequence[str], member: str, what: str) -> str:
        for directory in candidates:
            if os.path.exists(os.path.join(directory, member)):
                return directory
        raise ServerStartError(f"slapd: {what} {member} not found in {list(candidates)}; "
                               "install slapd with `bash scripts/install-system-deps.sh`")

    def base_entries(self) -> list[LdapEntry]:
        first = self.suffix.split(",", 1)[0]
        attr, _, value = first.partition("=")
        top: dict[str, Any] = {"objectClass": ["top", "organization"], "o": value}
        if attr.lower() == "dc":
            top["objectClass"].append("dcObject")
            top["dc"] = value
        return [
            (self.suffix, top),
            (self.people_dn, {"objectClass": ["top", "organizationalUnit"], "ou": "people"}),
            (self.reader_dn, {"objectClass": ["top", "person"], "cn": "reader", "sn": "reader",
                              "userPassword": self.reader_password}),
        ]

    def prepare(self) -> None:
        assert self.tmpdir is not None
        schema_dir = self._find_dir(self.schema_dirs, "core.schema", "schema")
        module_dir = self._find_dir(self.module_dirs, "back_mdb.so", "module")
        (self.tmpdir / "db").mkdir()
        includes = [f"{schema_dir}/{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")]
        if self.active_directory:
            ad = self.tmpdir / "active-directory.schema"
            ad.write_text(ACTIVE_DIRECTORY_SCHEMA)
            includes.append(str(ad))
        lines = [f"include {path}" for path in includes]
        lines += [
            f"modulepath {module_dir}",
            "moduleload back_mdb",
            f"pidfile {self.tmpdir}/slapd.pid",
            f"argsfile {self.tmpdir}/slapd.args",
        ]
        if self.size_limit is not None:
            n = self.size_limit
            lines.append(f"sizelimit size.soft={n} size.hard={n} size.pr={n} size.prtotal=unlimited")
        if self.tls:
            self.certificates = make_test_certificates(self.tmpdir / "tls", self.tls_names)
            lines += [
                f"TLSCACertificateFile {self.certificates.ca_file}",
                f"TLSCertificateFile {self.certificates.cert_file}",
                f"TLSCertificateKeyFile {self.certificates.key_file}",
            ]
        lines += [
            "database mdb",
            "maxsize 4294967296",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.root_dn}"',
            f"rootpw {self.root_password}",
            f"directory {self.tmpdir}/db",
            "index objectClass eq",
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by users read by * none",
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")
        ldif = self.tmpdir / "initial.ldif"
        ldif.write_text(to_ldif([*self.base_entries(), *self.initial_entries]))
        self.run([self.binary("slapadd"), "-q", "-f", str(self.conf_path), "-l", str(ldif)], "slapadd")
        ldif.unlink()

    def command(self) -> list[str]:
        urls = [self.url + "/"]
        if self.tls:
            self.ldaps_port = find_free_port(self.host)
            urls.append(f"ldaps://{self.host}:{self.ldaps_port}/")
        # -d keeps slapd in the foreground; level 0 keeps its log quiet.
        return [self.binary("slapd"), "-d", "0", "-f", str(self.conf_path), "-h", " ".join(urls)]

    def is_ready(self) -> bool:
        result = subprocess.run(
            [self.binary("ldapsearch"), "-x", "-H", self.url, "-b", "", "-s", "base",
             "-o", "nettimeout=1", "-LLL", "namingContexts"],
            env=self.environment(), stdin=subprocess.DEVNULL, capture_output=True, check=False,
        )
        return result.returncode == 0

    # -- for tests -----------------------------------------------------------------

    def _client(self, program: str, ldif: str, *extra: str) -> None:
        if self.process is None:
            raise ServerStartError(f"slapd: {program} needs a running server")
        result = subprocess.run(
            [self.binary(program), "-x", "-H", self.url, "-D", self.root_dn, "-w", self.root_password, *extra],
            input=ldif.encode("utf-8"), capture_output=True, check=False, timeout=300,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"slapd: {program} failed with exit code {result.returncode}: "
                f"{result.stderr.decode(errors='replace')[-2000:]}"
            )

    def add(self, entries: Iterable[LdapEntry]) -> None:
        """Add entries to the running server (as the root DN)."""
        self._client("ldapadd", to_ldif(entries))

    def modify(self, ldif: str) -> None:
        """Apply an LDIF change record (``changetype: modify``…) as the root DN."""
        self._client("ldapmodify", ldif)

    def delete(self, *dns: str) -> None:
        """Delete entries by DN."""
        self._client("ldapdelete", "\n".join(dns) + "\n")


# -- unixODBC ------------------------------------------------------------------------

ODBC_DRIVERS: dict[str, str] = {
    "SQLite3": "libsqlite3odbc.so",
    "PostgreSQL Unicode": "psqlodbcw.so",
    "MDBTools": "libmdbodbc.so",
}
"""Driver names the kit registers, and the library of each (Debian's libsqliteodbc, odbc-postgresql, odbc-mdbtools)."""

ODBC_DRIVER_DIRS: tuple[str, ...] = ("/usr/lib/*/odbc", "/usr/lib/odbc", "/usr/lib64", "/usr/local/lib/odbc", "/usr/local/lib")


def find_odbc_driver(library: str) -> str | None:
    """Full path of an ODBC driver library such as ``psqlodbcw.so``, or None."""
    for pattern in ODBC_DRIVER_DIRS:
        for directory in sorted(glob.glob(pattern)):
            path = os.path.join(directory, library)
            if os.path.exists(path):
                return path
    return None


def _odbc_ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    blocks = []
    for section, values in sections.items():
        blocks.append(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return "\n".join(blocks)


class OdbcEnvironment:
    """A private unixODBC configuration, so ODBC tests never depend on ``/etc/odbcinst.ini``.

    ``directory`` receives ``odbcinst.ini``, listing each driver of ``ODBC_DRIVERS``
    that is installed, and ``odbc.ini`` for the DSNs added with ``add_dsn()``.
    ``activated()`` points ``ODBCSYSINI`` and ``ODBCINI`` at them for the duration of a
    ``with`` block (set it before the first connection: the driver manager reads the
    variables when it loads a driver).
    """

    def __init__(self, directory: Path | str, drivers: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.drivers: dict[str, str] = {}
        """Registered driver name -> library path (only the installed ones)."""
        for name, library in (drivers or ODBC_DRIVERS).items():
            path = library if os.path.isabs(library) else find_odbc_driver(library)
            if path is not None and os.path.exists(path):
                self.drivers[name] = path
        self.dsns: dict[str, dict[str, str]] = {}
        self._write()

    @property
    def odbcinst_ini(self) -> Path:
        return self.directory / "odbcinst.ini"

    @property
    def odbc_ini(self) -> Path:
        return self.directory / "odbc.ini"

    def has_driver(self, name: str) -> bool:
        return name in self.drivers

    def _write(self) -> None:
        self.odbcinst_ini.write_text(_odbc_ini(
            {name: {"Description": f"{name} (TWP test kit)", "Driver": path, "UsageCount": "1"}
             for name, path in self.drivers.items()}
        ))
        self.odbc_ini.write_text(_odbc_ini(self.dsns))

    def add_dsn(self, name: str, driver: str, **attributes: str) -> str:
        """Declare DSN ``name`` using ``driver`` with the given attributes; return ``"DSN=name"``."""
        if driver not in self.drivers:
            raise ServerStartError(
                f"ODBC driver {driver!r} is not installed (have {sorted(self.drivers)}); "
                "install it with `bash scripts/install-system-deps.sh`"
            )
        self.dsns[name] = {"Driver": driver, **attributes}
        self._write()
        return f"DSN={name}"

    def environ(self) -> dict[str, str]:
        """The variables that select this configuration."""
        return {"ODBCSYSINI": str(self.directory), "ODBCINI": str(self.odbc_ini),
                "ODBCINSTINI": "odbcinst.ini"}

    @contextlib.contextmanager
    def activated(self) -> Iterator[OdbcEnvironment]:
        """Select this configuration in ``os.environ`` for the ``with`` block."""
        saved = {key: os.environ.get(key) for key in self.environ()}
        os.environ.update(self.environ())
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# -- Microsoft Access files ------------------------------------------------------------

_MDB_PAGE = 4096
_MDB_TYPES = {"long": (0x04, 4), "text": (0x0A, 0)}
"""Column kinds ``write_mdb`` writes: Jet's Long Integer (fixed, 4 bytes) and Text (variable, UCS-2)."""


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    x = y = 0
    for byte in data:
        x = (x + 1) % 256
        y = (y + state[x]) % 256
        state[x], state[y] = state[y], state[x]
        out.append(byte ^ state[(state[x] + state[y]) % 256])
    return bytes(out)


@attrs.frozen
class _MdbColumn:
    name: str
    type: int
    number: int
    fixed: bool
    fixed_offset: int
    var_index: int
    size: int


def _mdb_columns(columns: Sequence[tuple[str, str]]) -> list[_MdbColumn]:
    out, offset, var = [], 0, 0
    for number, (name, kind) in enumerate(columns):
        if kind == "ole":  # only for the catalog's LvProp, always null
            out.append(_MdbColumn(name, 0x0B, number, False, 0, var, 0))
            var += 1
            continue
        if kind not in _MDB_TYPES:
            raise ValueError(f"write_mdb: column {name!r}: kind {kind!r} is not one of {sorted(_MDB_TYPES)}")
        jet_type, size = _MDB_TYPES[kind]
        if size:
            out.append(_MdbColumn(name, jet_type, number, True, offset, 0, size))
            offset += size
        else:
            out.append(_MdbColumn(name, jet_type, number, False, 0, var, 510))
            var += 1
    return out


def _mdb_row(columns: list[_MdbColumn], values: Sequence[Any]) -> bytes:
    # Jet 4 row: column count, fixed data, variable data, then from the end backwards the
    # null mask (1 = has a value), the number of variable columns, their offsets (first
    # one nearest) and the end-of-data offset.
    nulls = bytearray((len(columns) + 7) // 8)
    fixed = bytearray(sum(c.size for c in columns if c.fixed))
    variable: list[bytes] = []
    for column, value in zip(columns, values, strict=True):
        if value is not None:
            nulls[column.number // 8] |= 1 << (column.number % 8)
        if column.fixed:
            if value is not None:
                struct.pack_into("<i", fixed, column.fixed_offset, int(value))
        else:
            variable.append(b"" if value is None else str(value).encode("utf-16-le"))
    row = bytearray(struct.pack("<H", len(columns))) + fixed
    offsets = []
    for data in variable:
        offsets.append(len(row))
        row += data
    trailer = struct.pack("<H", len(row)) + b"".join(struct.pack("<H", o) for o in reversed(offsets))
    return bytes(row + trailer + struct.pack("<H", len(variable)) + nulls)


def _mdb_data_page(table_page: int, rows: Sequence[bytes]) -> bytes:
    page = bytearray(_MDB_PAGE)
    page[0:2] = b"\x01\x01"
    struct.pack_into("<IIH", page, 4, table_page, 0, len(rows))
    end = _MDB_PAGE
    for i, row in enumerate(rows):
        page[end - len(row):end] = row
        end -= len(row)
        struct.pack_into("<H", page, 14 + 2 * i, end)
    struct.pack_into("<H", page, 2, end - 14 - 2 * len(rows))
    return bytes(page)


def _mdb_table_page(columns: list[_MdbColumn], rows: int, usage: int, free: int, system: bool) -> bytes:
    page = bytearray(_MDB_PAGE)
    page[0:2] = b"\x02\x01"
    struct.pack_into("<I", page, 16, rows)
    page[40] = 0x53 if system else 0x4E
    struct.pack_into("<HHHIIII", page, 41, len(columns), sum(not c.fixed for c in columns), len(columns),
                     0, 0, usage, free)
    pos = 63
    for c in columns:
        entry = bytearray(25)
        entry[0] = c.type
        struct.pack_into("<HHH", entry, 5, c.number, c.var_index, c.number)
        if c.type == 0x0A:
            struct.pack_into("<H", entry, 11, 0x0409)  # sort order "General"
        entry[15] = (0x01 if c.fixed else 0) | 0x02  # fixed length; may be null
        struct.pack_into("<HH", entry, 21, c.fixed_offset, c.size)
        page[pos:pos + 25] = entry
        pos += 25
    for c in columns:
        name = c.name.encode("utf-16-le")
        struct.pack_into("<H", page, pos, len(name))
        page[pos + 2:pos + 2 + len(name)] = name
        pos += 2 + len(name)
    struct.pack_into("<I", page, 8, pos)
    struct.pack_into("<H", page, 2, _MDB_PAGE - pos - 8)
    return bytes(page)


def _mdb_usage_map(pages: Iterable[int]) -> bytes:
    bitmap = bytearray(59)  # type 0 map: pages 0-471 from start page 0
    for page in pages:
        bitmap[page // 8] |= 1 << (page % 8)
    return b"\x00" + struct.pack("<I", 0) + bytes(bitmap)


def write_mdb(path: Path | str, table: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a Microsoft Access (Jet 4) ``.mdb`` file holding one table, for ODBC tests.

    No Debian package ships a sample database and mdbtools only reads, so the kit writes
    the smallest file mdbtools (and its ODBC driver) accepts, following the Jet 4 format
    as mdbtools documents it (``HACKING.md``): the header page (its RC4-masked area,
    unencrypted database), the catalog ``MSysObjects`` on page 2, usage maps, then the
    table definition and its data pages.  ``columns`` are ``(name, "long" | "text")``;
    ``None`` is NULL; text is at most 255 characters; up to about 1.5 MB of rows.
    """
    user_columns = _mdb_columns(columns)
    pages: list[list[bytes]] = [[]]
    used = 14
    for values in rows:
        row = _mdb_row(user_columns, values)
        if used + 2 + len(row) > _MDB_PAGE:
            pages.append([])
            used = 14
        pages[-1].append(row)
        used += 2 + len(row)
    count = sum(len(p) for p in pages)
    first_data = 6
    if first_data + len(pages) > 8 * 59:
        raise ValueError("write_mdb: too many rows for a test file")
    catalog_columns = _mdb_columns([("Id", "long"), ("Flags", "long"), ("Type", "long"), ("Name", "text"), ("LvProp", "ole")])
    header = bytearray(_MDB_PAGE)
    header[0:2] = b"\x00\x01"
    header[4:19] = b"Standard Jet DB"
    struct.pack_into("<I", header, 0x14, 1)  # Jet 4
    masked = bytearray(128)  # offsets 0x18-0x97, RC4-masked with a fixed key
    struct.pack_into("<HI", masked, 0x3C - 0x18, 1252, 0)  # code page; database key 0: not encrypted
    struct.pack_into("<H", masked, 0x6E - 0x18, 0x0409)
    header[0x18:0x98] = _rc4(struct.pack("<I", 0x6B39DAC7), bytes(masked))
    maps = [_mdb_usage_map([4]), _mdb_usage_map([]),
            _mdb_usage_map(range(first_data, first_data + len(pages))), _mdb_usage_map([])]
    file_pages = [
        bytes(header),
        bytes(_MDB_PAGE),
        _mdb_table_page(catalog_columns, 1, 3 << 8 | 0, 3 << 8 | 1, system=True),
        _mdb_data_page(0, maps),
        _mdb_data_page(2, [_mdb_row(catalog_columns, [5, 0, 1, table, None])]),
        _mdb_table_page(user_columns, count, 3 << 8 | 2, 3 << 8 | 3, system=False),
        *(_mdb_data_page(5, p) for p in pages),
    ]
    path = Path(path)
    path.write_bytes(b"".join(file_pages))
    return path

