"""`probe report` and `probe diff`: thin wrappers around probe.report."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli.options import store_option

_correction = click.option(
    "--correction",
    type=click.Choice(["bh", "holm"]),
    default="bh",
    show_default=True,
    help="Multiple-comparison correction: Benjamini-Hochberg (FDR) or Holm (FWER).",
)
_alpha = click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level after correction.",
)
_classifier = click.option(
    "--classifier", default=None, help="Classifier id whose labels to use (default: the latest)."
)


@click.command()
@store_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for report.html, report.md and tables/*.csv.",
)
@_classifier
@_correction
@_alpha
@click.option(
    "--baseline",
    default="en",
    show_default=True,
    help="Language every other language is compared with.",
)
@click.option(
    "--evidence",
    "per_cell",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Transcripts shown per notable cell.",
)
@click.option("--title", default=None, help="Report title.")
def report(
    db_path: Path,
    out: Path,
    classifier: str | None,
    correction: str,
    alpha: float,
    baseline: str,
    per_cell: int,
    title: str | None,
) -> None:
    """Write a self-contained HTML report, a Markdown summary and CSV tables of a store."""
    from probe.report import write_report

    written = write_report(
        db_path,
        out,
        classifier=classifier,
        correction=correction,
        alpha=alpha,
        baseline=baseline,
        per_cell=per_cell,
        title=title,
    )
    for note in written.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(
        f"wrote {written.html}, {written.markdown} and {len(written.tables)} tables in "
        f"{written.html.parent / 'tables'}"
    )


@click.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=Path("probe.db"),
    show_default=True,
    help="Store holding model A (and B unless --db-b).",
)
@click.option("--a", "model_a", required=True, help="Model A: the predecessor.")
@click.option("--b", "model_b", required=True, help="Model B: the new release.")
@click.option(
    "--db-b",
    type=click.Path(path_type=Path),
    default=None,
    help="Store holding model B, when it is another file.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for diff.html, diff.md and CSV tables.",
)
@_classifier
@_correction
@_alpha
def diff(
    db_path: Path,
    model_a: str,
    model_b: str,
    db_b: Path | None,
    out: Path,
    classifier: str | None,
    correction: str,
    alpha: float,
) -> None:
    """Compare two models or releases: rate changes with significance, and flipped labels."""
    from probe.report import write_diff

    written = write_diff(
        db_path,
        model_a,
        model_b,
        out,
        db_b=db_b,
        classifier=classifier,
        correction=correction,
        alpha=alpha,
    )
    click.echo(f"wrote {written.html} and {written.markdown}")
