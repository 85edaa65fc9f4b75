"""The code examples in the docs run, and print what the docs say they print.

A page's ```python blocks run in order in one namespace (pages listed together share it). A block whose first
line is `# not run` is skipped (it needs an engine server). Lines `#> text` (`# > text` once
formatted) state the expected output of the
block, compared with what the block prints.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
# Pages whose examples build on each other run in one namespace, in this order.
CHAINS = [["engines.md", "local.md", "testing.md"], ["index.md"], ["concepts.md"], ["telemetry.md"]]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# `#> text` as written, or `# > text` once ruff has formatted the block.
OUTPUT = re.compile(r"^# ?> (.*)$")


def blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


def test_every_page_with_python_is_checked() -> None:
    checked = {p for chain in CHAINS for p in chain}
    engine_pages = {"dbos.md", "temporal.md", "prefect.md"}  # need servers: covered by their engine tests
    with_code = {p.name for p in DOCS.glob("*.md") if blocks(p.name)}
    assert with_code - engine_pages <= checked


@pytest.mark.parametrize("chain", CHAINS, ids="+".join)
def test_examples_run(chain: list[str]) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    ran = 0
    for page in chain:
        for code in blocks(page):
            if code.startswith("# not run"):
                continue
            expected = [m.group(1) for line in code.splitlines() if (m := OUTPUT.match(line))]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{page}", "exec"), namespace)
            if expected:
                assert out.getvalue().splitlines() == expected, f"{page}:\n{code}"
            ran += 1
    assert ran or chain in (["index.md"], ["concepts.md"])


def test_expected_output_lines_are_recognised() -> None:
    # Guards the guard: a block with expected output must yield it, in either spelling.
    assert [m.group(1) for line in ["#> a", "# > b", "# c"] if (m := OUTPUT.match(line))] == ["a", "b"]
    assert any(OUTPUT.match(line) for page in ("engines.md", "local.md") for line in "".join(blocks(page)).splitlines())
