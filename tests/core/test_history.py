"""The message history crosses the unit boundary in deltas, and a miss falls back to a full resend."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ToolReturnPart

from durable_agents._history import HISTORY_CACHE, MESSAGE_TA, HistoryCache
from durable_agents._units import Unit, UnitKind
from durable_agents.exceptions import PayloadTooLargeError
from durable_agents.local import LocalAgent
from durable_agents.testing import record_units, tool_loop_model


class SizeRecordingAgent(LocalAgent[Any, Any]):
    """The local engine, recording the size of every model unit input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_inputs: list[int] = []

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        if unit.kind is UnitKind.MODEL:
            self.model_inputs.append(len(payload))
        return await super().execute_unit(unit, payload, config, label)


def chunky_agent(rounds: int) -> Agent[None, str]:
    agent = Agent(tool_loop_model(rounds, final="ok"), name=f"chunky{rounds}")

    @agent.tool_plain
    def step(i: int) -> str:
        return f"{i:04d}" + "x" * 1000

    return agent


async def test_model_inputs_stay_constant_as_the_conversation_grows() -> None:
    agent = SizeRecordingAgent(chunky_agent(30))
    result = await agent.run("go")
    assert result.output == "ok"
    assert len(agent.model_inputs) == 31
    history_bytes = sum(len(m.parts) for m in result.all_messages())
    assert history_bytes > 60
    # Every request after the first carries one response and one tool return, never the whole history:
    # with full resends the last input would be ~30 KB.
    assert max(agent.model_inputs[1:]) < 3_000
    assert max(agent.model_inputs[1:]) - min(agent.model_inputs[1:]) < 200


async def test_a_cache_miss_resends_the_whole_history_once() -> None:
    agent = Agent(tool_loop_model(3, final="ok"), name="missing")

    @agent.tool_plain
    def step(i: int) -> str:
        if i == 1:
            HISTORY_CACHE.clear()  # as if the next model unit ran on a worker that never saw this run
        return f"r{i}"

    durable = SizeRecordingAgent(agent)
    misses_before = HISTORY_CACHE.misses
    with record_units() as units:
        result = await durable.run("go")
    assert result.output == "ok"
    assert HISTORY_CACHE.misses == misses_before + 1
    # 4 model requests, plus one resend after the miss.
    assert units.kinds.count("model") == 5
    sizes = durable.model_inputs
    assert sizes[3] > sizes[2]  # the resend carries everything


async def test_a_new_unit_cache_in_the_containers_process_reads_the_live_log() -> None:
    # As after a recovery in a new process: the unit cache is empty, but the container replaying the run
    # lives in this process, so no resend (and no extra unit) is needed.
    agent = Agent(tool_loop_model(3, final="ok"), name="live")

    @agent.tool_plain
    def step(i: int) -> str:
        if i == 1:
            HISTORY_CACHE.clear(live=False)
        return f"r{i}"

    durable = SizeRecordingAgent(agent)
    misses_before = HISTORY_CACHE.misses
    with record_units() as units:
        result = await durable.run("go")
    assert result.output == "ok"
    assert HISTORY_CACHE.misses == misses_before
    assert units.kinds.count("model") == 4
    assert max(durable.model_inputs[1:]) < 1_500  # still deltas


async def test_history_processors_that_rewrite_history_still_work() -> None:
    def copy_all(messages: list[ModelMessage]) -> list[ModelMessage]:
        # New objects every time: the log must fall back from identity to equality to keep sending deltas.
        return copy.deepcopy(messages)

    from pydantic_ai.capabilities.process_history import ProcessHistory

    agent = Agent(tool_loop_model(4, final="ok"), name="processed", capabilities=[ProcessHistory(copy_all)])

    @agent.tool_plain
    def step(i: int) -> str:
        return f"r{i}"

    bare = await agent.run("go")
    durable = SizeRecordingAgent(agent)
    with record_units() as units:
        result = await durable.run("go")
    assert result.output == bare.output
    assert units.kinds.count("model") == sum(1 for m in bare.all_messages() if m.kind == "response")
    assert max(durable.model_inputs[1:]) < 1_500


def _redacting_agent(name: str, seen: list[list[ModelMessage]]) -> Agent[None, str]:
    """A K=3 tool loop whose history processor redacts every tool result but the newest, in place."""
    from pydantic_ai.capabilities.process_history import ProcessHistory
    from pydantic_ai.messages import ModelRequest, ToolReturnPart

    def redact(messages: list[ModelMessage]) -> list[ModelMessage]:
        returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
        for part in returns[:-1]:
            part.content = "[redacted]"  # in place: the privacy pattern
        return messages

    base_model = tool_loop_model(3, final="ok")

    def model(messages: list[ModelMessage], info: Any) -> Any:
        seen.append(copy.deepcopy(messages))
        return base_model.function(messages, info)  # type: ignore[misc]

    from pydantic_ai.models.function import FunctionModel

    agent = Agent(FunctionModel(model), name=name, capabilities=[ProcessHistory(redact)])

    @agent.tool_plain
    def step(i: int) -> str:
        return f"secret-{i}"

    return agent


def _tool_contents(messages: list[ModelMessage]) -> list[Any]:
    from pydantic_ai.messages import ModelRequest, ToolReturnPart

    return [
        p.content for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)
    ]


async def test_history_edited_in_place_by_a_processor_reaches_the_model_as_edited() -> None:
    bare_seen: list[list[ModelMessage]] = []
    await _redacting_agent("redact_bare", bare_seen).run("go")
    seen: list[list[ModelMessage]] = []
    result = await LocalAgent(_redacting_agent("redact", seen)).run("go")
    assert result.output == "ok"
    assert [_tool_contents(m) for m in seen] == [_tool_contents(m) for m in bare_seen]
    # The last request saw only the newest tool result unredacted.
    assert _tool_contents(seen[-1]) == ["[redacted]", "[redacted]", "secret-2"]


async def test_a_miss_on_a_history_three_times_the_payload_limit_resends_it_in_pieces() -> None:
    limit = 20_000
    agent = Agent(tool_loop_model(8, final="ok"), name="huge_miss")

    @agent.tool_plain
    def step(i: int) -> str:
        if i == 7:
            HISTORY_CACHE.clear()  # the next model unit runs where nobody holds the run's history
        return f"{i:04d}" + "y" * 7_000

    durable = SizeRecordingAgent(agent, max_payload_bytes=limit)
    HISTORY_CACHE.share_live_logs = False
    try:
        with record_units() as units:
            result = await durable.run("go")
    finally:
        HISTORY_CACHE.share_live_logs = True
    assert result.output == "ok"
    full_history = sum(len(m) for m in (MESSAGE_TA.dump_json(x) for x in result.all_messages()))
    assert full_history > 3 * limit
    assert max(durable.model_inputs) <= limit
    # The pieces are model units labelled `/history`; the request itself follows them.
    assert units.labels.count("huge_miss.model/history") >= 3
    assert units.labels.count("huge_miss.model") == 9 + 1  # 9 requests, one of them answered "miss" first


async def test_the_unit_cache_forgets_a_run_when_its_container_ends() -> None:
    agent = Agent(tool_loop_model(2, final="ok"), name="forgetful")

    @agent.tool_plain
    def step(i: int) -> str:
        return "r" * 500

    durable = LocalAgent(agent)
    before = (HISTORY_CACHE.runs, HISTORY_CACHE.nbytes)
    for _ in range(20):
        assert (await durable.run("go")).output == "ok"
    assert (HISTORY_CACHE.runs, HISTORY_CACHE.nbytes) == before


def test_the_unit_cache_is_bounded_in_bytes_and_evicts_the_oldest_run() -> None:
    from pydantic_ai.messages import ModelRequest, UserPromptPart

    cache = HistoryCache(max_bytes=10_000)
    for n in range(10):
        message = ModelRequest(parts=[UserPromptPart("z" * 2_000)])
        assert cache.resolve(f"run-{n}", 0, "", [message]) is not None
        assert cache.nbytes <= 10_000
    assert cache.runs < 10
    assert cache.resolve("run-0", 1, "ff", []) is None  # the oldest went first


def test_request_parameters_count_against_the_budget_and_are_held_once() -> None:
    from pydantic_ai.messages import ModelRequest, UserPromptPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.tools import ToolDefinition

    tools = [ToolDefinition(name=f"tool_{i}", description="d" * 500) for i in range(40)]
    cache = HistoryCache()
    for n in range(3):
        params = ModelRequestParameters(function_tools=list(tools))
        message = ModelRequest(parts=[UserPromptPart("hi")])
        assert cache.resolve(f"run-{n}", 0, "", [message], params_digest="same-tools", params=params) is not None
    # Forty tool definitions outweigh the one-message conversations, and the budget sees them.
    assert cache.nbytes > 3 * 20_000
    held = {id(chain.params[1]) for chain in cache._runs.values() if chain.params is not None}  # pyright: ignore[reportPrivateUsage]
    assert len(held) == 1


async def test_a_run_may_start_with_a_history_over_the_payload_limit_sent_ahead_in_pieces() -> None:
    limit = 20_000
    past = Agent(tool_loop_model(8, final="ok"), name="long_past")
    past.tool_plain(name="step")(lambda i: f"{i:04d}")
    earlier = await past.run("go")
    agent = Agent(tool_loop_model(9, final="ok"), name="long_history")

    @agent.tool_plain
    def step(i: int) -> str:
        return f"{i:04d}"

    history = earlier.all_messages()
    for message in history:  # make each old tool result large, so the history is over twice the limit
        for part in message.parts:
            if isinstance(part, ToolReturnPart):
                part.content = "z" * 6_000
    assert len(MESSAGE_TA.dump_json(history[0])) < limit
    durable = SizeRecordingAgent(agent, max_payload_bytes=limit)
    with record_units() as units:
        result = await durable.run("again", message_history=history)
    assert result.output == "ok"
    assert sum(len(MESSAGE_TA.dump_json(m)) for m in history) > 2 * limit
    assert max(durable.model_inputs) <= limit
    assert units.labels.count("long_history.model/history") >= 2
    # Beyond the engine's bound, the run is refused before any unit, with the fix.
    with pytest.raises(PayloadTooLargeError, match="Fix:"), record_units() as refused:
        await durable.run("again", message_history=history * 3)
    assert refused.labels == []
