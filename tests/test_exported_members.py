"""Every public name is exported in a sorted `__all__`, and nothing private leaks."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["durable_agents", "durable_agents.exceptions", "durable_agents.local", "durable_agents.testing"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
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
