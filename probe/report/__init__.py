"""Reports from a study store: HTML for reading, Markdown for pasting, CSV for other tools.

`write_report` turns one store into a self-contained HTML file (inline SVG figures, no scripts,
no network fetch), a Markdown summary and complete CSV tables; `write_diff` compares two models
or releases prompt by prompt. Both read the store only through `probe.analysis.responses_df`,
the query behind exports, so a report and an export never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from probe.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Written:
    """What a report or diff wrote."""

    html: Path
    markdown: Path
    tables: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the user should act on


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_pages(
    out: Path,
    stem: str,
    html_text: str,
    render_md: Callable[[str], str],
    frames: Mapping[str, pd.DataFrame],
    tables_subdir: str,
) -> tuple[Path, Path, list[Path]]:
    """Write `<stem>.html`, `<stem>.md` (which links to the HTML by name) and one CSV per
    frame into `out/<tables_subdir>`; the same layout for reports and diffs."""
    html_path = out / f"{stem}.html"
    md_path = out / f"{stem}.md"
    html_path.write_text(html_text, encoding="utf-8")
    md_path.write_text(render_md(html_path.name), encoding="utf-8")
    tables_dir = out / tables_subdir
    tables_dir.mkdir(exist_ok=True)
    written = []
    for name, frame in frames.items():
        path = tables_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return html_path, md_path, written


def write_report(
    db_path: Path,
    out: Path,
    *,
    classifier: str | None = None,
    correction: str = "bh",
    alpha: float = 0.05,
    baseline: str = "en",
    per_cell: int = 3,
    title: str | None = None,
    classifier_meta: Path | None = None,
) -> Written:
    """Write report.html, report.md and tables/*.csv for the store at `db_path` into `out`."""
    from probe.report import html, markdown
    from probe.report.build import build

    data = build(
        db_path,
        classifier=classifier,
        correction=correction,
        alpha=alpha,
        baseline=baseline,
        per_cell=per_cell,
        title=title,
        classifier_meta=classifier_meta,
    )
    html_path, md_path, written = _write_pages(
        _out_dir(out),
        "report",
        html.render(data),
        lambda html_name: markdown.render(data, html_name),
        data.csv_tables(),
        "tables",
    )
    notes = []
    unlabelled = data.meta["unlabelled"]
    if unlabelled:
        notes.append(
            f"{unlabelled} replies have no label and are left out of the rates; run "
            f"`probe classify --db {db_path}` first"
        )
    return Written(html_path, md_path, written, notes)


def write_diff(
    db_path: Path,
    model_a: str,
    model_b: str,
    out: Path,
    *,
    db_b: Path | None = None,
    classifier: str | None = None,
    correction: str = "bh",
    alpha: float = 0.05,
) -> Written:
    """Write diff.html, diff.md and tables of rate changes and label flips from A to B."""
    from probe.report.diff import build_diff
    from probe.report.diffview import render_html, render_markdown

    data = build_diff(
        db_path,
        model_a,
        model_b,
        db_b=db_b,
        classifier=classifier,
        correction=correction,
        alpha=alpha,
    )
    html_path, md_path, paths = _write_pages(
        _out_dir(out),
        "diff",
        render_html(data),
        lambda html_name: render_markdown(data, html_name),
        {"diff_rates": data.rates, "diff_flips": data.flips_table()},
        "",
    )
    return Written(html_path, md_path, paths)


__all__ = ["Written", "write_diff", "write_report"]
