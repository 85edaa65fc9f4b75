"""What the in-run approval scenario asked for, with the wait's token (cleared by the tests).

A module of its own, passed through Temporal's workflow sandbox (see `scenarios.py`): `RequestInput`'s `ask` is a
closure of the workflow's copy of the agent, so it must append to the list the test process reads.
"""

from __future__ import annotations

from pydantic_ai.tools import DeferredToolRequests

ASKED: list[tuple[DeferredToolRequests, str]] = []
