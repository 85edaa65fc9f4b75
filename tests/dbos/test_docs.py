"""The package's exports (`tests/test_docs_examples.py` runs the examples of docs/dbos.md on a real DBOS)."""

from __future__ import annotations

import importlib
import inspect

import pytest

pytestmark = pytest.mark.dbos


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
