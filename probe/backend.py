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
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from probe import __version__
from probe.reasoning import split_reasoning
from probe.targets import Params, Target
from probe.transport import (
    Endpoint,
    Headers,
    TransportError,
    _Http11,
    _Httpx,
    _OpenAI,
    transport_name,
)

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
