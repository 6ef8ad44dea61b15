"""Run jobs against a target concurrently, retrying what is worth retrying, storing everything.

Each finished job is written in its own transaction the moment it completes, so a crash or
Ctrl-C loses only the requests in flight, and the next run resumes where this one stopped.
Writes go through one dedicated writer thread: the event loop never waits on SQLite (a commit,
a WAL checkpoint, another process holding the write lock), so requests in flight keep moving.

What the runner guarantees, because people publish what it stores:
- nothing repeated: a job with a stored result is never sent again, duplicate jobs in one
  plan are sent once, and a second `probe run` on the same store is refused while one runs;
- nothing leaked: every credential the target knows is scrubbed from all it stores or says;
- nothing half-written: a run that stores no response (bad key, unknown model, unreachable
  endpoint) leaves no run row behind, and a store it created for nothing is removed;
- clear stops: a fault that would fail every job the same way (401, 404, no credit, a server
  that stopped answering) ends the run with one line that says what to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe import __version__
from probe.backend import Attempt, attempt_chat, build_messages, build_request, make_client
from probe.errors import StoreError, TargetError
from probe.jobs import Job, unique_jobs
from probe.store import (
    StoreLock,
    connect,
    done_job_keys,
    finish_run,
    forget_empty_run,
    insert_response,
    insert_run,
    is_empty,
    remove_store_files,
    utc_now,
)
from probe.targets import Params, Redactor, Target, redact_url

log = logging.getLogger("probe.run")


class EndpointFailing(TargetError):
    """The endpoint failed job after job: stopped so as not to fill the store with errors.

    Exit code 3 (not 2): nothing the user typed is wrong; rerun later to resume."""

    exit_code = 3


def _backoff_base() -> float:
    try:
        value = float(os.environ.get("PROBE_BACKOFF_BASE", "0.5"))
    except ValueError:
        return 0.5
    return value if value >= 0 else 0.5


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the server sends it."""

    max_retries: int = 6
    base_s: float = field(default_factory=_backoff_base)
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
        if self.interval <= 0:
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
            Path(db_path),
            target,
            params,
            jobs,
            topic_set_hash=topic_set_hash,
            retry=retry or RetryPolicy(max_retries=target.max_retries),
            progress=progress,
            run_params=run_params or {},
        )
    )


def failure_threshold(concurrency: int) -> int:
    """Consecutive failed jobs (no success between) after which the run stops."""
    return max(20, 2 * concurrency)


class _SharedState:
    def __init__(self) -> None:
        self.fatal: Attempt | None = None
        self.stop: TargetError | StoreError | None = None
        self.reached = False
        self.failed_in_row = 0
        self.last_error: str | None = None


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
    started = time.perf_counter()
    summary = RunSummary(run_id=uuid.uuid4().hex, planned=len(jobs))
    created = not db_path.exists()
    try:
        db = connect(db_path)
    except StoreError:
        if created:  # sqlite may have created an empty file before failing
            remove_store_files(db_path)
        raise
    lock = StoreLock(db_path)
    remove = False
    try:
        lock.acquire()
        unique = unique_jobs(jobs)
        summary.planned = len(unique)
        done = done_job_keys(db, [job.key for job in unique])
        pending = [job for job in unique if job.key not in done]
        summary.already_done = len(unique) - len(pending)
        if pending:
            await _sweep(
                db,
                db_path,
                target,
                params,
                pending,
                summary,
                topic_set_hash,
                retry,
                progress,
                run_params,
            )
    finally:
        try:
            remove = created and is_empty(db)
        except sqlite3.Error:
            remove = False
        db.close()
        lock.release()  # after the connection: see StoreLock
        if remove:
            remove_store_files(db_path)
        summary.seconds = time.perf_counter() - started
    return summary


async def _sweep(
    db: sqlite3.Connection,
    db_path: Path,
    target: Target,
    params: Params,
    pending: list[Job],
    summary: RunSummary,
    topic_set_hash: str,
    retry: RetryPolicy,
    progress: Progress | None,
    run_params: dict[str, Any],
) -> None:
    redactor = target.redactor()
    client = make_client(target)  # reads the key: fails before anything is written
    try:
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
                "jobs_planned": summary.planned,
            },
        )
    except sqlite3.Error as exc:
        await client.close()
        raise StoreError(
            f"{db_path}: cannot write to the store ({exc}); check free space and permissions, "
            "or pick another --db"
        ) from exc
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe-store")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in pending:
        queue.put_nowait(job)
    # Prompts go into the store with the first response, so a run that stores nothing
    # writes nothing; later responses find them there.
    prompts = list({job.prompt.prompt_key: job.prompt for job in pending}.values())
    prompts_written = False
    limiter = RateLimiter(target.requests_per_minute)
    state = _SharedState()
    base_url = redact_url(target.base_url)
    threshold = failure_threshold(target.concurrency)

    def store(
        job: Job, body: dict[str, Any], attempt: Attempt, retries: int, started_at: str
    ) -> None:
        nonlocal prompts_written
        row = _row(
            summary, job, target, base_url, params, body, attempt, retries, started_at, redactor
        )
        insert_response(db, row, prompts=() if prompts_written else prompts)
        prompts_written = True
        _count(summary, attempt, retries)

    async def worker(slot: int) -> None:
        while state.fatal is None and state.stop is None:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await run_one(job, slot)

    async def run_one(job: Job, slot: int) -> None:
        messages = build_messages(job.prompt.text, params.system)
        body = build_request(target, messages, params)
        started_at = utc_now()
        retries = 0
        while True:
            await limiter.wait()
            attempt = await attempt_chat(client, body, slot)
            if attempt.http_status is not None:
                state.reached = True
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    redactor.text(
                        f"POST {client.endpoint.url} -> HTTP {attempt.http_status} in "
                        f"{attempt.latency_ms or 0:.0f} ms: {job.prompt.prompt_id} "
                        f"[{job.prompt.lang}] #{job.sample} attempt {retries + 1}: "
                        f"{attempt.outcome} {attempt.error or ''}".rstrip()
                    )
                )
            if attempt.fatal:
                state.fatal = state.fatal or attempt
                return
            if attempt.connect_failed and not state.reached and retries >= 1:
                state.fatal = state.fatal or attempt
                return
            if (
                not attempt.retryable
                or retries >= retry.max_retries
                or state.fatal is not None
                or state.stop is not None
            ):
                break
            wait = retry.delay(retries, attempt.retry_after)
            log.info(
                redactor.text(
                    f"{job.prompt.prompt_id} [{job.prompt.lang}]: {attempt.error}; "
                    f"retry {retries + 1}/{retry.max_retries} in {wait:.2f}s"
                )
            )
            await asyncio.sleep(wait)
            retries += 1
        try:
            await loop.run_in_executor(writer, store, job, body, attempt, retries, started_at)
        except sqlite3.Error as exc:
            state.stop = state.stop or StoreError(
                f"{db_path}: cannot write to the store ({exc}); {summary.sent} responses were "
                "stored; fix the cause (disk space, permissions) and run the same command "
                "again to resume"
            )
            return
        if attempt.outcome == "error":
            state.failed_in_row += 1
            state.last_error = redactor.text(attempt.error or "unknown error")
            log.warning(
                redactor.text(
                    f"{job.prompt.prompt_id} [{job.prompt.lang}] #{job.sample}: ended in error "
                    f"after {retries} retries: {attempt.error}"
                )
            )
            if state.failed_in_row >= threshold and state.stop is None:
                state.stop = EndpointFailing(
                    f"{base_url}: the last {state.failed_in_row} jobs all failed (last: "
                    f"{state.last_error}); stopped after {summary.sent} stored. Fix the cause "
                    "or wait, then run the same command again to resume"
                )
        else:
            state.failed_in_row = 0
        if progress:
            progress(summary)

    try:
        workers = [asyncio.create_task(worker(i)) for i in range(max(1, target.concurrency))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    finally:
        await client.close()
        # Let a write already handed to the writer thread finish before the connection closes.
        await loop.run_in_executor(None, writer.shutdown, True)
        try:
            if summary.sent or not forget_empty_run(db, summary.run_id):
                finish_run(db, summary.run_id, summary.sent)
        except sqlite3.Error:
            pass  # the responses are stored; only the run's end time is missing
    if state.fatal is not None:
        raise TargetError(_one_line(redactor.text(_fatal_message(state.fatal, target))))
    if state.stop is not None:
        state.stop.args = (_one_line(str(state.stop)),)
        raise state.stop


def _one_line(text: str, limit: int = 600) -> str:
    """Error bodies carry newlines and can be long; the user gets one readable line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _fatal_message(attempt: Attempt, target: Target) -> str:
    where = redact_url(target.base_url)
    if attempt.http_status == 401:
        env = target.api_key_env
        if not env:
            return (
                f"{where} wants an API key (HTTP 401); pass --api-key-env VAR naming the "
                "environment variable that holds it"
            )
        return f"{where} rejected the API key (HTTP 401); check ${env} holds a valid key for it"
    if attempt.http_status == 404:
        return (
            f"{where} answered 404 for model {target.model!r}: unknown model or wrong base URL; "
            "check --model and --base-url (it usually ends in /v1)"
        )
    if attempt.http_status in (402, 429):
        return (
            f"{where}: {attempt.fatal} ({attempt.error}); add credit or raise the quota, "
            "then run the same command again to resume"
        )
    if attempt.http_status is None:
        return (
            f"cannot reach {where} ({attempt.error}); is the server running and is "
            "--base-url right?"
        )
    return f"{where}: {attempt.error}"


def _row(
    summary: RunSummary,
    job: Job,
    target: Target,
    base_url: str,
    params: Params,
    body: dict[str, Any],
    attempt: Attempt,
    retries: int,
    started_at: str,
    redactor: Redactor,
) -> dict[str, Any]:
    def text(value: str | None) -> str | None:
        return None if value is None else redactor.text(value)

    raw = attempt.response_json
    return {
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
        "params_json": redactor.data(params.as_dict()),
        "system_prompt": text(params.system),
        "outcome": attempt.outcome,
        "content": text(attempt.content),
        "reasoning": text(attempt.reasoning),
        "refusal": text(attempt.refusal),
        "finish_reason": text(attempt.finish_reason),
        "resolved_model": text(attempt.resolved_model),
        "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens,
        "latency_ms": attempt.latency_ms,
        "retries": retries,
        "http_status": attempt.http_status,
        "error": text(attempt.error),
        "request_json": redactor.data(body),
        "response_json": redactor.text(raw) if isinstance(raw, str) else redactor.data(raw),
        "started_at": started_at,
        "created_at": utc_now(),
    }


def _count(summary: RunSummary, attempt: Attempt, retries: int) -> None:
    summary.sent += 1
    summary.retries += retries
    summary.counts_by_outcome[attempt.outcome] = (
        summary.counts_by_outcome.get(attempt.outcome, 0) + 1
    )
    if attempt.outcome == "ok":
        summary.ok += 1
    elif attempt.outcome == "blocked":
        summary.blocked += 1
    else:
        summary.errors += 1
