"""`probe topics ...`: inspect and validate topic sets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from probe.cli.options import resolve_topics_dir, topics_dir_option
from probe.topics import load_topics, topic_stats


@click.group()
def topics() -> None:
    """List, show, validate and count topic sets."""


@topics.command("list")
@topics_dir_option
def list_topics(topics_dir: Path | None) -> None:
    """One line per topic: id, prompts, controls, languages, title."""
    topic_set = load_topics(resolve_topics_dir(topics_dir))
    for item in topic_set.topics:
        topic = item.topic
        click.echo(
            f"{topic.id:34} {len(topic.prompts):3} prompts {len(topic.controls):2} controls  "
            f"{len(topic.languages or topic.prompts[0].texts):2} langs  {topic.title}"
        )


@topics.command("show")
@click.argument("topic_id")
@click.option("--lang", default=None, help="Show only this language's texts.")
@topics_dir_option
def show_topic(topic_id: str, lang: str | None, topics_dir: Path | None) -> None:
    """Print a topic: rationale, references and every prompt."""
    topic = load_topics(resolve_topics_dir(topics_dir)).get(topic_id)
    click.echo(f"{topic.title}  [{topic.id}]")
    click.echo(f"sensitive to: {topic.sensitive_to}")
    click.echo(f"languages: {', '.join(topic.languages)}")
    click.echo("")
    click.echo(topic.rationale.strip())
    click.echo("")
    for ref in topic.references:
        click.echo(f"  - {ref.url}  {ref.title}")
    for prompt in topic.prompts:
        click.echo(f"\n{prompt.id}  ({prompt.kind})")
        for code, translation in prompt.texts.items():
            if lang and code != lang:
                continue
            flag = "reviewed" if translation.reviewed else "unreviewed"
            click.echo(f"  {code:8} {translation.text}   [{translation.origin}, {flag}]")


@topics.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@topics_dir_option
def validate(path: Path | None, topics_dir: Path | None) -> None:
    """Check topic files: schema, ids, languages. Exit 2 on the first problem."""
    root = path or resolve_topics_dir(topics_dir)
    topic_set = load_topics(root)
    stats = topic_stats(topic_set)
    click.echo(
        f"ok: {stats['topics']} topics, {stats['prompts']} prompts "
        f"({stats['controls']} controls) in {root}"
    )


@topics.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@topics_dir_option
def stats(as_json: bool, topics_dir: Path | None) -> None:
    """Coverage: topics, prompts, controls, and prompts per language."""
    result = topic_stats(load_topics(resolve_topics_dir(topics_dir)))
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for key in ("topics", "prompts", "controls", "sensitive", "texts"):
        click.echo(f"{key:10} {result[key]}")
    click.echo("languages:")
    for code, count in result["languages"].items():  # type: ignore[union-attr]
        click.echo(f"  {code:8} {count}")
