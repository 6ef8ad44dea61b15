"""One OpenAI-compatible chat backend for every provider probe supports.

OpenAI, DeepSeek, DashScope (Qwen), OpenRouter, Ollama, vLLM, the llama.cpp server and LM Studio
all speak `/v1/chat/completions`. This module makes exactly one attempt and says precisely what
happened, so the runner can decide about retries and the store keeps the raw exchange:

- `ok`: the model replied (its refusal, if any, is the classifier's business);
- `blocked`: the provider's own filter stopped the request or the reply (HTTP 400/451 with a
  filter message in the body, or finish_reason `content_filter`). Never a model refusal;
- `error`: transport or server trouble, retryable or not.

Requests go through the `openai` package's async client (over httpx) by default, with its own
retries off. A flaky endpoint must not be able to hang or exhaust a sweep, so every attempt has
a *total* deadline (a server that drips one byte a second never trips a per-read timeout) and a
cap on the body size (a runaway reply is refused, not buffered without bound).
`PROBE_HTTP_TRANSPORT=builtin` selects a minimal HTTP/1.1 client instead (httpx behind a
proxy), which costs about a tenth of the harness CPU per request for very large sweeps. An attempt never raises (except on cancellation): whatever goes wrong becomes an
`error` attempt with a readable reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import ssl
import time
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from probe import __version__
from probe.reasoning import split_reasoning
from probe.targets import Params, Target

# Phrases providers put in the body of an HTTP 400/451 when their filter fired.
_BLOCK_PATTERNS = re.compile(
    r"data_inspection_failed|datainspectionfailed|inappropriate content|content exists risk|"
    r"content_filter|content_policy_violation|responsibleaipolicyviolation|content management "
    r"policy|sensitive_words_detected|output data may contain inappropriate|input data may "
    r"contain inappropriate|prompt was filtered|flagged by (our|the) moderation|"
    r"safety (system|filter)|blocked by (the )?(content|safety)|risk control|敏感|违规",
    re.IGNORECASE,
)
_BLOCK_STATUSES = {400, 403, 422, 451}
# Statuses that will fail the same way for every job: stop the run and say why.
_FATAL_STATUSES = {
    401: "the API key was rejected (401)",
    402: "the account has no credit left (402)",
    404: "model or endpoint not found (404)",
}
_QUOTA = re.compile(
    r"insufficient_quota|insufficient balance|exceeded your current quota", re.IGNORECASE
)
_RETRY_STATUSES = {408, 409, 425, 429}
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_KEEP_TEXT = 20_000  # characters of a non-JSON body kept as evidence


def max_response_bytes() -> int:
    """The largest reply body accepted (PROBE_MAX_RESPONSE_BYTES overrides 32 MiB)."""
    try:
        return max(1024, int(os.environ.get("PROBE_MAX_RESPONSE_BYTES", "")))
    except ValueError:
        return DEFAULT_MAX_RESPONSE_BYTES


@dataclass
class Attempt:
    """The result of one HTTP exchange."""

    outcome: str  # ok | blocked | error
    retryable: bool = False
    fatal: str | None = None  # a reason to stop the whole run (bad key, unknown model)
    retry_after: float | None = None
    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    finish_reason: str | None = None
    resolved_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    http_status: int | None = None
    error: str | None = None
    response_json: Any = None  # the raw reply: its JSON text, or the parsed value
    connect_failed: bool = False  # the server was never reached (refused, DNS, TLS)
    extra: dict[str, Any] = field(default_factory=dict)


def build_messages(text: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return messages


def build_request(target: Target, messages: list[dict[str, str]], params: Params) -> dict[str, Any]:
    body: dict[str, Any] = {"model": target.model, "messages": messages}
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.seed is not None:
        body["seed"] = params.seed
    body.update(
        {k: v for k, v in params.extra_body.items() if k not in ("model", "messages", "stream")}
    )
    return body


class TransportError(Exception):
    """One exchange failed below HTTP; `kind` says how, for the runner's retry decision."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # connect | dropped | protocol


Headers = dict[str, str]
_URL_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class Endpoint:
    """Where chat requests go: parsed once from the base URL.

    Credentials in the URL become an Authorization header and never appear in the request
    line, so no log line or error message that prints a URL can print them."""

    scheme: str
    host: str
    port: int
    target: str  # the request target: path and query
    auth: str | None  # an Authorization header value taken from user:password in the URL

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        default = 443 if scheme == "https" else 80
        # Percent-encode what may not appear raw in a request line (spaces, non-ASCII);
        # escapes already in the URL are kept as they are.
        path = quote(parts.path.rstrip("/") + "/chat/completions", safe=_URL_SAFE)
        query = quote(parts.query, safe=_URL_SAFE + "?")
        target = f"{path}?{query}" if query else path
        auth = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(scheme, parts.hostname or "", parts.port or default, target, auth)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The chat URL without credentials."""
        return f"{self.scheme}://{self.host_header}{self.target}"

    def proxied(self) -> bool:
        """Whether the environment routes this host through a proxy (HTTP(S)_PROXY and
        NO_PROXY, as curl and httpx read them)."""
        proxies = urllib.request.getproxies()
        if not (proxies.get(self.scheme) or proxies.get("all")):
            return False
        return not urllib.request.proxy_bypass(self.host)


def _ssl_context() -> ssl.SSLContext:
    """Verified TLS with the CA bundle users expect: SSL_CERT_FILE/SSL_CERT_DIR when set,
    else certifi's bundle (as httpx and the openai package use), else the system store."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        with contextlib.suppress(ImportError):
            import certifi

            cafile = certifi.where()
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """False once the server closed an idle keep-alive connection (uvicorn drops them
        after 5 s), so a rate-limited worker reconnects instead of failing its next send."""
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _Http11:
    """A minimal HTTP/1.1 client: one keep-alive connection per worker slot.

    probe sends one kind of request (a JSON POST) and reads one reply at a time per worker,
    so it needs neither pooling nor a general client. httpx costs about 2 ms of CPU per
    request (anyio, a pool, cookies, auth and redirect machinery); this costs about a tenth,
    which keeps the harness from being the bottleneck of a large sweep on a small machine.
    It reads Content-Length, chunked and close-delimited bodies, skips 1xx replies, undoes
    gzip/deflate, and caps the decoded body at `max_bytes`."""

    def __init__(
        self, endpoint: Endpoint, headers: Headers, timeout_s: float, max_bytes: int
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        lines = [
            f"POST {endpoint.target} HTTP/1.1",
            f"host: {endpoint.host_header}",
            "accept-encoding: gzip, deflate",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._head = "\r\n".join(lines).encode("latin-1") + b"\r\ncontent-length: "
        self._ssl = _ssl_context() if endpoint.scheme == "https" else None
        self._idle: dict[int, _Connection] = {}

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(min(10.0, self.timeout_s)):
                reader, writer = await asyncio.open_connection(
                    self.endpoint.host,
                    self.endpoint.port,
                    ssl=self._ssl,
                    server_hostname=self.endpoint.host if self._ssl else None,
                    limit=1 << 20,
                )
        except TimeoutError as exc:
            raise TransportError(
                "connect", f"ConnectTimeout: no connection within {min(10.0, self.timeout_s):g}s"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise TransportError("connect", f"{type(exc).__name__}: {exc}") from exc
        return _Connection(reader, writer)

    async def post(self, payload: bytes, slot: int) -> tuple[int, Headers, bytes | None]:
        conn = self._idle.pop(slot, None)
        if conn is not None and not conn.usable():
            conn.close()
            conn = None
        if conn is None:
            conn = await self._connect()
        try:
            conn.writer.write(self._head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            await conn.writer.drain()
            status, headers, body, reusable = await self._read(conn.reader)
        except asyncio.IncompleteReadError as exc:
            conn.close()
            got = len(exc.partial)
            detail = "before any reply" if got == 0 else f"mid-reply ({got} bytes in)"
            raise TransportError("dropped", f"the server closed the connection {detail}") from exc
        except (ConnectionError, OSError) as exc:
            conn.close()
            raise TransportError("dropped", f"{type(exc).__name__}: {exc}") from exc
        except asyncio.LimitOverrunError as exc:
            conn.close()
            raise TransportError("protocol", "reply header line longer than 1 MiB") from exc
        except BaseException:  # a timeout or cancellation: the connection's state is unknown
            conn.close()
            raise
        if reusable:
            self._idle[slot] = conn
        else:
            conn.close()
        return status, headers, body

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, Headers, bytes | None, bool]:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            version, status, headers = _parse_head(head)
            if not 100 <= status < 200:
                break
        reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        body: bytes | None
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"].split(",")[0])
            except ValueError as exc:
                raise TransportError("protocol", "bad content-length header") from exc
            if length > self.max_bytes:
                return status, headers, None, False
            body = await reader.readexactly(length)
        else:  # delimited by the server closing the connection
            reusable = False
            chunks: list[bytes] = []
            size = 0
            while chunk := await reader.read(1 << 16):
                size += len(chunk)
                if size > self.max_bytes:
                    return status, headers, None, False
                chunks.append(chunk)
            body = b"".join(chunks)
        if body is None:
            return status, headers, None, False
        encoding = headers.get("content-encoding", "identity").lower().strip()
        if encoding not in ("", "identity"):
            body = _decompress(body, encoding, self.max_bytes)
        return status, headers, body, reusable and body is not None

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                length = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise TransportError("protocol", "bad chunk size in a chunked reply") from exc
            if length == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            size += length
            if size > self.max_bytes:
                return None
            chunks.append(await reader.readexactly(length))
            await reader.readexactly(2)

    async def close(self) -> None:
        idle, self._idle = list(self._idle.values()), {}
        for conn in idle:
            conn.close()


def _parse_head(head: bytes) -> tuple[str, int, Headers]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise TransportError("protocol", f"not an HTTP reply: {lines[0][:80]!r}")
    headers: Headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return parts[0], int(parts[1]), headers


def _decompress(body: bytes, encoding: str, max_bytes: int) -> bytes | None:
    """gzip/deflate with the size cap applied to the output (a small bomb is a big reply)."""
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise TransportError("protocol", f"unsupported content-encoding {encoding!r}")
    try:
        out = decoder.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise TransportError("protocol", f"corrupt {encoding} body ({exc})") from exc
    return None if len(out) > max_bytes else out


class _Httpx:
    """httpx for endpoints behind a proxy (HTTP(S)_PROXY): it speaks CONNECT and SOCKS, which
    the minimal client does not. One single-connection client per slot, because httpcore
    scans its whole pool on every request (quadratic in the number of connections)."""

    def __init__(
        self, endpoint: Endpoint, headers: Headers, timeout_s: float, max_bytes: int
    ) -> None:
        import httpx

        self._httpx = httpx
        self.url = endpoint.url
        self.headers = {
            **headers,
            **(
                {"authorization": endpoint.auth}
                if endpoint.auth and "authorization" not in headers
                else {}
            ),
        }
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._verify = _ssl_context()
        self._clients: dict[int, Any] = {}

    def _client(self, slot: int) -> Any:
        client = self._clients.get(slot)
        if client is None:
            httpx = self._httpx
            client = httpx.AsyncClient(
                headers=self.headers,
                timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s), pool=None),
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
                follow_redirects=False,
                verify=self._verify,
            )
            self._clients[slot] = client
        return client

    async def post(self, payload: bytes, slot: int) -> tuple[int, Headers, bytes | None]:
        httpx = self._httpx
        try:
            async with self._client(slot).stream("POST", self.url, content=payload) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    return response.status_code, headers, None
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():  # decoded: a bomb counts in full
                    size += len(chunk)
                    if size > self.max_bytes:
                        return response.status_code, headers, None
                    chunks.append(chunk)
                return response.status_code, headers, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise TransportError("connect", f"{type(exc).__name__}: {exc}") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise TransportError("dropped", f"{type(exc).__name__}: {exc or 'no detail'}") from exc
        except httpx.HTTPError as exc:
            raise TransportError("protocol", f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class _OpenAI:
    """The default transport: the `openai` package's async client (over httpx), the library
    providers document and test against. Its own retries are off (the runner retries and
    counts); the body is read as a stream so the size cap holds; the caller's total deadline
    still bounds every attempt."""

    def __init__(
        self, endpoint: Endpoint, headers: Headers, timeout_s: float, max_bytes: int
    ) -> None:
        import httpx
        import openai

        self._openai = openai
        self._httpx = httpx
        self.max_bytes = max_bytes
        path = endpoint.target.split("?", 1)[0].removesuffix("/chat/completions")
        query = endpoint.target.split("?", 1)[1] if "?" in endpoint.target else ""
        self._query = dict(parse_qsl(query, keep_blank_values=True)) or None
        auth = headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else None
        custom = {k: v for k, v in headers.items() if k not in ("authorization", "content-type")}
        if auth and key is None:  # user:password from the URL: Basic auth, no bearer key
            custom["authorization"] = auth
        self._client = openai.AsyncOpenAI(
            base_url=f"{endpoint.scheme}://{endpoint.host_header}{path}",
            api_key=key or "not-needed",
            max_retries=0,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            default_headers=custom,
            http_client=httpx.AsyncClient(
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
                verify=_ssl_context(),
                follow_redirects=False,
            ),
        )

    async def post(self, payload: bytes, slot: int) -> tuple[int, Headers, bytes | None]:
        openai, httpx = self._openai, self._httpx
        body = json.loads(payload)
        extra = {k: v for k, v in body.items() if k not in ("model", "messages")}
        create = self._client.chat.completions.with_streaming_response.create
        try:
            async with create(
                model=body["model"],
                messages=body["messages"],
                extra_body=extra or None,
                extra_query=self._query,
            ) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        return response.status_code, headers, None
                    chunks.append(chunk)
                return response.status_code, headers, b"".join(chunks)
        except openai.APIStatusError as exc:
            reply = exc.response
            headers = {k.lower(): v for k, v in reply.headers.items()}
            content = reply.content
            if len(content) > self.max_bytes:
                return reply.status_code, headers, None
            return reply.status_code, headers, content
        except (openai.APITimeoutError, httpx.TimeoutException) as exc:
            raise TimeoutError(str(exc)) from exc
        except openai.APIConnectionError as exc:
            raise _transport_error(exc.__cause__ or exc) from exc
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc

    async def close(self) -> None:
        await self._client.close()


def _transport_error(cause: BaseException) -> TransportError:
    """Name a failure below HTTP the way the runner's retry decision needs."""
    import httpx

    text = f"{type(cause).__name__}: {cause or 'no detail'}"
    if isinstance(cause, httpx.ConnectError | httpx.ProxyError | ConnectionRefusedError):
        return TransportError("connect", text)
    if isinstance(cause, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return TransportError("dropped", text)
    return TransportError("protocol", text)


def transport_name() -> str:
    """`openai` (default) or `builtin`, from PROBE_HTTP_TRANSPORT."""
    name = os.environ.get("PROBE_HTTP_TRANSPORT", "openai").strip().lower() or "openai"
    if name not in ("openai", "builtin"):
        raise ValueError(f"PROBE_HTTP_TRANSPORT={name!r}: use openai or builtin")
    return name


class ChatClient:
    """Sends chat requests for one target: one keep-alive connection per worker slot."""

    def __init__(self, target: Target, *, max_bytes: int | None = None) -> None:
        self.endpoint = Endpoint.parse(target.base_url)
        self.timeout_s = target.timeout_s
        self.max_bytes = max_bytes or max_response_bytes()
        headers: Headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": f"probe/{__version__}",
        }
        key = target.api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        elif self.endpoint.auth:
            headers["authorization"] = self.endpoint.auth
        transport: type[_Http11 | _Httpx | _OpenAI]
        if transport_name() == "openai":
            transport = _OpenAI
        else:
            transport = _Httpx if self.endpoint.proxied() else _Http11
        self._transport: _Http11 | _Httpx | _OpenAI = transport(
            self.endpoint, headers, self.timeout_s, self.max_bytes
        )

    @property
    def via_proxy(self) -> bool:
        return isinstance(self._transport, _Httpx)

    async def post(self, payload: bytes, slot: int = 0) -> tuple[int, Headers, bytes | None]:
        """POST one body; the reply's status, headers and body (None: over max_bytes)."""
        return await self._transport.post(payload, slot)

    async def close(self) -> None:
        await self._transport.close()


def make_client(target: Target) -> ChatClient:
    """A client for the runner; the runner retries and counts, nothing retries behind it."""
    return ChatClient(target)


async def attempt_chat(client: ChatClient, body: dict[str, Any], slot: int = 0) -> Attempt:
    """Send one chat completion and classify what came back. Never raises (but cancels).

    Every attempt has a total deadline (`timeout_s`): a server that drips a byte at a time
    never trips a per-read timeout, but it trips this. `slot` picks the connection (the
    runner passes its worker number)."""
    start = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - start) * 1000

    try:
        payload = json.dumps(body, ensure_ascii=False).encode()
        async with asyncio.timeout(client.timeout_s):
            status, headers, raw = await client.post(payload, slot)
    except TimeoutError:
        return Attempt(
            "error",
            retryable=True,
            latency_ms=elapsed(),
            error=f"timeout: no complete reply within {client.timeout_s:g}s",
        )
    except TransportError as exc:
        if exc.kind == "connect":
            return Attempt(
                "error",
                retryable=True,
                connect_failed=True,
                latency_ms=elapsed(),
                error=f"connection: {exc}",
            )
        if exc.kind == "dropped":
            return Attempt(
                "error", retryable=True, latency_ms=elapsed(), error=f"connection dropped: {exc}"
            )
        return Attempt(
            "error", retryable=True, latency_ms=elapsed(), error=f"bad HTTP reply: {exc}"
        )
    except (OSError, ValueError, UnicodeError) as exc:
        return Attempt(
            "error",
            retryable=True,
            latency_ms=elapsed(),
            error=f"transport: {type(exc).__name__}: {exc}",
        )
    if raw is None:
        return Attempt(
            "error",
            http_status=status,
            latency_ms=elapsed(),
            error=f"reply larger than {client.max_bytes} bytes (HTTP {status}); not stored. "
            "Lower max_tokens or raise PROBE_MAX_RESPONSE_BYTES",
        )
    try:
        if 200 <= status < 300:
            return parse_success(status, raw, elapsed())
        return parse_status_error(status, headers, raw, elapsed())
    except Exception as exc:  # a reply shape nobody planned for is an error, never a crash
        return Attempt(
            "error",
            retryable=True,
            http_status=status,
            latency_ms=elapsed(),
            error=f"unreadable reply (HTTP {status}): {type(exc).__name__}: {exc}",
            response_json=_as_text(raw),
        )


def _as_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:_KEEP_TEXT]


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_success(status: int, raw: bytes | str, latency_ms: float) -> Attempt:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return Attempt(
            "error",
            retryable=True,
            http_status=status,
            latency_ms=latency_ms,
            error=f"malformed JSON in HTTP {status} reply ({len(text)} chars)",
            response_json=text[:_KEEP_TEXT],
        )
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        if isinstance(data, dict) and _is_block_body(text):
            return Attempt(
                "blocked",
                http_status=status,
                latency_ms=latency_ms,
                error=_error_message(data),
                response_json=text,
            )
        return Attempt(
            "error",
            retryable=True,
            http_status=status,
            latency_ms=latency_ms,
            error="reply had no choices" if isinstance(data, dict) else "reply is not an object",
            response_json=text,
        )
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    answer, reasoning = split_reasoning(
        _str_or_none(content),
        _str_or_none(message.get("reasoning_content")),
        _str_or_none(message.get("reasoning")),
    )
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    finish = _str_or_none(choice.get("finish_reason"))
    outcome = "blocked" if finish == "content_filter" else "ok"
    return Attempt(
        outcome,
        content=answer,
        reasoning=reasoning,
        refusal=_str_or_none(message.get("refusal")),
        finish_reason=finish,
        resolved_model=_str_or_none(data.get("model")),
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        http_status=status,
        error="finish_reason content_filter" if outcome == "blocked" else None,
        response_json=text,
    )


def parse_status_error(
    status: int, headers: Mapping[str, str], raw: bytes, latency_ms: float
) -> Attempt:
    text = raw.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text)
        stored: Any = text
    except (json.JSONDecodeError, RecursionError):
        body = text[:_KEEP_TEXT]
        stored = body
    body_text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    message = _error_message(body) or " ".join(body_text[:300].split()) or "(empty body)"
    if status in _BLOCK_STATUSES and _is_block_body(body_text):
        return Attempt(
            "blocked",
            http_status=status,
            latency_ms=latency_ms,
            error=f"HTTP {status}: {message}",
            response_json=stored,
        )
    if status in (402, 429) and _QUOTA.search(body_text):
        return Attempt(
            "error",
            fatal=f"the account is out of quota or credit ({status})",
            http_status=status,
            latency_ms=latency_ms,
            error=f"HTTP {status}: {message}",
            response_json=stored,
        )
    if status in _RETRY_STATUSES or status >= 500:
        return Attempt(
            "error",
            retryable=True,
            retry_after=retry_after_seconds(headers),
            http_status=status,
            latency_ms=latency_ms,
            error=f"HTTP {status}: {message}",
            response_json=stored,
        )
    return Attempt(
        "error",
        fatal=_FATAL_STATUSES.get(status),
        http_status=status,
        latency_ms=latency_ms,
        error=f"HTTP {status}: {message}",
        response_json=stored,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or retry-after-ms."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _is_block_body(text: str) -> bool:
    return bool(_BLOCK_PATTERNS.search(text))


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            parts = [str(err.get(k)) for k in ("code", "type", "message") if err.get(k)]
            return ": ".join(parts) or None
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    return None
