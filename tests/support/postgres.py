"""A throwaway PostgreSQL server for tests and benchmarks, started from Debian's binaries."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

SERVER_USER = "postgres"  # the unprivileged user Debian's package creates
SUPERUSER = "gnomon"  # the database role the tests connect as
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed, or the server would not start."""


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's newest."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _major_version(bin_dir: str) -> int:
    name = Path(bin_dir).parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_server_user() -> pwd.struct_passwd:
    """The unprivileged account to run the server as when we are root; created if absent."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


@dataclass
class PostgresServer:
    """One private cluster in a temporary directory, listening on loopback only."""

    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gnomon-pg-")))
    port: int = field(default_factory=free_port)
    _counter: int = 0

    @property
    def data_dir(self) -> Path:
        """Where the cluster's files live."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """The server's log, read back when start-up fails."""
        return self.root / "server.log"

    def start(self) -> PostgresServer:
        """initdb and start the cluster; raises PostgresUnavailable with the server log."""
        self._hand_root_to_server_user()
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.resume()
        return self

    def resume(self) -> None:
        """Start the (initialised) server, on the same port."""
        options = {
            **FAST_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
        }
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(self.log_file), "-o", " ".join(f"-c {k}={v}" for k, v in options.items()),
        )  # fmt: skip

    def pause(self) -> None:
        """Stop the server (cutting off every connection), keeping its data for `resume`."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A peewee/libpq URL for `database` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, statement: sql.Composable | str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        connection = psycopg2.connect(self.url(database))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self, template: str | None = None) -> str:
        """Create a new, uniquely named database (a copy of `template` if given)."""
        self._counter += 1
        name = f"test_{os.getpid()}_{self._counter}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("{} TEMPLATE {} STRATEGY FILE_COPY").format(
                statement, sql.Identifier(template)
            )
        self.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, cutting off any connection a test left open."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def reset_database(self, name: str) -> None:
        """Empty `name` cheaply: cut off other sessions, then drop and recreate its schema."""
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid();"
            " DROP SCHEMA public CASCADE; CREATE SCHEMA public;",
            database=name,
        )

    def _hand_root_to_server_user(self) -> None:
        if os.geteuid() != 0:
            return
        account = ensure_server_user()
        os.chown(self.root, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            detail = f"{result.stderr.strip()}\n{self._log_tail()}"
            raise PostgresUnavailable(f"{program} failed ({result.returncode}): {detail}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def start_server(attempts: int = 3) -> PostgresServer:
    """Start a private server, retrying on a port another process grabbed meanwhile."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH nor under "
            "/usr/lib/postgresql/*/bin; install them with `apt-get install postgresql`"
        )
    failure = PostgresUnavailable("no attempt made")
    for _ in range(attempts):
        server = PostgresServer(bin_dir)
        try:
            return server.start()
        except PostgresUnavailable as error:
            server.stop()
            failure = error
            time.sleep(0.2)
    raise failure
