"""The PostgreSQL cluster of the DBOS-on-PostgreSQL section and the Prefect server."""

from __future__ import annotations

import socket
import subprocess

from durable_agents.testing import PostgresCluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster(PostgresCluster):
    """`durable_agents.testing.PostgresCluster` with fsync on: DBOS numbers should be those of a durable database."""

    def __init__(self) -> None:
        super().__init__(fsync=True, options={"max_connections": "300"})

    def version(self) -> str:
        out = subprocess.run([str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip()


def create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # pyright: ignore[reportArgumentType]
