"""One side of the DBOS recovery benchmark, in its own process: start a run that crashes, or recover it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

T_START = time.perf_counter()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["crash", "recover"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--wid", required=True)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from dbos import DBOS, SetWorkflowID

    from ._dbos_agents import OURS, PAI, PAI_STEPS, dbos_config

    agent = {"ours": OURS, "pydantic-ai": PAI, "pydantic-ai+steps": PAI_STEPS}[args.variant]["recovery"]
    DBOS(config=dbos_config(args.url))  # type: ignore[arg-type]
    t_launch = time.perf_counter()
    DBOS.launch()
    if args.action == "crash":
        with SetWorkflowID(args.wid):
            await agent.run("go")
        raise SystemExit("the run finished: the crash did not happen")
    handle = await DBOS.retrieve_workflow_async(args.wid)
    result = await handle.get_result()
    t_done = time.perf_counter()
    with open(args.out, "w") as f:
        json.dump(
            {
                "output": getattr(result, "output", result),
                "launch_to_result": t_done - t_launch,
                "process_to_result": t_done - T_START,
            },
            f,
        )
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
