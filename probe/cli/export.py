"""`probe export`: stored responses as JSONL, CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli.options import store_option
from probe.export import FORMATS
from probe.export import export as export_rows


@click.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--classifier", default=None, help="Classifier id whose labels to use.")
@click.option(
    "--all-attempts", is_flag=True, help="Also rows of errors that a later run superseded."
)
def export(db_path: Path, fmt: str, out: Path, classifier: str | None, all_attempts: bool) -> None:
    """Export one row per response (its label once classified)."""
    count = export_rows(db_path, fmt, out, classifier=classifier, all_attempts=all_attempts)
    click.echo(f"wrote {count} rows to {out}")
