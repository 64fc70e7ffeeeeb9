"""A throw-away PostgreSQL cluster on loopback, for tests and benchmarks.

Debian's `postgresql` package puts its binaries in /usr/lib/postgresql/<major>/bin (not on
PATH); `initdb` refuses to run as root, so as root the cluster is made and run by the
`postgres` user, in a temporary folder that user owns. No system service is involved;
`stop()` (or the end of the `with`) removes everything.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL binaries on this machine, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """`initdb` + `pg_ctl start` in a temporary folder, on a free port of 127.0.0.1."""

    def __init__(self, *, durable: bool = False) -> None:
        """`durable`: fsync as a production server does (benchmarks); tests skip it."""
        self.durable = durable
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed: `apt-get install -y postgresql` "
                "(scripts/ensure-postgresql.sh does it)"
            )
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="reelcast-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "reelcast"
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["su", "postgres", "-s", "/bin/sh", "-c"]

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as:
            command = [*self._as, " ".join(_quote(a) for a in command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for `database` (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"
