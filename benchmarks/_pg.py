"""A throwaway PostgreSQL 15 cluster for the DBOS-on-PostgreSQL section and the Prefect server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("DURABLE_AGENTS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(args: list[str]) -> list[str]:
    # initdb refuses to run as root: as root, run the server binaries as the `postgres` user.
    if os.geteuid() == 0:
        return ["su", "postgres", "-c", " ".join(f"'{a}'" for a in args)]
    return args


class Cluster:
    """`start()` returns `postgresql://postgres@127.0.0.1:PORT`; `stop()` removes everything."""

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists()

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        subprocess.run(
            _as_owner(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        # fsync stays on: the DBOS numbers should be those of a durable database.
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=300"
        subprocess.run(
            _as_owner(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.data / "log"),
                    "-w",
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self.url

    def version(self) -> str:
        out = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.data, ignore_errors=True)


def create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # pyright: ignore[reportArgumentType]
