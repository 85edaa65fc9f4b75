"""`examples/live_events_sse.py` runs: a run's events reach an HTTP client as server-sent events, live (DBOS SQLite).

The example serves its Starlette app with uvicorn on loopback and reads the stream with httpx, a real HTTP client;
the run's first tool waits until the client has received the first events, so later events can only have come
live. A second test drives the app in process with httpx's ASGI transport, resuming with `Last-Event-ID`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dbos

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "live_events_sse.py"
KINDS = [
    "part_start",
    "part_end",
    "function_tool_call",
    "function_tool_result",
    "part_start",
    "part_end",
    "function_tool_call",
    "function_tool_result",
    "part_start",
    "final_result",
    "part_delta",
    "part_end",
]


def test_the_example_streams_a_run_to_an_http_client(tmp_path: Path) -> None:
    env = {**os.environ, "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{tmp_path / 'sse.sqlite'}"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[: len(KINDS)] == [f"{i} {kind}" for i, kind in enumerate(KINDS)]
    assert lines[len(KINDS)].endswith(": done: Mexico City, about 22 million people")
    assert lines[len(KINDS) + 1 :] == ["unknown run: HTTP 404"]


async def test_a_browser_that_reconnects_resumes_after_its_last_event_id(tmp_path: Path) -> None:
    import importlib.util

    import httpx
    from dbos import DBOS

    DBOS.destroy(destroy_registry=True)
    spec = importlib.util.spec_from_file_location("live_events_sse_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    DBOS(config={"name": "sse-test", "system_database_url": f"sqlite:///{tmp_path / 'sse.sqlite'}"})
    DBOS.launch()
    try:
        example.first_event_seen.set()
        await example.dbos_agent.run("go", run_id="sse-resume")
        transport = httpx.ASGITransport(app=example.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
            response = await client.get("/runs/sse-resume/events", headers={"Last-Event-ID": "7"})
            missing = await client.get("/runs/no-such-run/events")
    finally:
        DBOS.destroy(destroy_registry=True)
    ids = [line.removeprefix("id: ") for line in response.text.splitlines() if line.startswith("id: ")]
    kinds = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    assert ids == ["8", "9", "10", "11"]
    assert kinds == [*KINDS[8:], "end"]
    assert missing.status_code == 404
