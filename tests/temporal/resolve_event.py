"""Answers a wait from another process: `python -m tests.temporal.resolve_event <token> <JSON payload>`.

Reaches the server through `TEMPORAL_ADDRESS`; prints what `resolve_external_event` returned.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from durable_agents import resolve_external_event


async def main(token: str, payload: str) -> None:
    print(await resolve_external_event(token, json.loads(payload)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    # A short-lived process with a temporalio client can abort while the interpreter finalizes, after its work is
    # done ("PyGILState_Release ... finalizing", temporalio/sdk-python#300): skip the finalization.
    os._exit(0)
