"""Answer an external event wait from another process.

`answer_event.py <token> resolve <json payload> [fail <reason> ...]` sends each answer in turn and prints one line
for each: `delivered=True`, `delivered=False`, or `EventTokenError: ...` for a refused token. Reaches the Prefect
server of PREFECT_API_URL (inherited from the test process).
"""

from __future__ import annotations

import asyncio
import json
import sys

from durable_agents import fail_external_event, resolve_external_event
from durable_agents.exceptions import EventTokenError


async def main(token: str, answers: list[str]) -> None:
    for action, value in zip(answers[::2], answers[1::2], strict=True):
        try:
            if action == "resolve":
                delivered = await resolve_external_event(token, json.loads(value))
            else:
                delivered = await fail_external_event(token, value)
        except EventTokenError as exc:
            print(f"EventTokenError: {exc}", flush=True)
            continue
        print(f"delivered={delivered}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
