"""Every public name is exported in `__all__`, and everything exported exists."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "durable_agents",
    "durable_agents.dbos",
    "durable_agents.cli",
    "durable_agents.exceptions",
    "durable_agents.local",
    "durable_agents.prefect",
    "durable_agents.temporal",
    "durable_agents.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    # Sorting (constants, then classes, then functions) is enforced by ruff's RUF022.
    assert len(exported) == len(set(exported))
    for member in exported:
        assert hasattr(module, member), member
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not inspect.ismodule(v)
        and getattr(v, "__module__", name).startswith("durable_agents")
    }
    assert public <= set(exported) | {"annotations"}
