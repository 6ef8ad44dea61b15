"""`probe run`: send topic prompts to one target and store every reply."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

from probe.cli.live import ProgressBar, terminate_as_interrupt
from probe.cli.options import resolve_topics_dir, split_csv, store_option, topics_dir_option
from probe.errors import InputError
from probe.jobs import expand_jobs
from probe.runner import RetryPolicy, run_jobs
from probe.targets import (
    DEFAULT_CONCURRENCY,
    Params,
    Redactor,
    Target,
    check_base_url,
    load_targets_file,
)
from probe.topics import _BCP47, SENSITIVE_KINDS, Topic, load_topics


def resolve_target(
    target_name: str | None,
    targets_file: Path | None,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None,
) -> Target:
    """A target from a targets file by name, or from --model/--base-url on the command line."""
    if target_name:
        if targets_file is None:
            for candidate in (Path("targets.toml"), Path("targets.yaml"), Path("targets.yml")):
                if candidate.exists():
                    targets_file = candidate
                    break
        if targets_file is None:
            raise InputError(
                f"--target {target_name}: no --targets-file given and no targets.toml here"
            )
        targets = load_targets_file(targets_file)
        if target_name not in targets:
            raise InputError(
                f"{targets_file}: no target {target_name!r}; known: {', '.join(sorted(targets))}"
            )
        target = targets[target_name]
        overrides = {
            k: v
            for k, v in {
                "model": model,
                "base_url": check_base_url(base_url) if base_url else None,
                "api_key_env": api_key_env,
            }.items()
            if v
        }
        return dataclasses.replace(target, **overrides)
    if not model or not base_url:
        raise InputError(
            "say which model to probe: --model NAME --base-url URL "
            "[--api-key-env VAR], or --target NAME from a targets file"
        )
    return Target(
        name=model, model=model, base_url=check_base_url(base_url), api_key_env=api_key_env
    )


KINDS = (*SENSITIVE_KINDS, "control")


def check_selection(
    topics: Sequence[Topic], langs: list[str] | None, kinds: list[str] | None
) -> list[str]:
    """Refuse a --langs/--kinds selection that names something no selected prompt has, and
    return notes about prompts a language will skip (a missing translation is never silent)."""
    for kind in kinds or []:
        if kind not in KINDS:
            raise InputError(f"--kinds: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    prompts = [p for t in topics for p in t.prompts if not kinds or p.kind in kinds]
    available = sorted({code for p in prompts for code in p.texts})
    notes = []
    for lang in langs or []:
        if not _BCP47.match(lang):
            raise InputError(
                f"--langs: {lang!r} is not a language code; use BCP-47 such as en, zh-Hans, "
                f"zh-Hant (available: {', '.join(available)})"
            )
        have = sum(1 for p in prompts if lang in p.texts)
        if not have:
            raise InputError(
                f"--langs: no selected prompt has a {lang!r} text; available: "
                f"{', '.join(available)} (or add the translations to the topic files)"
            )
        if have < len(prompts):
            notes.append(
                f"note: {len(prompts) - have} of {len(prompts)} selected prompts have no "
                f"{lang!r} text and are skipped in that language"
            )
    return notes


@click.command()
@click.option("--target", "target_name", help="Target name from the targets file.")
@click.option("--targets-file", type=click.Path(path_type=Path), help="TOML or YAML of targets.")
@click.option("--model", help="Model name the endpoint expects.")
@click.option("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1.")
@click.option("--api-key-env", help="Environment variable that holds the API key (never stored).")
@click.option("--topics", "topic_ids", help="Comma-separated topic ids (default: all).")
@click.option("--langs", help="Comma-separated language codes (default: every language).")
@click.option("--kinds", help="Comma-separated prompt kinds (default: all).")
@click.option("--samples", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option("--temperature", type=float, default=None)
@click.option("--max-tokens", type=click.IntRange(1), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--system", default=None, help="System prompt sent before every prompt.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=None,
    help=f"Requests in flight (default: target's, else {DEFAULT_CONCURRENCY}).",
)
@click.option(
    "--rpm",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Requests per minute limit.",
)
@click.option("--max-retries", type=click.IntRange(0, 50), default=None)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Seconds per request, whole reply included.",
)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--log-level",
    type=click.Choice(["warning", "info", "debug"]),
    default=None,
    help="Log retries (info) or every attempt (debug) to stderr; secrets are scrubbed.",
)
@topics_dir_option
def run(
    target_name: str | None,
    targets_file: Path | None,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None,
    topic_ids: str | None,
    langs: str | None,
    kinds: str | None,
    samples: int,
    temperature: float | None,
    max_tokens: int | None,
    seed: int | None,
    system: str | None,
    concurrency: int | None,
    rpm: float | None,
    max_retries: int | None,
    timeout_s: float | None,
    db_path: Path,
    as_json: bool,
    quiet: bool,
    log_level: str | None,
    topics_dir: Path | None,
) -> None:
    """Send topic prompts to a model and store every reply.

    Rerunning the same command resumes: jobs with a stored result send no request, and jobs
    that ended in `error` are tried again.

    \b
    Exit status: 0 done (jobs that ended in error are listed on stderr; rerun to retry them),
    2 bad input, key, model or store, 3 the endpoint failed job after job (stopped early),
    130 interrupted (Ctrl-C or SIGTERM; everything received is stored).
    """
    target = resolve_target(target_name, targets_file, model, base_url, api_key_env)
    defaults = target.params
    params = Params(
        temperature=temperature if temperature is not None else defaults.temperature,
        max_tokens=max_tokens if max_tokens is not None else defaults.max_tokens,
        seed=seed if seed is not None else defaults.seed,
        system=system if system is not None else defaults.system,
        extra_body=defaults.extra_body,
    )
    target = dataclasses.replace(
        target,
        concurrency=concurrency or target.concurrency,
        requests_per_minute=rpm if rpm is not None else target.requests_per_minute,
        max_retries=max_retries if max_retries is not None else target.max_retries,
        timeout_s=timeout_s if timeout_s is not None else target.timeout_s,
    )
    topic_set = load_topics(resolve_topics_dir(topics_dir))
    topic_list = split_csv(topic_ids)
    topics = topic_set.select(list(dict.fromkeys(topic_list)) if topic_list else None)
    lang_list = split_csv(langs)
    kind_list = split_csv(kinds)
    notes = check_selection(topics, lang_list, kind_list)
    jobs = expand_jobs(topics, target, params, langs=lang_list, samples=samples, kinds=kind_list)
    if not jobs:
        raise InputError("no jobs: the --topics/--langs/--kinds selection matches no prompt text")
    target.api_key()
    for note in notes:
        click.echo(note, err=True)
    redactor = target.redactor()
    bar = None if quiet else ProgressBar(len(jobs))
    try:
        with _logging(log_level, redactor), terminate_as_interrupt():
            summary = run_jobs(
                db_path,
                target,
                params,
                jobs,
                topic_set_hash=topic_set.content_hash(),
                retry=RetryPolicy(max_retries=target.max_retries),
                progress=bar.update if bar else None,
                run_params={"samples": samples, "langs": lang_list, "topics": topic_list},
            )
    except KeyboardInterrupt:
        if bar:
            bar.close()
            bar = None
        click.echo(
            f"error: interrupted; every reply received so far is stored in {db_path}; "
            "run the same command again to resume",
            err=True,
        )
        sys.exit(130)
    finally:
        if bar:
            bar.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    else:
        click.echo(
            f"{summary.planned} jobs: {summary.already_done} already stored, {summary.sent} sent "
            f"({summary.ok} ok, {summary.blocked} blocked, {summary.errors} errors, "
            f"{summary.retries} retries) in {summary.seconds:.1f}s -> {db_path}"
        )
    if summary.errors:
        click.echo(
            f"{summary.errors} jobs ended in error; run the same command again to retry them "
            f"(`probe export --db {db_path} --format csv --out errors.csv` shows why)",
            err=True,
        )


class _RedactingFilter(logging.Filter):
    """Scrub credentials from every record a handler emits, probe's and httpx's alike."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        return True


@contextmanager
def _logging(level: str | None, redactor: Redactor) -> Iterator[None]:
    """--log-level: one stderr handler for probe and httpx, with secrets scrubbed."""
    if level is None:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(redactor))
    loggers = [logging.getLogger("probe"), logging.getLogger("httpx")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(getattr(logging, level.upper()))
        lg.propagate = False
    try:
        yield
    finally:
        for lg, old_level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(old_level)
            lg.propagate = propagate
