"""Real servers started for tests: PostgreSQL now, others (slapd, redis…) later.

Tests use the real component wherever Debian ships one (see ``DESIGN.md``). Each
server here is a ``ServerProcess``: ``start()`` prepares a private temporary
directory, runs the server in the foreground as a child process listening on
127.0.0.1 on a free port, writes its output to a log file in that directory and waits
until it answers; ``stop()`` ends it and removes the directory. A server that does not
come up raises ``ServerStartError`` with the tail of its log.

Some servers (PostgreSQL) refuse to run as root, which is what CI is. When the
effective uid is 0 such a server runs as its Debian system user (``postgres``), through
``setpriv`` (or ``runuser``), and its temporary directory is given to that user.

This module imports nothing from the kernel, so plugin test suites may use it alone::

    with PostgresServer() as pg:
        url = pg.create_database("directory")
        engine = sqlalchemy.create_engine(url)
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

log = logging.getLogger(__name__)

__all__ = ["PostgresServer", "ServerProcess", "ServerStartError", "find_free_port"]


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
        except Exception:  # noqa: BLE001 - best effort at exit
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
