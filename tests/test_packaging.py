"""What a pip user gets: the distribution name in every install hint, the typing marker, the license, the
changelog, the console script, and a reason next to every dependency bound."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import durable_agents

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NAME = PYPROJECT["project"]["name"]
# Names on PyPI that belong to other projects (issue 14); `pip index versions durable-pydantic-agents` found nothing.
TAKEN = {"durable-agents", "pydantic-ai-durable"}


def test_install_hints_name_our_distribution() -> None:
    assert NAME not in TAKEN
    files = [*(ROOT / "durable_agents").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    hints = [(f.name, h) for f in files for h in re.findall(r"pip install '([^'\[]+)\[", f.read_text())]
    assert hints, "no install hints found"
    assert [(f, h) for f, h in hints if h != NAME] == []


def test_the_wheel_ships_a_typing_marker_license_and_changelog() -> None:
    assert (ROOT / "durable_agents" / "py.typed").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "MIT"
    assert f"## {durable_agents.__version__}" in (ROOT / "CHANGELOG.md").read_text()
    assert PYPROJECT["project"]["version"] == durable_agents.__version__


def test_every_upper_bound_says_why() -> None:
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    start, end = lines.index("[project]"), lines.index("[dependency-groups]")
    unexplained = [
        line.strip()
        for i, line in enumerate(lines[start:end], start)
        if re.search(r'"[A-Za-z][^"]*<', line) and not lines[i - 1].strip().startswith("#")
    ]
    assert unexplained == []
    assert any("pydantic-ai-slim" in d and "<" in d for d in PYPROJECT["project"]["dependencies"])


def test_the_console_script_runs() -> None:
    target = PYPROJECT["project"]["scripts"]["durable-agents"]
    module, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))
    script = Path(sys.executable).parent / "durable-agents"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == durable_agents.__version__
    out = subprocess.run([str(script), "runs", "--help"], capture_output=True, text=True, check=True, timeout=60)
    assert all(command in out.stdout for command in ("list", "show", "resume"))
