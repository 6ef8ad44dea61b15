"""Run jobs against a target concurrently, retrying what is worth retrying, storing everything.

Each finished job is written in its own transaction the moment it completes, so a crash or
Ctrl-C loses only the requests in flight, and the next run resumes where this one stopped.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe import __version__
from probe.backend import Attempt, attempt_chat, build_messages, build_request, make_client
from probe.errors import TargetError
from probe.jobs import Job
from probe.store import (
    connect,
    done_job_keys,
    finish_run,
    insert_response,
    insert_run,
    upsert_prompts,
    utc_now,
)
from probe.targets import Params, Target, redact_url


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the server sends it."""

    max_retries: int = 6
    base_s: float = field(
        default_factory=lambda: float(os.environ.get("PROBE_BACKOFF_BASE", "0.5"))
    )
    cap_s: float = 60.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap_s * 5)
        ceiling = min(self.cap_s, self.base_s * (2**retry))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class RunSummary:
    run_id: str
    planned: int = 0
    already_done: int = 0
    sent: int = 0
    ok: int = 0
    blocked: int = 0
    errors: int = 0
    retries: int = 0
    seconds: float = 0.0
    counts_by_outcome: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "counts_by_outcome"}


Progress = Callable[[RunSummary], None]


class RateLimiter:
    """Space request starts at least 60/rpm seconds apart (None: no limit)."""

    def __init__(self, requests_per_minute: float | None) -> None:
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


def git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_jobs(
    db_path: Path,
    target: Target,
    params: Params,
    jobs: Sequence[Job],
    *,
    topic_set_hash: str,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    run_params: dict[str, Any] | None = None,
) -> RunSummary:
    """Send every job that has no stored result and store what comes back."""
    return asyncio.run(
        _run(
            db_path,
            target,
            params,
            jobs,
            topic_set_hash=topic_set_hash,
            retry=retry or RetryPolicy(max_retries=target.max_retries),
            progress=progress,
            run_params=run_params or {},
        )
    )


async def _run(
    db_path: Path,
    target: Target,
    params: Params,
    jobs: Sequence[Job],
    *,
    topic_set_hash: str,
    retry: RetryPolicy,
    progress: Progress | None,
    run_params: dict[str, Any],
) -> RunSummary:
    db = connect(db_path)
    started = time.perf_counter()
    summary = RunSummary(run_id=uuid.uuid4().hex, planned=len(jobs))
    done = done_job_keys(db, [job.key for job in jobs])
    pending = [job for job in jobs if job.key not in done]
    summary.already_done = len(jobs) - len(pending)
    if not pending:
        db.close()
        summary.seconds = time.perf_counter() - started
        return summary
    key = target.api_key()  # fail fast, before anything is written, if the key is missing
    del key
    insert_run(
        db,
        {
            "id": summary.run_id,
            "probe_version": __version__,
            "git_revision": git_revision(),
            "topic_set_hash": topic_set_hash,
            "target_json": target.public(),
            "params_json": {**params.as_dict(), **run_params},
            "started_at": utc_now(),
            "jobs_planned": len(jobs),
        },
    )
    upsert_prompts(db, list({job.prompt.prompt_key: job.prompt for job in pending}.values()))
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in pending:
        queue.put_nowait(job)
    limiter = RateLimiter(target.requests_per_minute)
    state = _SharedState()
    client = make_client(target)
    base_url = redact_url(target.base_url)

    async def worker() -> None:
        while not state.fatal:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _run_one(job)

    async def _run_one(job: Job) -> None:
        messages = build_messages(job.prompt.text, params.system)
        body = build_request(target, messages, params)
        started_at = utc_now()
        retries = 0
        while True:
            await limiter.wait()
            attempt = await attempt_chat(client, body)
            if attempt.http_status is not None:
                state.reached = True
            if attempt.fatal:
                state.fatal = attempt
                return
            if (
                attempt.retryable
                and _connect_refused(attempt)
                and not state.reached
                and retries >= 1
            ):
                state.fatal = attempt
                return
            if not attempt.retryable or retries >= retry.max_retries or state.fatal:
                break
            await asyncio.sleep(retry.delay(retries, attempt.retry_after))
            retries += 1
        _store(db, summary, job, target, base_url, params, body, attempt, retries, started_at)
        if progress:
            progress(summary)

    try:
        workers = [asyncio.create_task(worker()) for _ in range(max(1, target.concurrency))]
        await asyncio.gather(*workers)
    finally:
        finish_run(db, summary.run_id, summary.sent)
        await client.close()
        db.close()
        summary.seconds = time.perf_counter() - started
    if state.fatal:
        raise TargetError(_fatal_message(state.fatal, target))
    return summary


class _SharedState:
    def __init__(self) -> None:
        self.fatal: Attempt | None = None
        self.reached = False


def _connect_refused(attempt: Attempt) -> bool:
    text = attempt.error or ""
    return text.startswith("connection: ConnectError") or "Name or service not known" in text


def _fatal_message(attempt: Attempt, target: Target) -> str:
    where = redact_url(target.base_url)
    if attempt.http_status == 401:
        env = target.api_key_env or "the key variable"
        return f"{where} rejected the API key (HTTP 401); check ${env} holds a valid key for it"
    if attempt.http_status == 404:
        return (
            f"{where} answered 404 for model {target.model!r}: unknown model or wrong base URL; "
            "check --model and --base-url (it usually ends in /v1)"
        )
    if attempt.http_status is None:
        return (
            f"cannot reach {where} ({attempt.error}); is the server running and is "
            "--base-url right?"
        )
    return f"{where}: {attempt.error}"


def _store(
    db: Any,
    summary: RunSummary,
    job: Job,
    target: Target,
    base_url: str,
    params: Params,
    body: dict[str, Any],
    attempt: Attempt,
    retries: int,
    started_at: str,
) -> None:
    insert_response(
        db,
        {
            "id": uuid.uuid4().hex,
            "run_id": summary.run_id,
            "job_key": job.key,
            "prompt_key": job.prompt.prompt_key,
            "model": target.model,
            "base_url": base_url,
            "topic_id": job.prompt.topic_id,
            "prompt_id": job.prompt.prompt_id,
            "kind": job.prompt.kind,
            "lang": job.prompt.lang,
            "sample": job.sample,
            "params_json": params.as_dict(),
            "system_prompt": params.system,
            "outcome": attempt.outcome,
            "content": attempt.content,
            "reasoning": attempt.reasoning,
            "refusal": attempt.refusal,
            "finish_reason": attempt.finish_reason,
            "resolved_model": attempt.resolved_model,
            "prompt_tokens": attempt.prompt_tokens,
            "completion_tokens": attempt.completion_tokens,
            "latency_ms": attempt.latency_ms,
            "retries": retries,
            "http_status": attempt.http_status,
            "error": attempt.error,
            "request_json": body,
            "response_json": attempt.response_json,
            "started_at": started_at,
            "created_at": utc_now(),
        },
    )
    summary.sent += 1
    summary.retries += retries
    if attempt.outcome == "ok":
        summary.ok += 1
    elif attempt.outcome == "blocked":
        summary.blocked += 1
    else:
        summary.errors += 1
