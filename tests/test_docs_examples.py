"""Every code block of every docs page runs, or says why it does not.

How a block is accounted for:

- A block whose first line is `# not run: <reason>` is not run; the reason is required, and
  `test_every_block_is_run_or_says_why` prints every such block with its reason.
- A block that includes a script of `examples/` (pymdownx.snippets: `--8<--`, `examples/x.py`, `--8<--` on three
  lines) runs as that script in `tests/test_examples.py`, against real engines.
- The other ```python blocks run here: those of the pages in `CHAINS` in this process, in one namespace per chain
  (pages listed together share it); those of `SCRIPT_PAGES` (engine pages) as one program per page, in a
  subprocess pointed at the test engines (see `tests/_engine_env.py`).
- Any other block (```bash, say) must be marked.

Lines `#> text` (`# > text` once formatted) state the expected output of a block, compared with what it prints.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._engine_env import engine_marks, script_env
from tests.temporal.conftest import temporal_env  # noqa: F401  # fixture, started only for the Temporal page

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
# Pages whose examples build on each other run in one namespace, in this order.
CHAINS = [["engines.md", "local.md", "testing.md"], ["index.md"], ["concepts.md"], ["telemetry.md"]]
# Engine pages: each runs as one program, in a subprocess (engines hold process-wide state).
SCRIPT_PAGES = ["dbos.md", "temporal.md", "prefect.md"]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
# pymdownx.snippets' block form (ruff would reformat the one-line `--8<-- "file"` as Python).
SNIPPET = re.compile(r"^--8<--\n(examples/[^\n]+\.py)\n--8<--$")
NOT_RUN = re.compile(r"^# not run(?::\s*(.*))?$")
# `#> text` as written, or `# > text` once ruff has formatted the block.
OUTPUT = re.compile(r"^# ?> (.*)$")
MAX_CODE_LINE = 100  # longer lines are clipped in the rendered code blocks


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str

    @property
    def not_run_reason(self) -> str | None:
        """The reason of a `# not run: ...` marker ('' if the marker has none), else None."""
        first = self.code.splitlines()[0] if self.code else ""
        m = NOT_RUN.match(first)
        return None if m is None else (m.group(1) or "").strip()

    @property
    def example(self) -> Path | None:
        """The `examples/` script the block includes, if that is all it is."""
        m = SNIPPET.match(self.code.strip())
        return ROOT / m.group(1) if m else None


def pages() -> list[str]:
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


def blocks(page: str) -> list[Block]:
    text = (DOCS / page).read_text()
    return [Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def runnable(page: str) -> list[str]:
    return [b.code for b in blocks(page) if b.lang == "python" and b.not_run_reason is None and b.example is None]


def expected_output(code: str) -> list[str]:
    return [m.group(1) for line in code.splitlines() if (m := OUTPUT.match(line))]


def run_here() -> set[str]:
    return {p for chain in CHAINS for p in chain} | set(SCRIPT_PAGES)


def test_every_block_is_run_or_says_why() -> None:
    examples = {p.resolve() for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")}
    unaccounted: list[str] = []
    report: list[str] = []
    for page in pages():
        for b in blocks(page):
            where = f"{b.page}:{b.line} ({b.lang or 'no language'})"
            reason = b.not_run_reason
            if reason is not None:
                if not reason:
                    unaccounted.append(f"{where}: `# not run` without a reason (write `# not run: <why>`)")
                report.append(f"{where}: not run: {reason}")
            elif b.example is not None:
                if b.example.resolve() not in examples:
                    unaccounted.append(f"{where}: includes {b.example}, which tests/test_examples.py does not run")
                report.append(f"{where}: runs as {b.example.relative_to(ROOT)} in tests/test_examples.py")
            elif b.lang != "python" or page not in run_here():
                unaccounted.append(f"{where}: neither run nor marked `# not run: <why>`")
    print("\n".join(report))
    assert not unaccounted, "\n".join(unaccounted)


def test_a_page_without_a_runner_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Guards the guard: an unmarked block on a page no test runs is reported.
    (tmp_path / "new.md").write_text("# New\n\n```python\nprint(1)\n```\n\n```bash\n# not run: shell\nls\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "DOCS", tmp_path)
    with pytest.raises(AssertionError, match=r"new\.md:3 \(python\): neither run nor marked"):
        test_every_block_is_run_or_says_why()


@pytest.mark.parametrize("chain", CHAINS, ids="+".join)
def test_examples_run(chain: list[str]) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    ran = 0
    for page in chain:
        for code in runnable(page):
            expected = expected_output(code)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{page}", "exec"), namespace)
            if expected:
                assert out.getvalue().splitlines() == expected, f"{page}:\n{code}"
            ran += 1
    assert ran


@pytest.mark.parametrize("page", [pytest.param(p, marks=engine_marks("\n".join(runnable(p)))) for p in SCRIPT_PAGES])
def test_engine_page_runs_and_prints_what_it_says(page: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    script = "\n".join(runnable(page))
    expected = expected_output(script)
    assert expected, f"{page} states the output of its examples"
    # Run as a file, as a user would: Temporal's workflow sandbox re-imports the workflows' module.
    (tmp_path / "page.py").write_text(script)
    proc = subprocess.run(
        [sys.executable, "page.py"],
        cwd=tmp_path,
        env=script_env(request, script),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected, proc.stderr


def test_expected_output_lines_are_recognised() -> None:
    # Guards the guard: a block with expected output must yield it, in either spelling.
    assert expected_output("#> a\n# > b\n# c") == ["a", "b"]
    assert any(expected_output(code) for page in ("engines.md", "local.md") for code in runnable(page))


def _docstring_code_lines() -> list[tuple[str, str]]:
    import durable_agents

    modules = ["", ".exceptions", ".local", ".dbos", ".temporal", ".prefect", ".testing"]
    found: list[tuple[str, str]] = []
    for suffix in modules:
        module = __import__(f"durable_agents{suffix}", fromlist=["__all__"])
        objects: list[object] = [module, *(getattr(module, n) for n in module.__all__)]
        objects += [m for o in objects if inspect.isclass(o) for n, m in vars(o).items() if not n.startswith("_")]
        objects += [o.__init__ for o in objects if inspect.isclass(o)]  # type: ignore[misc]
        for obj in objects:
            doc = inspect.getdoc(obj) or ""
            for m in FENCE.finditer(doc):
                found += [
                    (f"{getattr(obj, '__qualname__', suffix)} docstring", line) for line in m.group(2).splitlines()
                ]
    assert durable_agents.__all__
    return found


def test_no_code_line_is_clipped() -> None:
    lines = [(f"{b.page}:{b.line}", line) for page in pages() for b in blocks(page) for line in b.code.splitlines()]
    lines += [
        (str(p.relative_to(ROOT)), line)
        for p in (ROOT / "examples").glob("*.py")
        for line in p.read_text().splitlines()
    ]
    lines += _docstring_code_lines()
    long = [f"{where}: {line}" for where, line in lines if len(line) > MAX_CODE_LINE]
    assert not long, f"code lines over {MAX_CODE_LINE} characters are clipped on the site:\n" + "\n".join(long)
