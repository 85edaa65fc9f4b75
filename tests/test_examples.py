"""Every `examples/*.py` runs as a script against the test engines and exits 0 after printing what it did.

New examples are picked up by the glob; each reads its engine's address from the environment (see
`tests/_engine_env.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._engine_env import engine_marks, script_env
from tests.temporal.conftest import temporal_env  # noqa: F401  # fixture, started only for Temporal examples

EXAMPLES = Path(__file__).parent.parent / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_there_is_an_example_per_engine() -> None:
    names = {p.name for p in SCRIPTS}
    for engine in ("local", "dbos", "temporal", "prefect"):
        assert f"quickstart_{engine}.py" in names


@pytest.mark.parametrize("script", [pytest.param(p, id=p.stem, marks=engine_marks(p.read_text())) for p in SCRIPTS])
def test_example_runs(script: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = script_env(request, script.read_text())
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
