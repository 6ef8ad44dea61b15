"""One OpenAI-compatible chat backend for every provider probe supports.

OpenAI, DeepSeek, DashScope (Qwen), OpenRouter, Ollama, vLLM, the llama.cpp server and LM Studio
all speak `/v1/chat/completions`. This module makes exactly one attempt and says precisely what
happened, so the runner can decide about retries and the store keeps the raw exchange:

- `ok`: the model replied (its refusal, if any, is the classifier's business);
- `blocked`: the provider's own filter stopped the request or the reply (HTTP 400/451 with a
  filter message in the body, or finish_reason `content_filter`). Never a model refusal;
- `error`: transport or server trouble, retryable or not.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import openai

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
_FATAL_STATUSES = {401: "the API key was rejected (401)", 404: "model or endpoint not found (404)"}


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
    response_json: Any = None
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
    body.update(params.extra_body)
    return body


def make_client(target: Target) -> openai.AsyncOpenAI:
    """An async client with the library's own retries off: the runner retries and counts."""
    limits = httpx.Limits(max_connections=max(target.concurrency * 2, 10))
    return openai.AsyncOpenAI(
        base_url=target.base_url,
        api_key=target.api_key(),
        max_retries=0,
        timeout=httpx.Timeout(target.timeout_s, connect=min(10.0, target.timeout_s)),
        http_client=httpx.AsyncClient(limits=limits),
    )


async def attempt_chat(client: openai.AsyncOpenAI, body: dict[str, Any]) -> Attempt:
    """Send one chat completion and classify what came back."""
    start = time.perf_counter()
    extra = {k: v for k, v in body.items() if k not in ("model", "messages")}
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=body["model"], messages=body["messages"], extra_body=extra or None
        )
        elapsed = (time.perf_counter() - start) * 1000
        return parse_success(raw.http_response.status_code, raw.http_response.text, elapsed)
    except openai.APIStatusError as exc:
        elapsed = (time.perf_counter() - start) * 1000
        return parse_status_error(exc.response, elapsed)
    except openai.APITimeoutError as exc:
        return Attempt(
            "error",
            retryable=True,
            error=f"timeout: {exc}",
            latency_ms=(time.perf_counter() - start) * 1000,
        )
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        return Attempt(
            "error",
            retryable=True,
            error=f"connection: {type(cause).__name__}: {cause}",
            latency_ms=(time.perf_counter() - start) * 1000,
        )
    except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Attempt(
            "error",
            retryable=True,
            error=f"transport: {type(exc).__name__}: {exc}",
            latency_ms=(time.perf_counter() - start) * 1000,
        )


def parse_success(status: int, text: str, latency_ms: float) -> Attempt:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return Attempt(
            "error",
            retryable=True,
            http_status=status,
            latency_ms=latency_ms,
            error=f"malformed JSON in HTTP {status} reply",
            response_json=text[:20000],
        )
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list):
        if isinstance(data, dict) and _is_block_body(json.dumps(data)):
            return Attempt(
                "blocked",
                http_status=status,
                latency_ms=latency_ms,
                error=_error_message(data),
                response_json=data,
            )
        return Attempt(
            "error",
            retryable=True,
            http_status=status,
            latency_ms=latency_ms,
            error="reply had no choices",
            response_json=data,
        )
    choice = choices[0] or {}
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    answer, reasoning = split_reasoning(
        content, message.get("reasoning_content"), message.get("reasoning")
    )
    usage = data.get("usage") or {}
    finish = choice.get("finish_reason")
    outcome = "blocked" if finish == "content_filter" else "ok"
    return Attempt(
        outcome,
        content=answer,
        reasoning=reasoning,
        refusal=message.get("refusal"),
        finish_reason=finish,
        resolved_model=data.get("model"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=latency_ms,
        http_status=status,
        error="finish_reason content_filter" if outcome == "blocked" else None,
        response_json=data,
    )


def parse_status_error(response: httpx.Response, latency_ms: float) -> Attempt:
    status = response.status_code
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.ResponseNotRead):
        body = response.text[:20000] if True else ""
    body_text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    message = _error_message(body) or body_text[:300]
    if status in _BLOCK_STATUSES and _is_block_body(body_text):
        return Attempt(
            "blocked",
            http_status=status,
            latency_ms=latency_ms,
            error=f"HTTP {status}: {message}",
            response_json=body,
        )
    if status == 429 or status >= 500 or status == 408:
        return Attempt(
            "error",
            retryable=True,
            retry_after=retry_after_seconds(response.headers),
            http_status=status,
            latency_ms=latency_ms,
            error=f"HTTP {status}: {message}",
            response_json=body,
        )
    fatal = _FATAL_STATUSES.get(status)
    return Attempt(
        "error",
        fatal=fatal,
        http_status=status,
        latency_ms=latency_ms,
        error=f"HTTP {status}: {message}",
        response_json=body,
    )


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or retry-after-ms."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
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
