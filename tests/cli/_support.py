"""Calling the `durable-agents` command in-process, as a user's shell would, and reading what it printed."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from durable_agents.cli import app


async def cli(*args: str) -> tuple[Any, str]:
    """Run `durable-agents ARGS...`; the command's return value and its output (a wide console, no colours)."""
    out = io.StringIO()
    console = Console(file=out, width=400, color_system=None, force_terminal=False)
    result = await app.run_async(list(args), console=console, result_action="return_value", exit_on_error=False)
    return result, out.getvalue()
