"""A real PostgreSQL server for the tests: started once per session in a temporary folder.

Run as the ``postgres`` system user when the tests run as root (PostgreSQL refuses root), listening on
127.0.0.1 only, on a free port, with a password for every log-in (scram-sha-256) so that a wrong
password is a real refusal.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "ghostface_test"
SUPERUSER_PASSWORD = "super-secret"
ADMIN_USER, ADMIN_PASSWORD = "gf_admin", "admin-pw"
STATION_USER, STATION_PASSWORD = "gf_station", "station-pw"


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[str]:
    """The URL of a port that takes TCP connections and never says a word: a server that does not answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # the kernel completes the handshakes; nobody ever reads or replies
        yield f"postgresql://nobody@127.0.0.1:{sock.getsockname()[1]}/ghostface"


@dataclass
class PgServer:
    """A running test server; ``url(user)`` is its address for that user."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None
    # The tests run without fsync (nothing to keep); a benchmark measures a durable server.
    durable: bool = False

    def _cmd(self, *args: str) -> list[str]:
        # Run from the server's own folder (cwd=...): as root the repository may be where postgres cannot go.
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def url(
        self, user: str = SUPERUSER, password: str | None = SUPERUSER_PASSWORD, db: str = "ghostface"
    ) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir.parent / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data_dir.parent}"
                + ("" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"),
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=90,
            cwd=self.data_dir.parent,
        )

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"),
            check=False,
            capture_output=True,
            timeout=90,
            cwd=self.data_dir.parent,
        )


def start_server(base: Path, *, durable: bool = False) -> PgServer:
    """initdb in ``base`` and start the server (as ``postgres`` when running as root)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL (initdb, pg_ctl) is not installed")
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        entry = pwd.getpwnam(run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    data = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    server = PgServer(bin_dir, data, _free_port(), run_as, durable)
    subprocess.run(
        server._cmd(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
        timeout=120,
        cwd=base,
    )
    server.start()
    import psycopg

    with psycopg.connect(server.url(db="postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE ghostface")
    return server


_created = [0]


def fresh_database(server: PgServer, *, roles: bool = True) -> str:
    """A new empty database with GhostFace's schema (and roles' grants); returns its name."""
    import psycopg

    from core.store import postgres as pg

    _created[0] += 1
    name = f"gf_{os.getpid()}_{_created[0]}"
    with psycopg.connect(server.url(db="postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(server.url(db=name)) as conn:
        pg.apply_migrations(conn)
        if roles:
            pg.create_roles(conn)
            for user, password, role in (
                (ADMIN_USER, ADMIN_PASSWORD, "ghostface_admin"),
                (STATION_USER, STATION_PASSWORD, "ghostface_station"),
            ):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
                if not exists:
                    conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE {role}")
            conn.commit()
    return name
