"""A real PostgreSQL server for the state-backend tests: Debian's packages, started in a temporary folder.

initdb into a fresh folder, then ``pg_ctl`` on 127.0.0.1 with a free port (as the ``postgres`` user when the
tests run as root: PostgreSQL refuses to run as root); stopped (fast shutdown) and removed afterwards.
Each test gets a database of its own (``fresh_database``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Postgres:
    folder: Path
    bindir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://upgrade@127.0.0.1:{self.port}/postgres"


def _bindir() -> Path:
    found = sorted(SERVER_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(scripts/setup.sh installs the postgresql package)")
    return found[-1].parent


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_postgres() -> Postgres:
    bindir = _bindir()
    folder = Path(tempfile.mkdtemp(prefix="upgrade-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "upgrade", "--auth=trust",
                                    "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
    port = _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=on"
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                    str(folder / "server.log"), "-w", "-t", "60", "start"]),
                   check=True, capture_output=True, timeout=120)
    return Postgres(folder, bindir, port)


def stop_postgres(server: Postgres) -> None:
    subprocess.run(_as_server_user([str(server.bindir / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "fast",
                                    "-w", "stop"]), check=False, capture_output=True, timeout=120)
    shutil.rmtree(server.folder, ignore_errors=True)


def fresh_database(server: Postgres) -> str:
    """A new empty database on the server; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")  # a generated identifier, never user text
    return f"postgresql://upgrade@127.0.0.1:{server.port}/{name}"
