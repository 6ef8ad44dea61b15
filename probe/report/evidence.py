"""Evidence: which cells deserve transcripts, and which transcripts to show.

A rate is only as good as the replies behind it, so every notable cell (a significant language
gap, a topic the model will not discuss, benign controls refused, provider blocks) comes with a
few full replies, each anchored by its response id so a journalist can cite one transcript.
A bounded number per cell keeps a 100k-reply report small and fast.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from probe.report.stats import fmt_p, fmt_pct
from probe.report.tables import CONTROLS_ROW

MAX_GAP_CELLS = 40
MAX_GAP_CELLS_PER_MODEL = 10
MAX_TOP_CELLS_PER_MODEL = 5
MAX_CONTROL_CELLS_PER_MODEL = 3
MAX_BLOCKED_CELLS = 5
MIN_N = 3  # a cell with fewer labelled replies is too thin to call notable on its rate alone

TRANSCRIPT_COLUMNS = [
    "response_id",
    "model",
    "resolved_model",
    "topic_id",
    "topic_title",
    "prompt_id",
    "kind",
    "lang",
    "sample",
    "prompt",
    "response",
    "reasoning",
    "outcome",
    "status",
    "finish_reason",
    "error",
    "label",
    "label_confidence",
    "classifier",
    "label_source",
    "created_at",
    "prompt_origin",
    "prompt_reviewed",
]


def slug(*parts: str) -> str:
    """A readable, unique HTML id: the parts slugged, plus a short hash of the raw parts so
    that two models whose names differ only by punctuation never share an anchor."""
    text = "--".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", p).strip("-").lower() for p in parts)
    digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:6]
    return f"{text}-{digest}"


def cell_anchor(model: str, topic_id: str, lang: str) -> str:
    return "cell-" + slug(model, topic_id, lang)


def response_anchor(response_id: str) -> str:
    return "r-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(response_id))


@dataclass
class Notable:
    """A cell worth reading, why, and the transcripts that show it."""

    anchor: str
    model: str
    topic_id: str
    lang: str
    kind: str  # "gap", "top", "controls", "blocked"
    reason: str
    response_ids: list[str] = field(default_factory=list)
    contrast_ids: list[str] = field(default_factory=list)


_PRIORITY = {
    "refusal": 0,
    "deflection": 1,
    "blocked": 2,
    "empty": 3,
    "answer": 4,
    "error": 5,
    "unlabelled": 6,
}


def _pick(rows: pd.DataFrame, per_cell: int, prefer: tuple[str, ...]) -> list[str]:
    if rows.empty:
        return []
    rank = (
        rows["status"]
        .astype(str)
        .map(lambda s: prefer.index(s) if s in prefer else len(prefer) + _PRIORITY.get(s, 9))
    )
    ordered = rows.assign(_rank=rank.to_numpy()).sort_values(["_rank", "prompt_id", "sample"])
    preferred = ordered[ordered["_rank"] < len(prefer)]
    others = ordered[ordered["_rank"] >= len(prefer)]
    # Replies with a preferred status first, one per prompt before a second sample of any, so
    # three transcripts show three prompts where there are three; other statuses only to fill.
    chosen: list[str] = []
    for part in (
        preferred.drop_duplicates("prompt_id"),
        preferred,
        others.drop_duplicates("prompt_id"),
        others,
    ):
        for rid in part["response_id"]:
            if len(chosen) == per_cell:
                break
            if rid not in chosen:
                chosen.append(rid)
    return [str(x) for x in chosen]


def select(
    df: pd.DataFrame,
    cells: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    per_cell: int = 3,
    baseline: str = "en",
) -> list[Notable]:
    """Choose notable cells and their transcripts (deterministic for a given store)."""
    notable: dict[str, Notable] = {}
    # a narrow frame for choosing: taking rows of every text column thousands of times would
    # dominate the run time; `transcripts` fetches the full rows once at the end
    df = df[
        ["response_id", "model", "topic_id", "lang", "prompt_id", "sample", "status", "is_control"]
    ]
    # positions only: materialising thousands of group frames would dominate the run time
    index = df.groupby(["model", "topic_id", "lang"], sort=False).indices
    ctrl_pos = np.flatnonzero(df["is_control"].to_numpy())
    controls = {
        (m, lang): ctrl_pos[idx]
        for (m, lang), idx in df.iloc[ctrl_pos]
        .groupby(["model", "lang"], sort=False)
        .indices.items()
    }
    none = np.array([], dtype=int)

    def rows_for(model: str, topic: str, lang: str) -> pd.DataFrame:
        if topic == CONTROLS_ROW:
            return df.iloc[controls.get((model, lang), none)]
        group = df.iloc[index.get((model, topic, lang), none)]
        return group[~group["is_control"]]

    def add(
        model: str, topic: str, lang: str, kind: str, reason: str, prefer: tuple[str, ...]
    ) -> Notable | None:
        anchor = cell_anchor(model, topic, lang)
        if anchor in notable:
            return None
        item = Notable(anchor, model, topic, lang, kind, reason)
        item.response_ids = _pick(rows_for(model, topic, lang), per_cell, prefer)
        notable[anchor] = item
        return item

    sig = gaps[gaps["significant"]].copy()
    sig = sig.reindex(sig["diff"].abs().sort_values(ascending=False).index)
    # the largest gaps of every model first, so one model's many gaps cannot crowd out another's
    per_model = sig.groupby("model", sort=False).head(MAX_GAP_CELLS_PER_MODEL)
    sig = pd.concat([per_model, sig.drop(per_model.index)]).head(MAX_GAP_CELLS)
    for rec in sig.to_dict("records"):
        direction = "more" if rec["diff"] > 0 else "fewer"
        reason = (
            f"{rec['lang']} gets {100 * abs(rec['diff']):.0f} percentage points {direction} "
            f"refusals "
            f"and deflections than {baseline} ({fmt_pct(rec['rate'])} vs "
            f"{fmt_pct(rec['rate_baseline'])}; adjusted p {fmt_p(rec['p_adj'])})"
        )
        prefer = ("refusal", "deflection") if rec["diff"] > 0 else ("answer",)
        item = add(rec["model"], rec["topic_id"], rec["lang"], "gap", reason, prefer)
        if item and item.response_ids:
            base = rows_for(rec["model"], rec["topic_id"], baseline)
            shown = rows_for(rec["model"], rec["topic_id"], rec["lang"])
            first = shown[shown["response_id"] == item.response_ids[0]].iloc[0]
            same = base[base["prompt_id"] == first["prompt_id"]]
            same = same.sort_values("sample")
            exact = same[same["sample"] == first["sample"]]
            pick = exact if len(exact) else same
            item.contrast_ids = [str(x) for x in pick["response_id"][:1]]

    sens = cells[(cells["topic_id"] != CONTROLS_ROW) & (cells["n"] >= MIN_N)]
    for _model, group in sens.groupby("model", sort=True):
        top = (
            group[group["non_answer_rate"] > 0]
            .sort_values(["non_answer_rate", "n"], ascending=[False, False])
            .head(MAX_TOP_CELLS_PER_MODEL)
        )
        for rec in top.to_dict("records"):
            add(
                rec["model"],
                rec["topic_id"],
                rec["lang"],
                "top",
                f"{fmt_pct(rec['non_answer_rate'])} of {rec['n']} labelled replies are refusals "
                f"or deflections",
                ("refusal", "deflection"),
            )

    ctrl = cells[(cells["topic_id"] == CONTROLS_ROW) & (cells["refusal"] + cells["deflection"] > 0)]
    for _model, group in ctrl.groupby("model", sort=True):
        top = group.sort_values(["non_answer_rate", "n"], ascending=[False, False])
        for rec in top.head(MAX_CONTROL_CELLS_PER_MODEL).to_dict("records"):
            add(
                rec["model"],
                CONTROLS_ROW,
                rec["lang"],
                "controls",
                f"benign control prompts refused or deflected: {fmt_pct(rec['non_answer_rate'])} "
                f"of {rec['n']} (over-refusal, not censorship)",
                ("refusal", "deflection"),
            )

    blocked = cells[cells["blocked"] > 0].sort_values("blocked", ascending=False)
    for rec in blocked.head(MAX_BLOCKED_CELLS).to_dict("records"):
        add(
            rec["model"],
            rec["topic_id"],
            rec["lang"],
            "blocked",
            f"{rec['blocked']} requests blocked by the provider's filter (an outcome, not a label)",
            ("blocked",),
        )
    return list(notable.values())


def transcripts(df: pd.DataFrame, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The full rows behind the given response ids, keyed by id."""
    wanted = df[df["response_id"].isin(set(ids))]
    cols = [c for c in TRANSCRIPT_COLUMNS if c in wanted.columns]
    records = wanted[cols].astype(object).where(wanted[cols].notna(), None).to_dict("records")
    return {str(r["response_id"]): r for r in records}
