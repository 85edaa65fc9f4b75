"""The flight-booking delegation shape as Prefect flows: `python delegation_agent.py <run id>`.

Runs the booking agent with `run_id=<run id>` (a second call with the same id resumes a crashed run); crashes where
`DURABLE_AGENTS_CRASH` says. Model requests are counted in the file `DELEGATION_CALLS` names. Prints one JSON line:
the output and the usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import inject_crash
from tests.parity.delegation_app import PROMPT, build


async def main(run_id: str) -> None:
    booking, _ = build(functools.partial(PrefectAgent, heartbeat_seconds=1))
    inject_crash()
    result = await booking.run(PROMPT, run_id=run_id)
    print(json.dumps({"output": result.output, "usage": dataclasses.asdict(result.usage)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
