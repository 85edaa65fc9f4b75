"""Stream a durable agent run's events to a browser as server-sent events (DBOS, no API key).

`app` is a Starlette app with one endpoint, `GET /runs/{run_id}/events`: the run's events so
far, then live ones, as server-sent events whose `id` is the event's offset, so a browser's
`EventSource` that reconnects (sending `Last-Event-ID`) resumes where it stopped. Serve it with
`uvicorn examples.live_events_sse:app` next to your workers, or run this file: it starts a run,
serves the endpoint on loopback, reads the stream with httpx while the run goes on, and prints
what it received.

The DBOS system database is `DBOS_SYSTEM_DATABASE_URL`, or a SQLite file in a temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pydantic_core
import uvicorn
from dbos import DBOS
from pydantic_ai import Agent
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from durable_agents import LiveEvents
from durable_agents.dbos import DBOSAgent
from durable_agents.exceptions import UnknownRunError
from durable_agents.testing import tool_loop_model

agent = Agent(tool_loop_model(2, tool_name="lookup"), name="sse_geography")
first_event_seen = asyncio.Event()


@agent.tool_plain
async def lookup(i: int) -> str:
    """Waits (the first time) until the browser has seen the run's first events.

    So the events after those can only arrive live.
    """
    if i == 0:
        await first_event_seen.wait()
    return ["Mexico City", "about 22 million people"][i]


dbos_agent = DBOSAgent(agent, live_events=LiveEvents(delta_interval=0.25))


async def run_events(request: Request) -> Response:
    """The events of run `run_id` as server-sent events, after the client's `Last-Event-ID`."""
    run_id = request.path_params["run_id"]
    after = int(request.headers.get("last-event-id", "-1"))
    events = dbos_agent.watch(run_id, after=after)
    try:
        first = await anext(events, None)
    except UnknownRunError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def stream() -> AsyncIterator[dict[str, str]]:
        item = first
        while item is not None:
            offset, event = item
            data = pydantic_core.to_json(event).decode()
            yield {"id": str(offset), "event": event.event_kind, "data": data}
            item = await anext(events, None)
        yield {"event": "end", "data": "{}"}

    return EventSourceResponse(stream())


app = Starlette(routes=[Route("/runs/{run_id}/events", run_events)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    """Start a run, serve `app` on loopback, print the run's events as an HTTP client gets them."""
    url = (
        os.environ.get("DBOS_SYSTEM_DATABASE_URL")
        or f"sqlite:///{Path(tempfile.mkdtemp()) / 'sse.sqlite'}"
    )
    DBOS(config={"name": "sse-example", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    run_id = f"sse-{uuid.uuid4().hex[:8]}"
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        run = asyncio.create_task(
            dbos_agent.run("What is the capital of Mexico, and how big is it?", run_id=run_id)
        )
        kinds: list[str] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            while True:  # the run's workflow exists once the run has started
                async with client.stream("GET", f"/runs/{run_id}/events") as response:
                    if response.status_code == 404:
                        await asyncio.sleep(0.05)
                        continue
                    event_kind = ""
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            event_kind = line.removeprefix("event: ")
                        elif line.startswith("data: ") and event_kind != "end":
                            json.loads(line.removeprefix("data: "))
                            kinds.append(event_kind)
                            print(f"{len(kinds) - 1} {event_kind}")
                            # The run goes on only now: what follows arrives live.
                            first_event_seen.set()
                    break
        result = await run
        print(f"run {run_id}: {result.output}")
        missing = await _missing(port)
        print(f"unknown run: HTTP {missing}")
    finally:
        server.should_exit = True
        await serving
        DBOS.destroy()


async def _missing(port: int) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        return (await client.get("/runs/no-such-run/events")).status_code


if __name__ == "__main__":
    asyncio.run(main())
