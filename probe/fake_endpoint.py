"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose replies are scripted.

Tests and benchmarks point probe at it instead of mocking the client, so every byte goes through
the same HTTP stack as against a real provider: refusals in one language and answers in
another, reasoning fields, provider content filters, 429 with Retry-After, 5xx, slow replies,
dropped connections, malformed JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted behaviour. The defaults give a normal 200 completion."""

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    body: Any = None  # overrides the whole JSON body
    raw: bytes | None = None  # sent verbatim (malformed JSON, etc.)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without a reply
    drop_mid_body: bool = False  # send headers and half the body, then close
    drip_s: float = 0.0  # send the body one chunk at a time with this pause
    model: str | None = None


Matcher = Callable[[dict[str, Any]], bool]


@dataclass
class _Rule:
    match: Matcher
    replies: list[Reply]
    repeat_last: bool
    calls: int = 0


def user_text(request: dict[str, Any]) -> str:
    messages = request.get("messages") or []
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class FakeEndpoint:
    """Start with `with FakeEndpoint() as ep:`; `ep.base_url` ends in /v1."""

    def __init__(
        self,
        default: Callable[[dict[str, Any]], Reply] | None = None,
        api_key: str | None = None,
        models: tuple[str, ...] | None = None,
    ) -> None:
        self.rules: list[_Rule] = []
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.default = default or (lambda req: Reply(content=f"Answer: {user_text(req)}"))
        self.api_key = api_key
        self.models = models
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # scripting -----------------------------------------------------------------------------
    def on(self, match: str | Matcher, *replies: Reply, repeat_last: bool = True) -> FakeEndpoint:
        """Requests whose user text contains `match` (or for which it returns True) get
        `replies` in order; the last one repeats unless `repeat_last` is False, after which the
        default behaviour applies."""
        matcher: Matcher = (
            (lambda req, s=match: s in user_text(req)) if isinstance(match, str) else match
        )
        with self._lock:
            self.rules.append(_Rule(matcher, list(replies), repeat_last))
        return self

    def count(self, match: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if match is None or match in user_text(r))

    def _choose(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if rule.match(request):
                    if rule.calls < len(rule.replies):
                        reply = rule.replies[rule.calls]
                    elif rule.repeat_last:
                        reply = rule.replies[-1]
                    else:
                        continue
                    rule.calls += 1
                    return reply
        return self.default(request)

    # lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the endpoint first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeEndpoint:
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            names = self.owner.models or ("fake-model",)
            self._send_json(
                200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
            )
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        self.owner.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.owner.api_key is not None:
            auth = self.headers.get("authorization", "")
            if auth != f"Bearer {self.owner.api_key}":
                self._send_json(
                    401,
                    {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}},
                )
                return
        if self.owner.models and request.get("model") not in self.owner.models:
            self._send_json(
                404,
                {
                    "error": {
                        "message": f"model {request.get('model')} not found",
                        "code": "model_not_found",
                    }
                },
            )
            return
        reply = self.owner._choose(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.drop:
            self._drop()
            return
        if reply.raw is not None:
            payload = reply.raw
        elif reply.body is not None:
            payload = json.dumps(reply.body).encode()
        elif reply.status != 200:
            payload = json.dumps({"error": {"message": f"HTTP {reply.status}"}}).encode()
        else:
            payload = json.dumps(_completion(request, reply), ensure_ascii=False).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if reply.drop_mid_body:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._drop()
            return
        if reply.drip_s:
            for start in range(0, len(payload), 64):
                self.wfile.write(payload[start : start + 64])
                self.wfile.flush()
                time.sleep(reply.drip_s)
        else:
            self.wfile.write(payload)

    def _send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    if reply.reasoning is not None:
        message["reasoning"] = reply.reasoning
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    text = reply.content or ""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or f"{request.get('model', 'fake')}-2026-11-01",
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": {
            "prompt_tokens": len(user_text(request).split()),
            "completion_tokens": len(text.split()),
            "total_tokens": len(user_text(request).split()) + len(text.split()),
        },
    }
