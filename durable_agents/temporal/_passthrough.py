"""The workflow sandbox's pass-through modules, derived from the installed distributions.

A module that the sandbox does not pass through is imported again inside every workflow run, and an import that
happens first inside a workflow fails (`Module ... was imported after initial workflow load`, or a restricted call
such as `platform.python_implementation()` at import time). A library passed through still imports its own
dependencies lazily, from inside the workflow: logfire imports `rich` and `attrs` on the first span whose
arguments are objects. So a library listed here brings its dependencies with it: the requirements of the
distributions that provide it (`importlib.metadata`), recursively, those that are installed, without the
requirements of extras (an extra that is installed is a library of its own, to list if it runs in workflows).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping

__all__ = ["PASSTHROUGH_LIBRARIES", "UNDECLARED_IMPORTS", "derive_passthrough_modules"]

PASSTHROUGH_LIBRARIES: Mapping[str, tuple[str, ...]] = {
    "durable-pydantic-agents": ("durable_agents",),
    "pydantic-ai-slim": ("pydantic_ai",),
    "logfire": ("logfire",),
    "mcp": ("mcp",),
    "fastmcp-slim": ("fastmcp",),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "google-genai": ("google",),
    "groq": ("groq",),
    "mistralai": ("mistralai",),
    "cohere": ("cohere",),
    "tiktoken": ("tiktoken",),
}
"""The libraries whose code runs in workflows (the agent graph and message types, tracing, and the clients of
model providers, which are built there but do no I/O there): distribution name and top-level modules. The
modules are passed through whether the distribution is installed or not (an editable install lists none)."""

UNDECLARED_IMPORTS: Mapping[str, tuple[str, ...]] = {
    # logfire encodes span arguments with the libraries that made them, imported on first use when installed.
    "logfire": ("attrs", "numpy", "pandas", "sqlalchemy"),
}
"""Distributions that a library imports when they are installed without declaring them as requirements
(optional integrations), by library."""

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(distribution: importlib.metadata.Distribution) -> list[str]:
    """The names of the distributions `distribution` requires, without those of its extras."""
    names: list[str] = []
    for requirement in distribution.requires or []:
        match = _NAME.match(requirement)
        if match is not None and "extra" not in requirement.partition(";")[2]:
            names.append(match.group(1))
    return names


def _top_level_modules(distribution: importlib.metadata.Distribution) -> set[str]:
    """The importable top-level names among a distribution's installed files (none for an editable install)."""
    modules: set[str] = set()
    for file in distribution.files or []:
        top = file.parts[0]
        if len(file.parts) == 1:
            if not top.endswith(".py") and ".cpython-" not in top and not top.endswith((".so", ".pyd")):
                continue
            top = top.partition(".")[0]
        if top.isidentifier() and top != "__pycache__":
            modules.add(top)
    return modules


def derive_passthrough_modules(
    libraries: Mapping[str, tuple[str, ...]] = PASSTHROUGH_LIBRARIES,
    undeclared: Mapping[str, tuple[str, ...]] = UNDECLARED_IMPORTS,
) -> tuple[str, ...]:
    """The top-level modules of `libraries` and of every installed distribution they require, recursively.

    Args:
        libraries: Distribution names and their top-level modules.
        undeclared: Distributions a library imports without requiring them, by library; followed when installed.

    Returns:
        Sorted top-level module names.
    """
    installed: dict[str, importlib.metadata.Distribution] = {}
    for distribution in importlib.metadata.distributions():
        installed.setdefault(_normalized(distribution.metadata["Name"] or ""), distribution)
    modules = {m for names in libraries.values() for m in names}
    pending = [*libraries, *(d for library in libraries for d in undeclared.get(library, ()))]
    seen: set[str] = set()
    while pending:
        name = _normalized(pending.pop())
        distribution = installed.get(name)
        if name in seen or distribution is None:  # done, or not installed
            continue
        seen.add(name)
        modules.update(_top_level_modules(distribution))
        pending.extend(_requirements(distribution))
    return tuple(sorted(modules))
