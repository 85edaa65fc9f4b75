"""pydantic-ai's data-analyst example (`examples/pydantic_ai_examples/data_analyst.py`), adapted for the tests.

The agent, its deps and its three tools keep the example's shape: `load_dataset` stores a frame in the deps and
returns a reference (`Out[1]`), `run_duckdb` reads that frame from the deps and stores its result, `display`
reads the result. Only what needs the network or heavy libraries is replaced: the model by a scripted
`FunctionModel`, the Hugging Face dataset by a small local table, pandas by a tiny frame dataclass, DuckDB by a
one-clause query. Kept sandbox-importable: Temporal workflows import this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

PROMPT = "Count how many negative comments are there in the dataset `cornell-movie-review-data/rotten_tomatoes`"
_REVIEWS = [
    ["a gripping, beautifully shot film", 1],
    ["dull and far too long", 0],
    ["the cast is wasted on this script", 0],
    ["funny, warm and smart", 1],
    ["an incoherent mess", 0],
]
TOOL_RUNS: list[str] = []
"""The tools that ran, in order (the tests clear it)."""


@dataclass
class Frame:
    """The stand-in for a pandas `DataFrame`: named columns and rows of values."""

    columns: list[str]
    rows: list[list[Any]]

    def head(self, n: int = 5) -> Frame:
        return Frame(self.columns, self.rows[:n])

    def to_string(self) -> str:
        return "\n".join(" | ".join(map(str, row)) for row in [self.columns, *self.rows])


def _query(frame: Frame, sql: str) -> Frame:
    """The stand-in for DuckDB: `SELECT COUNT(*) FROM dataset WHERE <column> = <int>`."""
    match = re.fullmatch(r"SELECT COUNT\(\*\) FROM dataset WHERE (\w+) = (\d+)", sql.strip())
    if match is None:
        raise ModelRetry(f"Unsupported SQL: {sql}")
    column = frame.columns.index(match.group(1))
    count = sum(1 for row in frame.rows if row[column] == int(match.group(2)))
    return Frame(["count_star()"], [[count]])


@dataclass
class AnalystAgentDeps:
    output: dict[str, Frame] = field(default_factory=dict[str, Frame])

    def store(self, value: Frame) -> str:
        """Store the output in deps and return the reference such as Out[1] to be used by the LLM."""
        ref = f"Out[{len(self.output) + 1}]"
        self.output[ref] = value
        return ref

    def get(self, ref: str) -> Frame:
        if ref not in self.output:
            raise ModelRetry(
                f"Error: {ref} is not a valid variable reference. Check the previous messages and try again."
            )
        return self.output[ref]


def _analyst_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """What a model would do: load, query, display, answer; each step reads the reference the last one gave."""
    results = [str(p.content) for m in messages for p in m.parts if p.part_kind == "tool-return"]
    refs = [m.group(1) for r in results for m in [re.search(r"`(Out\[\d+\])`", r)] if m]
    if not results:
        call = ToolCallPart("load_dataset", {"path": "cornell-movie-review-data/rotten_tomatoes"})
    elif len(results) == 1:
        call = ToolCallPart("run_duckdb", {"dataset": refs[-1], "sql": "SELECT COUNT(*) FROM dataset WHERE label = 0"})
    elif len(results) == 2:
        call = ToolCallPart("display", {"name": refs[-1]})
    else:
        return ModelResponse(parts=[TextPart(f"Negative reviews:\n{results[-1]}")])
    return ModelResponse(parts=[call])


analyst_agent = Agent(
    FunctionModel(_analyst_model),
    name="parity_analyst",
    deps_type=AnalystAgentDeps,
    instructions="You are a data analyst and your job is to analyze the data according to the user request.",
)


@analyst_agent.tool
def load_dataset(ctx: RunContext[AnalystAgentDeps], path: str, split: str = "train") -> str:
    """Load the `split` of dataset `dataset_name` from huggingface.

    Args:
        ctx: Pydantic AI agent RunContext
        path: name of the dataset in the form of `<user_name>/<dataset_name>`
        split: load the split of the dataset (default: "train")
    """
    TOOL_RUNS.append("load_dataset")
    if split != "train":
        raise ModelRetry(f"{split} is not valid for dataset {path}. Valid splits are train")
    dataframe = Frame(["text", "label"], [list(r) for r in _REVIEWS])
    ref = ctx.deps.store(dataframe)
    output = [f"Loaded the dataset as `{ref}`.", "Description: movie reviews", "Features: text, label"]
    return "\n".join(filter(None, output))


@analyst_agent.tool
def run_duckdb(ctx: RunContext[AnalystAgentDeps], dataset: str, sql: str) -> str:
    """Run DuckDB SQL query on the DataFrame.

    Note that the virtual table name used in DuckDB SQL must be `dataset`.

    Args:
        ctx: Pydantic AI agent RunContext
        dataset: reference string to the DataFrame
        sql: the query to be executed using DuckDB
    """
    TOOL_RUNS.append("run_duckdb")
    data = ctx.deps.get(dataset)
    ref = ctx.deps.store(_query(data, sql))
    return f"Executed SQL, result is `{ref}`"


@analyst_agent.tool
def display(ctx: RunContext[AnalystAgentDeps], name: str) -> str:
    """Display at most 5 rows of the dataframe."""
    TOOL_RUNS.append("display")
    dataset = ctx.deps.get(name)
    return dataset.head().to_string()
