"""The examples of docs/dbos.md run on a real DBOS and print what the page says; the package's exports."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dbos

PAGE = Path(__file__).parent.parent.parent / "docs" / "dbos.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_examples_run_and_print_what_the_page_says(tmp_path: Path) -> None:
    code = [b for b in BLOCK.findall(PAGE.read_text()) if not b.startswith("# not run")]
    assert code, "the page has runnable examples"
    script = "\n".join(code)
    # `#> text` lines state the output; `ruff format` writes them as `# > text`.
    expected = [re.sub(r"^# ?> ", "", line) for line in script.splitlines() if re.match(r"^# ?> ", line)]
    assert expected
    # DBOS is process-wide state: run the page as its own program, in a scratch directory for its SQLite file.
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


def test_all_is_sorted_complete_and_importable() -> None:
    module = importlib.import_module("durable_agents.dbos")
    exported = list(module.__all__)
    assert exported == sorted(exported) == ["DBOSAgent", "StepConfig", "application_version"]
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not inspect.ismodule(v) and getattr(v, "__module__", "").startswith("durable")
    }
    assert public <= set(exported)
