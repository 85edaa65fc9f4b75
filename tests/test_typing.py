"""The public API is typed for users: pyright (strict) on a small typed user module, and the run methods'
parameters, which are pydantic-ai's own, with no catch-all `**kwargs` to swallow a typo."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.agent import AbstractAgent

from durable_agents import DurableAgent, durable

TYPING = Path(__file__).parent / "typing"
GOOD = TYPING / "user_module.py"
TYPO = TYPING / "bad_deps_keyword.py"
RUN_METHODS = ("run", "iter", "run_stream", "run_stream_events")


@pytest.fixture(scope="module")
def diagnostics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Pyright's diagnostics of the two modules (one pyright run), by file name, in strict mode."""
    config = tmp_path_factory.mktemp("pyright") / "pyrightconfig.json"
    config.write_text(json.dumps({"typeCheckingMode": "strict", "pythonVersion": "3.11"}))
    pyright = Path(sys.executable).parent / "pyright"
    out = subprocess.run(
        [str(pyright), "--outputjson", "--pythonpath", sys.executable, "-p", str(config), str(GOOD), str(TYPO)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,  # pyright exits 1 on the expected error; the report says the rest
    )
    report = json.loads(out.stdout)
    assert report["summary"]["filesAnalyzed"] == 2, out.stdout
    by_file: dict[str, list[dict[str, Any]]] = {GOOD.name: [], TYPO.name: []}
    for diagnostic in report["generalDiagnostics"]:
        by_file[Path(diagnostic["file"]).name].append(diagnostic)
    return by_file


def _line_of(path: Path, text: str) -> int:
    """The 0-based line of `path` that holds `text` (as pyright counts lines)."""
    return next(i for i, line in enumerate(path.read_text().splitlines()) if text in line)


def test_a_typed_user_module_passes_pyright_strict(diagnostics: dict[str, list[dict[str, Any]]]) -> None:
    # Every `assert_type` in the module holds: wrappers keep the agent's deps and output types, `durable()` gives
    # each engine's wrapper, and run results are the output type (a run's own `output_type` where given).
    problems = [d for d in diagnostics[GOOD.name] if d["severity"] != "information"]
    assert problems == []


def test_reveal_type_of_a_run_output_is_the_output_type(diagnostics: dict[str, list[dict[str, Any]]]) -> None:
    revealed = [d["message"] for d in diagnostics[GOOD.name] if d["severity"] == "information"]
    assert revealed == ['Type of "result.output" is "MyOut"']


def test_a_misspelled_run_argument_is_a_type_error(diagnostics: dict[str, list[dict[str, Any]]]) -> None:
    [error] = diagnostics[TYPO.name]
    assert error["severity"] == "error"
    assert error["rule"] == "reportCallIssue"
    assert error["range"]["start"]["line"] == _line_of(TYPO, "dep=MyDeps(1)")
    # pyright's words for an argument no overload of `run` takes (as for pydantic-ai's own `Agent.run`).
    assert error["message"].startswith('No overloads for "run" match the provided arguments')


@dataclass
class _Deps:
    user_id: int


async def test_a_misspelled_run_argument_is_a_type_error_at_run_time() -> None:
    wrapper = durable(Agent("test", name="typo", deps_type=_Deps), "local")
    with pytest.raises(TypeError, match="unexpected keyword argument 'dep'"):
        await wrapper.run("x", dep=_Deps(1))  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    for method in RUN_METHODS[1:]:
        with pytest.raises(TypeError, match="unexpected keyword argument 'dep'"):
            getattr(wrapper, method)("x", dep=_Deps(1))


@pytest.mark.parametrize("method", RUN_METHODS)
def test_run_methods_take_exactly_pydantic_ais_parameters(method: str) -> None:
    # The parameters are written out in `_agent.py`; a pydantic-ai release that adds or changes one fails here.
    def parameters(function: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    ours, theirs = getattr(DurableAgent, method), getattr(AbstractAgent, method)
    assert parameters(ours) == parameters(theirs)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(ours).parameters.values())
    assert [parameters(o) for o in typing.get_overloads(ours)] == [parameters(o) for o in typing.get_overloads(theirs)]
