"""The built docs site: a strict build, an API reference that shows the wrappers' constructor parameters and
hides engine-author hooks, pages of a readable size, and no cross-reference left as raw text."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HOOKS = ["in_container", "new_run_key", "execute_unit", "run_outside_container", "recorded_exchanges"]
WRAPPER_PAGES = {
    "dbos": ["step_config", "model_step_config", "mcp_step_config", "tool_step_configs"],
    "temporal": ["activity_config", "model_activity_config", "tool_activity_config", "local_activity_tools"],
    "prefect": ["task_config", "model_task_config", "tool_task_config_by_name", "heartbeat_seconds"],
    "local": ["unit_config", "tool_unit_configs", "max_payload_bytes"],
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    proc = subprocess.run(mkdocs, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


def text(page: Path) -> str:
    """A page's visible text, without its code blocks."""
    body = re.sub(r"<pre.*?</pre>", "", page.read_text(), flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.mark.parametrize("engine", WRAPPER_PAGES)
def test_the_wrappers_constructor_parameters_are_listed_and_hooks_are_not(site: Path, engine: str) -> None:
    page = text(site / "api" / engine / "index.html")
    assert [p for p in WRAPPER_PAGES[engine] if p not in page] == []
    assert [h for h in HOOKS if h in page] == []


def test_engine_author_hooks_have_their_own_page(site: Path) -> None:
    page = text(site / "api" / "engine-authors" / "index.html")
    assert [h for h in HOOKS if h not in page] == []


def test_no_page_is_huge_and_no_reference_is_left_as_raw_text(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert [p for p in pages if p.stat().st_size > 200_000] == []
    raw = [(p.relative_to(site), m.group()) for p in pages for m in re.finditer(r"\]\[[\w.]*\]", text(p))]
    assert raw == []


def test_the_quickstart_comes_first_and_includes_the_scripts(site: Path) -> None:
    nav = (ROOT / "mkdocs.yml").read_text().split("nav:")[1].splitlines()
    assert nav[1].strip() == "- Quickstart: quickstart.md"
    page = (site / "quickstart" / "index.html").read_text()
    for engine in ("local", "dbos", "temporal", "prefect"):
        first_line = (ROOT / "examples" / f"quickstart_{engine}.py").read_text().splitlines()[0]
        assert first_line.removeprefix('"""') in html.unescape(page)
