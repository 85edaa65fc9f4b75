"""A loopback OpenAI-compatible chat completions server, for tests where the HTTP path, retries and faults matter.

It answers `POST /v1/chat/completions` on 127.0.0.1 with a scripted reply, after returning the queued faults
(HTTP status codes, optionally with response headers such as `Retry-After`) first. Every request is counted, with
its headers and arrival time, so a test can prove how often (and how far apart) the model was really called.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ChatReply", "FakeOpenAIServer"]

ChatReply = Callable[[list[dict[str, Any]]], dict[str, Any]]
"""Builds the assistant message (`{"content": ...}` or `{"tool_calls": [...]}`) from the request's messages."""

Fault = int | tuple[int, dict[str, str]]
"""An HTTP status to answer with, or a status and the response headers to send with it."""


def _echo_last(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": f"echo: {messages[-1].get('content')}"}


class FakeOpenAIServer:
    """A chat completions server on loopback; use as a context manager.

    Args:
        reply: Builds each answer from the request's messages.
        faults: Faults to answer with, one per request, before answering normally: a status code, or a status
            code and response headers (e.g. `(503, {"Retry-After": "2"})`).
    """

    def __init__(self, reply: ChatReply = _echo_last, faults: list[Fault] | None = None) -> None:
        self.reply = reply
        self.faults = list(faults or [])
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.headers: list[dict[str, str]] = []
        """Each request's HTTP headers (names lowercased)."""
        self.times: list[float] = []
        """When each request arrived (`time.monotonic()`)."""
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = server.answer(self.path, body, headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The `base_url` to give an OpenAI client (ends with `/v1`)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def answer(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request (called by the server thread): status, JSON body and extra response headers."""
        with self._lock:
            self.times.append(time.monotonic())
            self.requests.append(body)
            self.headers.append(dict(headers or {}))
            fault = self.faults.pop(0) if self.faults else None
            status, extra = fault if isinstance(fault, tuple) else (fault, {})
            status = status or (404 if not path.endswith("/chat/completions") else 200)
            self.statuses.append(status)
        if status != 200:
            error = {"message": f"injected fault {status}", "type": "server_error", "code": status}
            return status, {"error": error}, extra
        message = {"role": "assistant", "content": None, **self.reply(body.get("messages", []))}
        return (
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
            {},
        )

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
