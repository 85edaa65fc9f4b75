"""A loopback OpenAI-compatible chat completions server, for tests where the HTTP path, retries and faults matter.

It answers `POST /v1/chat/completions` on 127.0.0.1 with a scripted reply, after returning the queued faults
(HTTP status codes) first. Every request is counted, so a test can prove how often the model was really called.
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


def _echo_last(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": f"echo: {messages[-1].get('content')}"}


class FakeOpenAIServer:
    """A chat completions server on loopback; use as a context manager.

    Args:
        reply: Builds each answer from the request's messages.
        faults: HTTP status codes to answer with, one per request, before answering normally.
    """

    def __init__(self, reply: ChatReply = _echo_last, faults: list[int] | None = None) -> None:
        self.reply = reply
        self.faults = list(faults or [])
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, payload = server.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
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

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one request (called by the server thread)."""
        with self._lock:
            self.requests.append(body)
            fault = self.faults.pop(0) if self.faults else None
            status = fault or (404 if not path.endswith("/chat/completions") else 200)
            self.statuses.append(status)
        if status != 200:
            return status, {"error": {"message": f"injected fault {status}", "type": "server_error", "code": status}}
        message = {"role": "assistant", "content": None, **self.reply(body.get("messages", []))}
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
