"""The caller's trace context in a workflow's headers, so a durable run started by a client joins the caller's trace.

A client with [`DurableAgentsPlugin`][durable_agents.temporal.DurableAgentsPlugin] writes the W3C `traceparent` of
its current span into the headers of every workflow it starts; a worker with the plugin makes it the current parent
while the workflow runs. Headers are part of the workflow's history, so every replay, on any worker, sees the same
parent: the run span (see `durable_agents._telemetry`) is parented to the caller, whichever worker emits it.
"""

from __future__ import annotations

from typing import Any

from temporalio import client, worker
from temporalio.api.common.v1 import Payload

from .._telemetry import attach_traceparent, current_traceparent

__all__ = ["TRACE_HEADER", "TraceHeaders"]

TRACE_HEADER = "durable-agents-traceparent"
"""The workflow header that carries the caller's `traceparent`."""


class TraceHeaders(client.Interceptor, worker.Interceptor):
    """Client and worker interceptor that carries the caller's trace context into workflows."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        """Write the current span's `traceparent` into the headers of workflows this client starts."""
        return _ClientOutbound(next)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor] | None:
        """Attach a started workflow's carried `traceparent` while the workflow runs."""
        return _WorkflowInbound


class _ClientOutbound(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        traceparent = current_traceparent()
        if traceparent is not None and TRACE_HEADER not in input.headers:
            payload = Payload(metadata={"encoding": b"binary/plain"}, data=traceparent.encode())
            input.headers = {**input.headers, TRACE_HEADER: payload}
        return await super().start_workflow(input)


class _WorkflowInbound(worker.WorkflowInboundInterceptor):
    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        header = input.headers.get(TRACE_HEADER)
        with attach_traceparent(header.data.decode(errors="replace") if header is not None else None):
            return await super().execute_workflow(input)
