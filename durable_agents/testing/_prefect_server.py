"""A local Prefect API server in a subprocess, for tests and benchmarks.

Prefect reads its settings from the environment when it is imported, so the caller sets
`PREFECT_API_URL` (and `PREFECT_HOME`, the database URL...) first; this module only starts
`prefect server start` with the running interpreter, waits until `/api/health` answers, and stops it.
Importing it does not import Prefect.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["PrefectServer"]


class PrefectServer:
    """`prefect server start` on 127.0.0.1; use as a context manager.

    Args:
        port: The port to serve the API on (the caller's `PREFECT_API_URL` points at it).
        log_path: Where the server's output goes.
        startup_timeout: Seconds to wait for `/api/health` before giving up.
    """

    def __init__(self, port: int, log_path: str | Path, *, startup_timeout: float = 120.0) -> None:
        self.port = port
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        """The API URL, as `PREFECT_API_URL` expects it."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> str:
        """Start the server and wait until `/api/health` answers; returns `api_url`."""
        self._log = self.log_path.open("wb")
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--no-ui", "--analytics-off"]
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self.api_url
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The Prefect server did not start; see {self.log_path}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrefectServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
