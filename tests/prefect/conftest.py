"""The Prefect tests share the session's Prefect server (see `tests/conftest.py`, which configures Prefect before
anything imports it)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PREFECT_WARNING_FILTERS


@pytest.fixture(scope="session", autouse=True)
def _prefect_server(prefect_server: str) -> str:
    return prefect_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for mark in PREFECT_WARNING_FILTERS:
                item.add_marker(mark)


@pytest.fixture(autouse=True)
def _collect_garbage_per_test() -> Iterator[None]:
    # Unraisable warnings are reported to the test that was running when the object died; collect here so they
    # meet the per-test filters above instead of surfacing at session end, where no filter applies.
    yield
    gc.collect()
