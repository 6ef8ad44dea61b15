"""Expand topics x languages x samples into jobs with stable identities.

A job's key hashes everything that makes its result what it is (model, base URL, prompt id,
language, sample index, parameters), so rerunning the same command finds the stored results
and sends nothing again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from probe.store import PromptRow
from probe.targets import Params, Target, redact_url
from probe.topics import Prompt, Topic


@dataclass(frozen=True)
class Job:
    key: str
    prompt: PromptRow
    sample: int


def _digest(payload: object) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:32]


def prompt_key(prompt_id: str, lang: str, text: str) -> str:
    return _digest(["prompt", prompt_id, lang, text])


def job_key(target: Target, prompt_id: str, lang: str, sample: int, params: Params) -> str:
    return _digest(
        [
            "job",
            target.model,
            redact_url(target.base_url),
            prompt_id,
            lang,
            sample,
            params.as_dict(),
        ]
    )


def _prompt_row(topic: Topic, prompt: Prompt, lang: str) -> PromptRow:
    translation = prompt.texts[lang]
    return PromptRow(
        prompt_key=prompt_key(prompt.id, lang, translation.text),
        topic_id=topic.id,
        prompt_id=prompt.id,
        kind=prompt.kind,
        lang=lang,
        text=translation.text,
        origin=translation.origin,
        reviewed=translation.reviewed,
        topic_title=topic.title,
        sensitive_to=topic.sensitive_to,
    )


def unique_jobs(jobs: Sequence[Job]) -> list[Job]:
    """Jobs with duplicate keys dropped (first kept): `--topics a,a` must not send twice."""
    seen: set[str] = set()
    out: list[Job] = []
    for job in jobs:
        if job.key not in seen:
            seen.add(job.key)
            out.append(job)
    return out


def expand_jobs(
    topics: Sequence[Topic],
    target: Target,
    params: Params,
    *,
    langs: Sequence[str] | None = None,
    samples: int = 1,
    kinds: Sequence[str] | None = None,
) -> list[Job]:
    """Every (prompt, language, sample) to send, in a stable order, each once."""
    jobs: list[Job] = []
    for topic in topics:
        for prompt in topic.prompts:
            if kinds and prompt.kind not in kinds:
                continue
            for lang in prompt.texts:
                if langs and lang not in langs:
                    continue
                row = _prompt_row(topic, prompt, lang)
                for sample in range(samples):
                    key = job_key(target, prompt.id, lang, sample, params)
                    jobs.append(Job(key=key, prompt=row, sample=sample))
    return unique_jobs(jobs)
