"""Assemble everything one report shows from the store, once, for every renderer.

HTML, Markdown and CSV are views of one `ReportData`, so the three can never disagree.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from probe.analysis import responses_df
from probe.report import evidence, signals, tables
from probe.report.methodology import caveats, methodology
from probe.report.stats import CORRECTION_NAMES
from probe.store import connect

SIGNAL_EXAMPLES = 5  # transcripts shown per signal; the CSV tables list every case


@dataclass
class ReportData:
    """All numbers and transcripts of one report."""

    title: str
    source: str
    generated_at: str
    correction: str
    alpha: float
    baseline: str
    models: list[str]
    topics: list[str]
    langs: list[str]
    topic_titles: dict[str, str]
    cells: pd.DataFrame
    model_topic: pd.DataFrame
    outcomes: pd.DataFrame
    gaps: pd.DataFrame
    controls: pd.DataFrame
    switch_summary: pd.DataFrame
    switches: pd.DataFrame
    reasoning_summary: pd.DataFrame
    divergent: pd.DataFrame
    consistency: pd.DataFrame
    consistency_summary: pd.DataFrame
    notable: list[evidence.Notable]
    transcripts: dict[str, dict[str, Any]]
    meta: dict[str, Any]
    caveats: list[str]
    signal_examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def correction_name(self) -> str:
        return CORRECTION_NAMES[self.correction]

    def notable_anchor(self, model: str, topic: str, lang: str) -> str | None:
        anchor = evidence.cell_anchor(model, topic, lang)
        return anchor if anchor in self._anchors else None

    def __post_init__(self) -> None:
        self._anchors = {n.anchor for n in self.notable}

    def csv_tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the report, in full (the HTML shows the notable parts)."""
        divergent = self.divergent[
            [
                c
                for c in (
                    "response_id",
                    "model",
                    "topic_id",
                    "prompt_id",
                    "lang",
                    "status",
                    "label_confidence",
                    "reasoning_words",
                )
                if c in self.divergent.columns
            ]
        ]
        ev = pd.DataFrame(
            [
                {
                    "anchor": n.anchor,
                    "model": n.model,
                    "topic_id": n.topic_id,
                    "lang": n.lang,
                    "kind": n.kind,
                    "reason": n.reason,
                    "response_ids": " ".join(n.response_ids),
                    "contrast_ids": " ".join(n.contrast_ids),
                }
                for n in self.notable
            ],
            columns=[
                "anchor",
                "model",
                "topic_id",
                "lang",
                "kind",
                "reason",
                "response_ids",
                "contrast_ids",
            ],
        )
        return {
            "rates_topic_lang": self.cells,
            "rates_model_topic": self.model_topic,
            "outcomes": self.outcomes,
            "lang_vs_baseline": self.gaps,
            "controls_baseline": self.controls,
            "signal_language_switch": self.switch_summary,
            "signal_language_switch_replies": self.switches[self.switches["switched"]],
            "signal_reasoning_divergence": divergent,
            "signal_consistency": self.consistency,
            "evidence": ev,
        }


def load(db: Path | str | sqlite3.Connection, classifier: str | None = None) -> pd.DataFrame:
    """The store's responses with `status` and `is_control`, via the one export query."""
    return tables.prepare(responses_df(db, classifier=classifier))


def build(
    db_path: Path,
    *,
    classifier: str | None = None,
    correction: str = "bh",
    alpha: float = 0.05,
    baseline: str = tables.BASELINE_LANG,
    per_cell: int = 3,
    title: str | None = None,
    classifier_meta: Path | None = None,
) -> ReportData:
    """Read the store and compute every table, test, signal and evidence selection."""
    if correction not in CORRECTION_NAMES:
        raise ValueError(f"unknown correction {correction!r}")
    conn = connect(db_path, create=False)
    try:
        df = load(conn, classifier)
        meta = methodology(conn, df, classifier_meta=classifier_meta)
    finally:
        conn.close()
    cells = tables.cells(df)
    gaps = tables.lang_comparisons(cells, baseline=baseline, correction=correction, alpha=alpha)
    controls = tables.controls_baseline(df, correction=correction, alpha=alpha)
    switches = signals.language_switch(df)
    divergent = signals.reasoning_divergence(df)
    per_prompt = signals.consistency(df)
    notable = evidence.select(df, cells, gaps, per_cell=per_cell, baseline=baseline)
    # examples from different prompts: five samples of one prompt would show one thing five times
    keys = ["model", "prompt_id", "lang"]
    examples = {
        "language_switch": switches[switches["switched"]]
        .drop_duplicates(keys)["response_id"]
        .astype(str)
        .head(SIGNAL_EXAMPLES)
        .tolist(),
        "reasoning": divergent.sort_values("reasoning_words", ascending=False)
        .drop_duplicates(keys)["response_id"]
        .astype(str)
        .head(SIGNAL_EXAMPLES)
        .tolist()
        if len(divergent)
        else [],
    }
    ids = [i for n in notable for i in (*n.response_ids, *n.contrast_ids)]
    ids += [i for group in examples.values() for i in group]
    titles = (
        df.drop_duplicates("topic_id").set_index("topic_id")["topic_title"].astype(str).to_dict()
    )
    titles[tables.CONTROLS_ROW] = "Benign controls (all topics)"
    return ReportData(
        title=title or f"probe report: {db_path.name}",
        source=db_path.name,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        correction=correction,
        alpha=alpha,
        baseline=baseline,
        models=sorted(df["model"].unique().tolist()),
        topics=tables.topic_order(cells),
        langs=tables.lang_order(df),
        topic_titles=titles,
        cells=cells,
        model_topic=tables.model_topic(df),
        outcomes=tables.outcomes(df),
        gaps=gaps,
        controls=controls,
        switch_summary=signals.language_switch_summary(switches),
        switches=switches,
        reasoning_summary=signals.reasoning_summary(df, divergent),
        divergent=divergent,
        consistency=per_prompt,
        consistency_summary=signals.consistency_summary(per_prompt),
        notable=notable,
        transcripts=evidence.transcripts(df, ids),
        meta=meta,
        caveats=caveats(meta, correction_name=CORRECTION_NAMES[correction], alpha=alpha),
        signal_examples=examples,
    )
