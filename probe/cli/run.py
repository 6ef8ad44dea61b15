"""`probe run`: send topic prompts to one target and store every reply."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from probe.cli.options import resolve_topics_dir, split_csv, topics_dir_option
from probe.errors import InputError
from probe.jobs import expand_jobs
from probe.runner import RetryPolicy, RunSummary, run_jobs
from probe.targets import DEFAULT_CONCURRENCY, Params, Target, load_targets_file
from probe.topics import load_topics


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
            for k, v in {"model": model, "base_url": base_url, "api_key_env": api_key_env}.items()
            if v
        }
        return dataclasses.replace(target, **overrides)
    if not model or not base_url:
        raise InputError(
            "say which model to probe: --model NAME --base-url URL "
            "[--api-key-env VAR], or --target NAME from a targets file"
        )
    return Target(name=model, model=model, base_url=base_url, api_key_env=api_key_env)


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
@click.option("--rpm", type=float, default=None, help="Requests per minute limit.")
@click.option("--max-retries", type=click.IntRange(0, 50), default=None)
@click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds per request.")
@click.option(
    "--db", "db_path", type=click.Path(path_type=Path), default=Path("probe.db"), show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
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
    topics_dir: Path | None,
) -> None:
    """Send topic prompts to a model and store every reply.

    Rerunning the same command resumes: jobs with a stored result send no request, and jobs
    that ended in `error` are tried again.
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
    topics = topic_set.select(split_csv(topic_ids))
    lang_list = split_csv(langs)
    jobs = expand_jobs(
        topics, target, params, langs=lang_list, samples=samples, kinds=split_csv(kinds)
    )
    if not jobs:
        raise InputError("no jobs: the --topics/--langs/--kinds selection matches no prompt text")
    target.api_key()
    bar = None if quiet else _progress_bar(len(jobs))
    try:
        summary = run_jobs(
            db_path,
            target,
            params,
            jobs,
            topic_set_hash=topic_set.content_hash(),
            retry=RetryPolicy(max_retries=target.max_retries),
            progress=bar.update if bar else None,
            run_params={"samples": samples, "langs": lang_list, "topics": split_csv(topic_ids)},
        )
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
                "jobs that ended in error are retried by running the same command again", err=True
            )


class _ProgressBar:
    """done / blocked / errors on one line, on stderr."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="job", file=sys.stderr, dynamic_ncols=True, disable=None)
        self._started = False

    def update(self, summary: RunSummary) -> None:
        if not self._started:
            self._bar.update(summary.already_done)
            self._started = True
        self._bar.update(1)
        self._bar.set_postfix(
            ok=summary.ok, blocked=summary.blocked, errors=summary.errors, refresh=False
        )

    def close(self) -> None:
        self._bar.close()


def _progress_bar(total: int) -> _ProgressBar:
    return _ProgressBar(total)
