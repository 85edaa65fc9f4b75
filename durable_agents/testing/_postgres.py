"""A throwaway PostgreSQL cluster on loopback, for tests and benchmarks of DBOS and Prefect on PostgreSQL.

It uses the server binaries of a local PostgreSQL installation (Debian's `postgresql-15` by default) and needs
nothing else: `initdb` into a temporary directory, `pg_ctl start` on a free port bound to 127.0.0.1, and on
`stop()` an immediate shutdown and the directory removed. Run as root (as CI does), the server runs as the
`postgres` user, since PostgreSQL refuses to run as root.

```python
# not run: needs PostgreSQL binaries
with PostgresCluster() as pg:
    url = pg.database_url("app")  # postgresql://postgres@127.0.0.1:<port>/app
```
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresCluster"]

_DEFAULT_BIN = "/usr/lib/postgresql/15/bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A PostgreSQL cluster that exists only while it is started.

    Args:
        bin_dir: Where `initdb`, `pg_ctl` and `createdb` are; `DURABLE_AGENTS_PG_BIN` or Debian's PostgreSQL 15.
        fsync: Keep fsync on (for benchmarks that should measure a durable database); off makes tests faster.
        options: Extra server settings, e.g. `{"max_connections": "300"}`.
        port: The port to listen on; a free one is chosen by default. Pass one when the URL must be known
            before the cluster starts (e.g. to configure a server through environment variables).
    """

    def __init__(
        self,
        bin_dir: str | Path | None = None,
        *,
        fsync: bool = False,
        options: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.bin_dir = Path(bin_dir or os.environ.get("DURABLE_AGENTS_PG_BIN", _DEFAULT_BIN))
        self.fsync = fsync
        self.options = dict(options or {})
        self.port = port or 0
        self.data: Path | None = None

    def available(self) -> bool:
        """Whether the server binaries are installed."""
        return (self.bin_dir / "initdb").exists()

    @property
    def url(self) -> str:
        """The server's URL, without a database name (DBOS creates its database itself)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def database_url(self, name: str) -> str:
        """The URL of database `name` on this server."""
        return f"{self.url}/{name}"

    def _run(self, *args: str, check: bool = True) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["su", "postgres", "-c", shlex.join(cmd)]
        subprocess.run(cmd, check=check, capture_output=True)

    def start(self) -> str:
        """Create and start the cluster; returns [`url`][durable_agents.testing.PostgresCluster.url]."""
        if not self.available():
            raise FileNotFoundError(
                f"PostgreSQL server binaries not found in {self.bin_dir}. Install Debian's postgresql-15 "
                "or set DURABLE_AGENTS_PG_BIN."
            )
        self.data = Path(tempfile.mkdtemp(prefix="durable-agents-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self.port = self.port or _free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = {"listen_addresses": "127.0.0.1", "fsync": "on" if self.fsync else "off", **self.options}
        opts = " ".join([f"-p {self.port}", f"-k {self.data}", *(f"-c {k}={v}" for k, v in settings.items())])
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-o", opts, "start")
        return self.url

    def create_database(self, name: str) -> str:
        """Create database `name`; returns its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.database_url(name)

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        if self.data is None:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.data, ignore_errors=True)
        self.data = None

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
