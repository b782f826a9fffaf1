"""A throwaway PostgreSQL cluster for the test session, and the ``database_url`` fixture
that runs a test on SQLite and on PostgreSQL.

``PgCluster.start`` runs Debian's server binaries (``/usr/lib/postgresql/<version>/bin``,
installed by ``.ci/ensure-postgres`` from ``make test``): ``initdb`` into a fresh folder
under the system's temporary folder, then ``pg_ctl start`` on 127.0.0.1 and a free port,
with durability off (``fsync``, ``synchronous_commit``, ``full_page_writes``: a test
cluster that does not survive a crash is fine, and it is several times faster).
PostgreSQL refuses to run as root, so as root (CI) every server command runs as the
``postgres`` user (``runuser -u postgres --``) and the folder belongs to that user; as
anyone else, as that user. Each test gets a database of its own (``CREATE DATABASE``, about
40 ms; dropped after the test with ``WITH (FORCE)``, which also ends
connections the test left open); ``stop`` stops the server and removes the folder.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("sqlite", "postgres")
"""The ids of ``on_both_databases``'s parameters."""

INSTALL_HINT = (
    "install Debian's 'postgresql' package (`bash .ci/ensure-postgres` as root, which "
    "`make test` runs, or `apt-get install postgresql`)"
)


class PgError(RuntimeError):
    """The test cluster could not be set up."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``pg_ctl``, else the
    folder of a ``pg_ctl`` on PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if found:
        newest = max(found, key=lambda p: int(Path(p).parents[1].name.split(".")[0]))
        return Path(newest).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise PgError(f"PostgreSQL's server binaries (initdb, pg_ctl) are missing: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL server for the session (see the module's docstring)."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.user = "postgres"
        self._names = itertools.count(1)
        self._admin: Any = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        if self.as_postgres:
            # The server runs as postgres, which must own its folder (the temporary
            # folder itself is world-writable with the sticky bit).
            shutil.chown(self.root, "postgres", "postgres")
        init = self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "--no-sync",
            "-E", "UTF8", "--no-locale",
        )  # fmt: skip
        if init.returncode != 0:
            raise PgError(f"initdb failed: {init.stdout}{init.stderr}")
        # PostgreSQL cannot be told to pick a free port and say which (there is no
        # "listen on 0"): take one the kernel says is free, release it, start the server
        # on it, and try another if someone took it in between ("address in use").
        for _ in range(5):
            self.port = _free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-k {self.root}",  # the Unix socket, in our folder
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=300",
                ]
            )
            started = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if started.returncode == 0:
                break
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "already in use" not in log and "could not bind" not in log:
                raise PgError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{log}")
        else:
            raise PgError("pg_ctl start failed: no free port after 5 tries")
        import psycopg

        self._admin = psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"test_{next(self._names)}"
        # FILE_COPY: a copy of template1's files, three times faster than PostgreSQL 15's
        # default (WAL_LOG) for a database this small, with fsync off.
        self._admin.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return name

    def drop_database(self, name: str) -> None:
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def sqlite_url(folder: Path) -> str:
    from tests.factories import db_url

    return db_url(folder)


def database_url_for(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A fresh database of ``backend`` for the test of ``request``: the SQLite file of
    ``factories.db_url(tmp_path)``, or a new database in the session's cluster, dropped
    after the test."""
    if backend == "sqlite":
        return sqlite_url(tmp_path)
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    request.addfinalizer(lambda: cluster.drop_database(name))
    return cluster.url(name)


def on_both_databases() -> Callable[..., str]:
    """A ``database_url`` fixture with two parameters, ``sqlite`` and ``postgres``: a
    module (or a folder's conftest) that assigns it to ``database_url`` runs each of its
    tests that use ``database_url`` (or ``store``) on both databases."""

    @pytest.fixture(params=BACKENDS)
    def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
        return database_url_for(request, request.param, tmp_path)

    return database_url
