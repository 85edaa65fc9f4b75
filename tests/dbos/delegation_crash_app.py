"""The flight-booking delegation shape on DBOS, for the crash test, run in subprocesses.

`python delegation_crash_app.py run|resume <db url> <workflow id>`: `run` runs the booking agent with the workflow
id as `run_id` (and crashes where `DURABLE_AGENTS_CRASH` says); `resume` launches DBOS, which recovers the pending
runs, and waits for the run's result. Prints one JSON line: the output and the usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from dbos import DBOS

from durable_agents.dbos import DBOSAgent
from durable_agents.testing import inject_crash
from tests.dbos.conftest import dbos_config
from tests.parity.delegation_app import PROMPT, build


def main() -> None:
    mode, url, workflow_id = sys.argv[1:4]
    booking, _ = build(DBOSAgent)
    DBOS(config=dbos_config(url))  # type: ignore[arg-type]
    inject_crash()
    DBOS.launch()
    if mode == "run":
        result = asyncio.run(booking.run(PROMPT, run_id=workflow_id))
    else:
        result = DBOS.retrieve_workflow(workflow_id).get_result()
    print(json.dumps({"output": result.output, "usage": dataclasses.asdict(result.usage)}))
    DBOS.destroy()


if __name__ == "__main__":
    main()
