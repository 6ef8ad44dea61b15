"""`probe review`: a terminal loop over low-confidence labels."""

from __future__ import annotations

import getpass
import os
import textwrap
from pathlib import Path

import click

from probe.cli.options import store_option
from probe.review import add_human_label, export_training, review_queue
from probe.store import connect

KEYS = {"a": None, "r": "refusal", "d": "deflection", "n": "answer"}


@click.command()
@store_option
@click.option(
    "--threshold", default=0.75, show_default=True, help="Review labels below this confidence."
)
@click.option("--classifier", default=None, help="Only labels from this classifier id.")
@click.option("--limit", default=200, show_default=True)
@click.option("--reviewer", default=None, help="Your name (default: $USER).")
@click.option(
    "--export",
    "export_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write all human labels as training JSONL and exit.",
)
def review(
    db_path: Path,
    threshold: float,
    classifier: str | None,
    limit: int,
    reviewer: str | None,
    export_path: Path | None,
) -> None:
    """Review low-confidence labels: [a]ccept, [r]efusal, [d]eflection, a[n]swer, [s]kip, [q]uit.

    Human labels are stored with reviewer and time and win over model labels everywhere.
    """
    db = connect(db_path, create=False)
    try:
        if export_path:
            count = export_training(db, export_path)
            click.echo(f"wrote {count} human-labelled examples to {export_path}")
            return
        who = reviewer or os.environ.get("USER") or getpass.getuser()
        queue = review_queue(db, threshold=threshold, classifier=classifier, limit=limit)
        if not queue:
            click.echo("nothing to review: no label below the threshold lacks a human label")
            return
        reviewed = 0
        for index, row in enumerate(queue, start=1):
            click.echo("\n" + "=" * 72)
            click.echo(
                f"[{index}/{len(queue)}] {row['model']}  {row['prompt_id']}  ({row['lang']})"
            )
            click.echo(click.style("PROMPT: ", bold=True) + row["prompt"])
            click.echo(click.style("RESPONSE:", bold=True))
            click.echo(textwrap.indent(row["response"] or "(empty)", "  "))
            click.echo(f"suggested: {row['label']} ({row['confidence']:.2f})")
            choice = click.prompt(
                "[a]ccept [r]efusal [d]eflection a[n]swer [s]kip [q]uit",
                type=click.Choice(["a", "r", "d", "n", "s", "q"]),
                show_choices=False,
            )
            if choice == "q":
                break
            if choice == "s":
                continue
            label = KEYS[choice] or row["label"]
            add_human_label(db, row["id"], label, who)
            reviewed += 1
        click.echo(f"\nstored {reviewed} human labels in {db_path}")
    finally:
        db.close()
