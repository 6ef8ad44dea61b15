"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose replies are scripted.

Tests and benchmarks point probe at it instead of mocking the client, so every byte goes through
the same HTTP stack as against a real provider: refusals in one language and answers in
another, reasoning fields, provider content filters, 429 with Retry-After, 5xx, slow replies,
dropped connections, malformed JSON.

Beyond per-prompt scripts it can inject faults at random into a share of all requests
(`fault_rate`, reproducible with `seed`), echo the caller's credentials back (a hostile
endpoint, for the secret-leak tests), and run as its own process
(`python -m probe.fake_endpoint --delay 0.2`) so a benchmark's server CPU is not counted as
the harness's.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import signal
import socket
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
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
    echo_auth: bool = False  # put the caller's Authorization header into the reply
    no_length: bool = False  # no content-length: the body runs until the connection closes
    chunked: bool = False  # transfer-encoding: chunked, in 100-byte chunks
    encoding: str | None = None  # content-encoding: gzip or deflate
    close_after: bool = False  # close the connection after replying, without saying so


Matcher = Callable[[dict[str, Any]], bool]

# Fault kinds `fault_reply` knows; `FakeEndpoint(fault_rate=...)` draws among them.
FAULTS: tuple[str, ...] = (
    "429",  # no Retry-After: exponential backoff
    "429-retry-after",  # Retry-After: 0 (honoured, and quick)
    "429-retry-after-ms",  # retry-after-ms: 20
    "500",
    "502",
    "503",
    "timeout",  # no reply before the client's deadline
    "drop",  # connection closed before any reply
    "drop-mid-body",  # headers and half the body, then closed
    "malformed-json",
    "empty-choices",
    "stall",  # a slow drip that never finishes within the deadline
)


def fault_reply(kind: str, *, timeout_s: float = 1.0) -> Reply:
    """The Reply for one fault kind; `timeout_s` is the client deadline a slow fault beats."""
    if kind == "429":
        return Reply(
            status=429, body={"error": {"message": "Rate limit reached", "type": "rate_limit"}}
        )
    if kind == "429-retry-after":
        return Reply(status=429, headers={"Retry-After": "0"})
    if kind == "429-retry-after-ms":
        return Reply(status=429, headers={"retry-after-ms": "20"})
    if kind in ("500", "502", "503"):
        return Reply(status=int(kind))
    if kind == "timeout":
        return Reply(content="too late", delay_s=timeout_s * 1.5)
    if kind == "drop":
        return Reply(drop=True)
    if kind == "drop-mid-body":
        return Reply(content="cut short " * 20, drop_mid_body=True)
    if kind == "malformed-json":
        return Reply(raw=b'{"choices": [{"message": {"content": "unterminated')
    if kind == "empty-choices":
        return Reply(body={"id": "x", "object": "chat.completion", "choices": []})
    if kind == "stall":
        # Each chunk arrives well within a per-read timeout; the whole never does.
        return Reply(content="s" * 640, drip_s=timeout_s / 4)
    raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")


@dataclass
class _Rule:
    match: Matcher
    replies: list[Reply]
    repeat_last: bool
    calls: int = 0


def user_text(request: dict[str, Any]) -> str:
    messages = request.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class FakeEndpoint:
    """Start with `with FakeEndpoint() as ep:`; `ep.base_url` ends in /v1."""

    def __init__(
        self,
        default: Callable[[dict[str, Any]], Reply] | None = None,
        api_key: str | None = None,
        models: tuple[str, ...] | None = None,
        *,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        fault_timeout_s: float = 1.0,
        seed: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        self.rules: list[_Rule] = []
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.default = default or (lambda req: Reply(content=f"Answer: {user_text(req)}"))
        self.api_key = api_key
        self.models = models
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.fault_timeout_s = fault_timeout_s
        self.delay_s = delay_s  # added to every reply (a fixed model latency)
        self.faults_sent: Counter[str] = Counter()
        self._rng = random.Random(seed)
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

    def texts(self) -> list[str]:
        """The user text of every request received, in arrival order."""
        with self._lock:
            return [user_text(r) for r in self.requests]

    def _choose(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.faults)
                self.faults_sent[kind] += 1
                return fault_reply(kind, timeout_s=self.fault_timeout_s)
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

    def start(self, port: int = 0) -> FakeEndpoint:
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        server = _QuietServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        # A short poll interval: stop() returns in milliseconds, not half a second per test.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
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


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (timeout, cancelled run) breaks the pipe mid-reply; that is the
    point of several fault tests, not a server error worth a traceback on stderr."""

    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeEndpoint
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK and every reply gains ~40 ms. Real servers (uvicorn) set this.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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
        raw_request = self.rfile.read(length)
        if len(raw_request) < length:  # the client went away mid-upload: no request arrived
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        if not path.endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {path}"}})
            return
        try:
            request = json.loads(raw_request or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.owner._lock:
            self.owner.headers_seen.append(headers)
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
        if self.owner.delay_s:
            time.sleep(self.owner.delay_s)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.drop:
            self._drop()
            return
        echoed = headers.get("authorization", "") if reply.echo_auth else ""
        if reply.raw is not None:
            payload = reply.raw
        elif reply.body is not None:
            payload = json.dumps(reply.body).encode()
        elif reply.status != 200:
            message = f"HTTP {reply.status}" + (f" for {echoed}" if echoed else "")
            payload = json.dumps({"error": {"message": message}}).encode()
        else:
            if echoed:
                reply = Reply(**{**reply.__dict__, "content": f"{reply.content or ''} {echoed}"})
            payload = json.dumps(_completion(request, reply), ensure_ascii=False).encode()
        if reply.encoding == "gzip":
            payload = gzip.compress(payload)
        elif reply.encoding == "deflate":
            payload = zlib.compress(payload)
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        if reply.encoding:
            self.send_header("content-encoding", reply.encoding)
        if reply.chunked:
            self.send_header("transfer-encoding", "chunked")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            for start in range(0, len(payload), 100):
                piece = payload[start : start + 100]
                self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\nx-trailer: yes\r\n\r\n")
            return
        if reply.no_length:
            self.send_header("connection", "close")
            self.close_connection = True
        else:
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
        if reply.close_after:
            self.wfile.flush()
            self._drop()

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


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; print the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m probe.fake_endpoint", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    endpoint = FakeEndpoint(delay_s=args.delay, fault_rate=args.fault_rate, seed=args.seed)
    endpoint.start(args.port)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(endpoint.base_url, flush=True)
    # Wake up regularly: a signal delivered to a server thread only sets a flag, which the
    # main thread acts on when it next runs Python code, never inside an untimed wait.
    while not done.wait(0.2):
        pass
    endpoint.stop()
    print(json.dumps({"requests": len(endpoint.requests)}), flush=True)


if __name__ == "__main__":
    main()
