"""A worker process for the recovery benchmark: it runs until the tool kills it (crash injection)."""

from __future__ import annotations

import argparse
import asyncio


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--variant", required=True)
    args = parser.parse_args()
    from ._temporal_setup import connect, worker

    client = await connect(args.target, args.variant)
    async with worker(client, args.variant, args.queue):
        await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main())
