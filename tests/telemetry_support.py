"""Span capture for the telemetry tests: one in-memory exporter per test process, or a JSON-lines file per subprocess.

OpenTelemetry's global tracer provider can be set once per process, so every test that reads spans shares the
provider installed here and clears the exporter first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SPANS_FILE_ENV = "DURABLE_AGENTS_TEST_SPANS"
"""In a subprocess: the file `install_file_exporter()` appends every finished span to, one JSON line each."""

_MEMORY: list[InMemorySpanExporter] = []
_ATTACHED: list[object] = []  # the providers the in-memory exporter is a span processor of


@dataclass(frozen=True)
class SpanRecord:
    """What the tests read of a span, the same whether it came from memory or from a subprocess's file."""

    name: str
    scope: str
    trace_id: int
    span_id: int
    parent_id: int | None
    attributes: dict[str, Any]


def memory_exporter() -> InMemorySpanExporter:
    """The process's in-memory exporter, a span processor of the global tracer provider.

    The global provider can be set once per process. When an earlier test set one up (Logfire's
    `logfire.configure()` installs its own proxy provider), the exporter is added to that one.
    """
    if not _MEMORY:
        _MEMORY.append(InMemorySpanExporter())
    provider: Any = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):  # the API's no-op proxy: nobody installed a provider yet
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not any(p is provider for p in _ATTACHED):
        provider.add_span_processor(SimpleSpanProcessor(_MEMORY[0]))
        _ATTACHED.append(provider)
    return _MEMORY[0]


def records(spans: Iterable[ReadableSpan]) -> list[SpanRecord]:
    out: list[SpanRecord] = []
    for span in spans:
        assert span.context is not None
        out.append(
            SpanRecord(
                span.name,
                span.instrumentation_scope.name if span.instrumentation_scope else "",
                span.context.trace_id,
                span.context.span_id,
                span.parent.span_id if span.parent else None,
                dict(span.attributes or {}),
            )
        )
    return out


class _FileExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._path.open("a") as f:
            for r in records(spans):
                f.write(json.dumps(r.__dict__, default=str) + "\n")
                f.flush()
        return SpanExportResult.SUCCESS


def install_file_exporter() -> None:
    """In a subprocess: append every finished span to the file `DURABLE_AGENTS_TEST_SPANS` names (if set)."""
    path = os.environ.get(SPANS_FILE_ENV)
    if path:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_FileExporter(Path(path))))
        trace.set_tracer_provider(provider)


def read_spans_file(path: Path) -> list[SpanRecord]:
    if not path.exists():
        return []
    return [SpanRecord(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def ours(spans: Iterable[SpanRecord]) -> tuple[list[SpanRecord], list[SpanRecord]]:
    """The run spans and the unit spans of durable_agents among `spans`."""
    mine = [s for s in spans if s.scope == "durable_agents"]
    return [s for s in mine if s.name.startswith("durable_agents run ")], [
        s for s in mine if s.name.startswith("durable_agents unit ")
    ]


def has_ancestor(span: SpanRecord, ancestor: SpanRecord, spans: Iterable[SpanRecord]) -> bool:
    """Whether `ancestor` is above `span` in the tree that the exported `spans` form (same trace, parent links)."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    seen = 0
    current: SpanRecord | None = span
    while current is not None and current.parent_id is not None and seen < 100:
        if current.trace_id == ancestor.trace_id and current.parent_id == ancestor.span_id:
            return True
        current = by_id.get((current.trace_id, current.parent_id))
        seen += 1
    return False
