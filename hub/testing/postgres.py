"""A throw-away PostgreSQL server for tests: one cluster per test session, a fresh database per test.

The cluster lives in a temporary directory (data, unix socket, log), listens on 127.0.0.1 on a free port
and is removed at the end of the session. PostgreSQL refuses to run as root, so when the tests run as
root (as CI does) the server runs as an unprivileged user (``postgres`` if the system has it, else
``nobody``). The binaries are found through ``$AKTENHUB_PG_BINDIR`` (alone, when set), else
``pg_config --bindir``, ``/usr/lib/postgresql/<version>/bin`` or ``PATH``. Without them the tests
that need the server are skipped, with the reason, except in CI (``CI=true``), where they fail: there
`.ci/run` installs them.

Fixtures (loaded with the test kit's pytest plugin):

- ``postgres_server``: the session's `PostgresServer`;
- ``postgres_url``: a fresh, empty database for one test, as a libpq URL
  ``postgresql://user:password@127.0.0.1:port/dbname`` (put a driver in: ``postgresql+asyncpg://``);
- ``pgbouncer_server``: the session's `PgBouncer`, Debian's ``pgbouncer`` in ``pool_mode = transaction``
  in front of the cluster (a client's consecutive transactions may run on different server connections,
  so nothing may rely on session state: prepared statements, SET, LISTEN, advisory session locks);
- ``pgbouncer_url``: a fresh, empty database for one test, reached through that pooler.

Like the server binaries, ``pgbouncer`` (``$AKTENHUB_PGBOUNCER``, else on ``PATH`` or in ``/usr/sbin``)
is skipped when missing, except in CI.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.localservers import ServerUnavailable, start_in_scratch, unprivileged_account
from hub.testing.servers import free_port, stop_process, unavailable

__all__ = [
    "PgBouncer",
    "PostgresServer",
    "PostgresUnavailable",
    "find_bindir",
    "find_pgbouncer",
    "pgbouncer_server",
    "pgbouncer_url",
    "postgres_server",
    "postgres_url",
]

SUPERUSER = "aktenhub"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
UNPRIVILEGED_USERS = ("postgres", "nobody")


class PostgresUnavailable(ServerUnavailable):
    """No PostgreSQL server binaries on this machine (or the server could not be started)."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when there is none."""
    if env := os.environ.get("AKTENHUB_PG_BINDIR"):
        candidates = [Path(env)]  # chosen explicitly: no other
    else:
        candidates = []
        if pg_config := shutil.which("pg_config"):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
                )
                candidates.append(Path(out.stdout.strip()))
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
        candidates += [Path(p) for p in versions]
        if initdb := shutil.which("initdb"):
            candidates.append(Path(initdb).resolve().parent)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


@dataclass
class PostgresServer:
    """A running throw-away cluster: superuser `user` with `password`, TCP on 127.0.0.1:`port`."""

    bindir: Path
    base: Path
    port: int
    user: str
    password: str
    run_as: pwd.struct_passwd | None  # the unprivileged account the server runs as (when we are root)
    # Tests throw the cluster away and skip the flushes to disk; a benchmark wants a production's commits.
    durable: bool = False

    @property
    def socket_dir(self) -> Path:
        """The directory of the server's unix socket."""
        return self.base / "socket"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        """The libpq URL of `database` on this server (with the superuser's password)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"test_{secrets.token_hex(6)}"
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop database `name`, ending its connections (a test's, left open or not)."""
        self._run(
            "dropdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, "--force", name
        )

    def start(self, initdb: bool = True) -> None:
        """initdb (unless told not to: the data directory is there, e.g. a copy) and start the cluster
        (port already chosen)."""
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        self.socket_dir.mkdir()
        if self.run_as is not None:
            for path in (self.base, self.socket_dir, pwfile):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        if initdb:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        pwfile.unlink()
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.base / "server.log"),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
        )

    def stop(self, clean: bool = False) -> None:
        """Stop the cluster at once (it is thrown away); `clean`: shut down so that a copy of the data
        directory starts again."""
        with contextlib.suppress(PostgresUnavailable):
            mode = "fast" if clean else "immediate"
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server log, for error messages."""
        try:
            return "\n".join((self.base / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _run(self, tool: str, *args: str) -> None:
        user = group = None
        if self.run_as is not None:
            user, group = self.run_as.pw_uid, self.run_as.pw_gid
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 30,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
            cwd=self.base,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            check=False,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()[-800:]}\n{self.log_tail()}"
            )


def start_server(bindir: Path, attempts: int = 3, durable: bool = False) -> PostgresServer:
    """Start a throw-away cluster with the binaries in `bindir` (retries when the free port was taken);
    `durable`: commits flushed to disk as in production (tests leave that out)."""
    run_as = unprivileged_account(UNPRIVILEGED_USERS)

    def start(base: Path) -> PostgresServer:
        server = PostgresServer(
            bindir, base, free_port(), SUPERUSER, secrets.token_urlsafe(18), run_as, durable
        )
        try:
            server.start()
        except PostgresUnavailable:
            server.stop()
            raise
        return server

    return start_in_scratch("akh-pg-", start, attempts)


def find_pgbouncer() -> Path | None:
    """The ``pgbouncer`` binary, or None when there is none."""
    if env := os.environ.get("AKTENHUB_PGBOUNCER"):
        candidates = [env]  # chosen explicitly: no other
    else:
        candidates = [found] if (found := shutil.which("pgbouncer")) else []
        candidates.append("/usr/sbin/pgbouncer")  # Debian's place, not on a user's PATH
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass
class PgBouncer:
    """A running pgbouncer in transaction pooling mode on 127.0.0.1:`port`, in front of `server`."""

    server: PostgresServer
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        """The libpq URL of `database` through the pooler (the server's superuser and password)."""
        s = self.server
        return f"postgresql://{s.user}:{s.password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the pooler (SIGTERM: it closes its connections at once)."""
        stop_process(self.process)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the pooler's log, for error messages."""
        try:
            text = (self.server.base / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _pgbouncer_config(server: PostgresServer, port: int) -> str:
    base = server.base
    return f"""[databases]
* = host=127.0.0.1 port={server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {base / "pgbouncer.users"}
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
logfile = {base / "pgbouncer.log"}
pidfile = {base / "pgbouncer.pid"}
ignore_startup_parameters = extra_float_digits
"""


def start_pgbouncer(binary: Path, server: PostgresServer, attempts: int = 3) -> PgBouncer:
    """Start pgbouncer in front of `server` (as the server's account when we are root; pgbouncer refuses
    to run as root), retrying when the free port was taken meanwhile."""
    config, users = server.base / "pgbouncer.ini", server.base / "pgbouncer.users"
    users.write_text(f'"{server.user}" "{server.password}"\n')
    users.chmod(0o600)
    user = group = None
    if server.run_as is not None:
        user, group = server.run_as.pw_uid, server.run_as.pw_gid
        os.chown(users, user, group)
    error = ""
    for _ in range(attempts):
        port = free_port()
        config.write_text(_pgbouncer_config(server, port))
        # Its stderr goes to a file, not a pipe: nobody reads a pipe while it runs, and a full one would
        # stall the pooler.
        with (server.base / "pgbouncer.stderr").open("wb") as stderr:
            process = subprocess.Popen(
                [str(binary), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                user=user,
                group=group,
                extra_groups=[] if user is not None else None,
                cwd=server.base,
            )
        bouncer = PgBouncer(server, port, process)
        if _accepting(port, process):
            return bouncer
        bouncer.stop()
        said = (server.base / "pgbouncer.stderr").read_text(errors="replace").strip()[-800:]
        error = f"pgbouncer did not start ({process.returncode}): {said}\n{bouncer.log_tail()}"
    raise PostgresUnavailable(error)


def _accepting(port: int, process: subprocess.Popen[bytes]) -> bool:
    """Wait until `port` takes connections (True) or the process ends or the start times out (False)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        # poll the port again: the only sign that pgbouncer is listening
        time.sleep(0.02)
    return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the whole test session (skipped outside CI without binaries)."""
    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres): install Debian's postgresql")
    server = start_server(bindir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test: ``postgresql://user:password@127.0.0.1:port/dbname``."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    # Dropped at once: a session's hundreds of databases would fill the disk and slow its cleanup.
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def pgbouncer_server(request: pytest.FixtureRequest) -> Iterator[PgBouncer]:
    """pgbouncer in transaction pooling mode in front of the session's cluster (skipped like it)."""
    binary = find_pgbouncer()
    if binary is None:
        unavailable("no pgbouncer binary: install Debian's pgbouncer")
    server: PostgresServer = request.getfixturevalue("postgres_server")  # only once pgbouncer is there
    bouncer = start_pgbouncer(binary, server)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def pgbouncer_url(pgbouncer_server: PgBouncer) -> Iterator[str]:
    """A fresh, empty database for this test, reached through pgbouncer (transaction pooling)."""
    name = pgbouncer_server.server.create_database()
    yield pgbouncer_server.url(name)
    pgbouncer_server.server.drop_database(name)
