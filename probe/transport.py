"""How bytes reach an OpenAI-compatible endpoint: the transports behind the chat backend.

The default is the `openai` package's async client (over httpx), with its retries off. A
minimal HTTP/1.1 client (httpx behind a proxy) is the opt-in alternative for very large
sweeps (`PROBE_HTTP_TRANSPORT=builtin`). Each transport answers one POST with (status, headers,
body) and turns every failure below HTTP into a TransportError the runner can reason about.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit


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
