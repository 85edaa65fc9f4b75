"""One side of the Prefect recovery benchmark, in its own process: start a run that crashes, or resume it."""

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
    parser.add_argument("--flow-run-id", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from ._prefect_agents import OURS

    agent = OURS["recovery"]
    if args.action == "crash":
        await agent.run("go")
        raise SystemExit("the run finished: the crash did not happen")
    t0 = time.perf_counter()
    # The crashed process is known to be dead (this benchmark killed it), so the run need not look stale first.
    result = await agent.resume(args.flow_run_id, stale_after=0)
    t1 = time.perf_counter()
    with open(args.out, "w") as f:
        json.dump({"output": result.output, "resume_to_result": t1 - t0, "process_to_result": t1 - T_START}, f)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
