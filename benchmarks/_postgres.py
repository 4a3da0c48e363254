"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary folder, start.

Used by the ``postgres_url`` test fixtures (``tests/helpers/postgres.py``) and by
``benchmarks/scale_out.py``. The server binaries (``initdb``, ``pg_ctl``) are looked up on
``PATH``, then under ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package; newest
version first). The server listens on 127.0.0.1 only, on a free port, and on a unix socket in
its temporary folder; authentication is ``trust`` (user ``postgres``, no password). It runs
without fsync: the data is thrown away at :meth:`PostgresServer.stop`.

PostgreSQL refuses to run as root: as root, the folder is given to the ``postgres`` system user
(created by Debian's package) and the server runs as that user (``runuser``, else ``su``).

Example:

    .. code-block:: python

        from _postgres import PostgresServer

        with PostgresServer.start() as server:
            url = server.create_database("nas")  # postgresql+psycopg2://postgres@127.0.0.1:PORT/nas
"""

from __future__ import annotations

from collections.abc import Sequence
import glob
import os
from pathlib import Path
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType


__all__ = ["PostgresServer", "PostgresUnavailable", "find_server_binaries"]

_SYSTEM_USER = "postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binary (``initdb`` and ``pg_ctl``) was found."""


def find_server_binaries() -> tuple[Path, Path]:
    """``(initdb, pg_ctl)``: on ``PATH``, else in the newest ``/usr/lib/postgresql/*/bin``.

    Raises:
        PostgresUnavailable: Neither place has both.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)

    def version(folder: str) -> tuple[int, ...]:
        name = Path(folder).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        candidate = Path(folder)
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate / "initdb", candidate / "pg_ctl"
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under "
        "/usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A running throwaway server; :meth:`stop` (or leaving the ``with`` block) removes it."""

    def __init__(self, root: Path, pg_ctl: Path, port: int, as_user: str | None) -> None:
        self.root = root
        self.port = port
        self._pg_ctl = pg_ctl
        self._as_user = as_user
        self._databases = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (TCP on 127.0.0.1, user ``postgres``)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, *, max_connections: int = 300, attempts: int = 3) -> PostgresServer:
        """initdb into a new temporary folder and start the server on a free port.

        Raises:
            PostgresUnavailable: No server binary.
            RuntimeError: The server did not start (the message has the end of its log).
        """
        initdb, pg_ctl = find_server_binaries()
        as_user = _SYSTEM_USER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="optuna-nas-pg-"))
        try:
            if as_user is not None:
                _give_to(root, as_user)
            _run(
                [
                    str(initdb),
                    "-D",
                    str(root / "data"),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                as_user,
            )
            error = ""
            for _ in range(attempts):
                server = cls(root, pg_ctl, _free_port(), as_user)
                options = " ".join(
                    [
                        "-c listen_addresses=127.0.0.1",
                        f"-c port={server.port}",
                        f"-c unix_socket_directories={root}",
                        f"-c max_connections={max_connections}",
                        "-c fsync=off",
                        "-c synchronous_commit=off",
                        "-c full_page_writes=off",
                    ]
                )
                result = _run(
                    [
                        str(pg_ctl),
                        "-D",
                        str(server.data_dir),
                        "-l",
                        str(server.log_file),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    as_user,
                    check=False,
                )
                if result.returncode == 0:
                    return server
                # Most likely the port was taken between probing and binding: try another.
                error = _tail(server.log_file) or result.stdout + result.stderr
            raise RuntimeError(f"PostgreSQL did not start in {root}: {error}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default: a new ``test_N`` name) and return its URL."""
        import psycopg2

        if name is None:
            self._databases += 1
            name = f"test_{os.getpid()}_{self._databases}"
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r}: expected lowercase letters, digits, _")
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing its remaining connections (PostgreSQL 13+)."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop the server (immediately: nothing is kept) and remove its folder."""
        try:
            _run(
                [str(self._pg_ctl), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                self._as_user,
                check=False,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _give_to(root: Path, user: str) -> None:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise RuntimeError(
            f"running as root, PostgreSQL needs the {user!r} system user to run as (Debian's "
            "postgresql package creates it; or run as an ordinary user)"
        ) from None
    os.chown(root, entry.pw_uid, entry.pw_gid)


def _run(
    command: Sequence[str], as_user: str | None, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = list(command)
    if as_user is not None:
        if shutil.which("runuser"):
            argv = ["runuser", "-u", as_user, "--", *argv]
        else:
            argv = ["su", as_user, "-s", "/bin/sh", "-c", shlex.join(argv)]
    # Leave the server's working directory readable by the user it runs as.
    result = subprocess.run(
        argv, capture_output=True, text=True, cwd="/", stdin=subprocess.DEVNULL, timeout=120
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":  # a manual check: start, create a database, stop
    started = time.perf_counter()
    with PostgresServer.start() as server:
        print(server.create_database("check"), f"{time.perf_counter() - started:.1f} s")
