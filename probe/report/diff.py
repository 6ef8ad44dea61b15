"""`probe diff`: how a new release differs from its predecessor, prompt by prompt.

Only prompts asked of both sides (same prompt id and language) are compared, so a change in the
topic set never reads as a change in the model. Rate changes per topic x language are tested
like the report's language gaps; every prompt whose majority outcome flipped is listed with one
reply from each side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from probe.errors import InputError
from probe.report import evidence, tables
from probe.report.build import load
from probe.report.stats import CORRECTION_NAMES, adjust, compare_many
from probe.store import connect

MAX_FLIP_TRANSCRIPTS = 500  # flips beyond this are listed, with response ids, but not printed
# Ties between statuses go to the one that matters most for censorship.
_ORDER = ("refusal", "deflection", "blocked", "empty", "answer")


@dataclass
class DiffData:
    title: str
    a: str
    b: str
    correction: str
    alpha: float
    overall: pd.DataFrame
    rates: pd.DataFrame
    flips: pd.DataFrame
    transcripts: dict[str, dict[str, Any]]
    only_a: int
    only_b: int
    common: int
    topic_titles: dict[str, str]

    def flips_table(self) -> pd.DataFrame:
        return self.flips.drop(columns=["prompt"], errors="ignore")


def _side(db: Path, model: str, classifier: str | None) -> pd.DataFrame:
    conn = connect(db, create=False)
    try:
        df = load(conn, classifier)
    finally:
        conn.close()
    picked = df[df["model"] == model]
    if picked.empty:
        picked = df[df["resolved_model"].astype(str) == model]
    if picked.empty:
        known = ", ".join(sorted(df["model"].unique())) or "none"
        raise InputError(f"{db}: no replies from model {model!r}; models in this store: {known}")
    return picked


def majority_status(df: pd.DataFrame) -> pd.DataFrame:
    """Per (topic, prompt, language): the most frequent status, ignoring errors and unlabelled
    replies (they say nothing about the model), with the counts behind it."""
    usable = df[df["status"].isin(_ORDER)]
    keys = ["topic_id", "prompt_id", "lang"]
    if usable.empty:
        return pd.DataFrame(columns=[*keys, "status", "counts", "response_id"])
    counts = (
        usable.groupby([*keys, "status"], observed=True)
        .size()
        .unstack("status", fill_value=0)
        .reindex(columns=list(_ORDER), fill_value=0)
    )
    status = counts.idxmax(axis=1)
    text = counts.apply(lambda r: " ".join(f"{s}:{int(r[s])}" for s in _ORDER if r[s]), axis=1)
    out = pd.DataFrame({"status": status, "counts": text}).reset_index()
    firsts = (
        usable.sort_values("sample")
        .assign(status=usable["status"].astype(str))
        .drop_duplicates([*keys, "status"])[[*keys, "status", "response_id"]]
    )
    return out.merge(firsts, on=[*keys, "status"], how="left")


def build_diff(
    db_path: Path,
    model_a: str,
    model_b: str,
    *,
    db_b: Path | None = None,
    classifier: str | None = None,
    correction: str = "bh",
    alpha: float = 0.05,
) -> DiffData:
    """Compare model A (in `db_path`) with model B (in `db_b`, or the same store)."""
    if correction not in CORRECTION_NAMES:
        raise InputError(f"unknown correction {correction!r}; use bh or holm")
    side_a = _side(db_path, model_a, classifier)
    side_b = _side(db_b or db_path, model_b, classifier)
    keys = ["prompt_id", "lang"]
    pairs_a = side_a[keys].drop_duplicates()
    pairs_b = side_b[keys].drop_duplicates()
    common = pairs_a.merge(pairs_b, on=keys)
    side_a = side_a.merge(common, on=keys)
    side_b = side_b.merge(common, on=keys)
    label_a = model_a + (f" ({db_path.name})" if db_b else "")
    label_b = model_b + (f" ({db_b.name})" if db_b else "")

    cells_a, cells_b = tables.cells(side_a), tables.cells(side_b)
    cols = [
        "topic_id",
        "lang",
        "n",
        "refusal",
        "deflection",
        "answer",
        "empty",
        "blocked",
        "error",
        "refusal_rate",
        "deflection_rate",
        "answer_rate",
        "non_answer_rate",
    ]
    merged = cells_a[cols].merge(cells_b[cols], on=["topic_id", "lang"], suffixes=("_a", "_b"))
    c = compare_many(
        merged["refusal_b"] + merged["deflection_b"],
        merged["n_b"],
        merged["refusal_a"] + merged["deflection_a"],
        merged["n_a"],
    )
    for column in ("diff", "cohens_h", "odds_ratio", "test", "p"):
        merged[column] = c[column]
    merged["p_adj"] = adjust(merged["p"].tolist(), correction) if len(merged) else []
    merged["significant"] = merged["p_adj"].lt(alpha).fillna(False).astype(bool)

    overall = pd.concat(
        [
            tables.outcomes(side_a.assign(model=label_a)),
            tables.outcomes(side_b.assign(model=label_b)),
        ],
        ignore_index=True,
    )
    maj = majority_status(side_a).merge(
        majority_status(side_b), on=["topic_id", "prompt_id", "lang"], suffixes=("_a", "_b")
    )
    flips = maj[maj["status_a"].astype(str) != maj["status_b"].astype(str)].copy()
    flips["change"] = flips["status_a"].astype(str) + " → " + flips["status_b"].astype(str)
    flips["anchor"] = [
        ("flip-" + evidence.slug(p, lang))
        for p, lang in zip(flips["prompt_id"], flips["lang"], strict=True)
    ]
    prompts = side_a.drop_duplicates(keys).set_index(keys)["prompt"]
    flips["prompt"] = [
        prompts.get((p, lang), "")
        for p, lang in zip(flips["prompt_id"], flips["lang"], strict=True)
    ]
    flips = flips.sort_values(["topic_id", "prompt_id", "lang"]).reset_index(drop=True)
    shown = flips.head(MAX_FLIP_TRANSCRIPTS)
    ids = [str(x) for x in [*shown["response_id_a"], *shown["response_id_b"]] if pd.notna(x)]
    transcripts = evidence.transcripts(pd.concat([side_a, side_b]), ids)
    titles = (
        pd.concat([side_a, side_b])
        .drop_duplicates("topic_id")
        .set_index("topic_id")["topic_title"]
        .astype(str)
        .to_dict()
    )
    titles[tables.CONTROLS_ROW] = "Benign controls (all topics)"
    return DiffData(
        title=f"probe diff: {label_a} → {label_b}",
        a=label_a,
        b=label_b,
        correction=correction,
        alpha=alpha,
        overall=overall,
        rates=merged,
        flips=flips,
        transcripts=transcripts,
        only_a=len(pairs_a) - len(common),
        only_b=len(pairs_b) - len(common),
        common=len(common),
        topic_titles=titles,
    )
