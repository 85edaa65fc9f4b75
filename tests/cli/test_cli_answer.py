"""`durable-agents runs answer/approve/deny TOKEN`: the token names the engine, so bad tokens fail early."""

from __future__ import annotations

import pytest

from durable_agents._external import encode_token
from durable_agents.exceptions import EventTokenError

from ._support import cli


async def test_a_token_that_is_not_ours_is_refused_with_the_fix() -> None:
    with pytest.raises(EventTokenError, match="unchanged"):
        await cli("runs", "approve", "abc", "--call", "c1")


async def test_a_payload_that_is_not_json_is_refused_before_anything_is_sent() -> None:
    token = encode_token("local", {"run": "r", "key": "k"})
    with pytest.raises(EventTokenError, match="not JSON"):
        await cli("runs", "answer", token, "{approvals")


async def test_a_local_token_is_answered_only_in_its_own_process() -> None:
    token = encode_token("local", {"run": "r", "key": "k"})
    with pytest.raises(EventTokenError, match="No local run"):
        await cli("runs", "deny", token, "--reason", "no")
