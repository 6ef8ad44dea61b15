"""The HTML report: one self-contained file a journalist can open, read, print and cite.

Figures first where people would rather look than read (heatmaps with n in every cell), tables
where they need the exact numbers, then the evidence: full transcripts, each with an anchor.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from probe import __version__
from probe.report import figures
from probe.report.build import ReportData
from probe.report.htmlkit import Safe, esc, link, page, rate_ci, table
from probe.report.sections import (
    evidence_section,
    gaps_section,
    methodology_section,
    outcomes_section,
    signals_section,
)
from probe.report.stats import fmt_ci, fmt_p, fmt_pct, outcome_cells
from probe.report.tables import CONTROLS_ROW, LABELS


def _tip(rec: dict[str, Any], what: str, title: str) -> str:
    k = int(rec[what]) if what in rec else 0
    return (
        f"{title}: {what} {k}/{int(rec['n'])} = {fmt_pct(rec[f'{what}_rate'], 1)} "
        f"(95% CI {fmt_ci(rec[f'{what}_lo'], rec[f'{what}_hi'])}); refusal "
        f"{int(rec['refusal'])}, deflection {int(rec['deflection'])}, answer "
        f"{int(rec['answer'])}; apart: empty {int(rec['empty'])}, blocked "
        f"{int(rec['blocked'])}, error {int(rec['error'])}"
    )


def rate_cells(
    data: ReportData, frame: pd.DataFrame, row_key: str, col_key: str, label: str
) -> dict[tuple[str, str], figures.Cell]:
    """Heatmap cells for one label's rate: value, n, the full counts in the tooltip."""
    out: dict[tuple[str, str], figures.Cell] = {}
    for rec in frame.to_dict("records"):
        topic = data.topic_titles.get(rec["topic_id"], rec["topic_id"])
        where = f"{rec['model']} · {topic}" + (f" · {rec['lang']}" if "lang" in rec else "")
        href = None
        if "lang" in rec:
            anchor = data.notable_anchor(rec["model"], rec["topic_id"], rec["lang"])
            href = f"#{anchor}" if anchor else None
        out[(str(rec[row_key]), str(rec[col_key]))] = figures.Cell(
            value=float(rec[f"{label}_rate"]),
            text=fmt_pct(rec[f"{label}_rate"]),
            sub=f"n={int(rec['n'])}",
            title=_tip(rec, label, where),
            href=href,
        )
    return out


def gap_cells(data: ReportData, model: str) -> dict[tuple[str, str], figures.Cell]:
    out: dict[tuple[str, str], figures.Cell] = {}
    for rec in data.gaps[data.gaps["model"] == model].to_dict("records"):
        anchor = data.notable_anchor(model, rec["topic_id"], rec["lang"])
        diff = rec["diff"]
        text = "–" if math.isnan(diff) else f"{100 * diff:+.0f}"
        tip = (
            f"{model} · {data.topic_titles.get(rec['topic_id'], rec['topic_id'])} · "
            f"{rec['lang']} vs {rec['baseline']}: non-answer {fmt_pct(rec['rate'], 1)} "
            f"(n={rec['n']}) vs {fmt_pct(rec['rate_baseline'], 1)} (n={rec['n_baseline']}); "
            f"{rec['test']} p={fmt_p(rec['p'])}, adjusted p={fmt_p(rec['p_adj'])}, "
            f"Cohen's h={rec['cohens_h']:.2f}"
        )
        out[(rec["topic_id"], rec["lang"])] = figures.Cell(
            value=diff,
            text=text,
            sub=f"n={rec['n']}",
            title=tip,
            href=f"#{anchor}" if anchor else None,
            mark=bool(rec["significant"]),
        )
    return out


def _summary(data: ReportData) -> str:
    rows = []
    bars = []
    for rec in data.outcomes.to_dict("records"):
        bars.append((rec["model"], {s: int(rec[s]) for s in figures.COLOURS}))
        rows.append([*outcome_cells(rec), rec["unlabelled"]])
    findings = []
    for rec in data.controls.to_dict("records"):
        findings.append(
            f"<li class='finding'><b>{esc(rec['model'])}</b>: {esc(rec['verdict'])} "
            f"(sensitive {esc(fmt_pct(rec['sensitive_rate']))} vs controls "
            f"{esc(fmt_pct(rec['control_rate']))} refused or deflected).</li>"
        )
    sig = data.gaps[data.gaps["significant"]]
    for model, group in sig.groupby("model", sort=True):
        top = group.reindex(group["diff"].abs().sort_values(ascending=False).index).head(3)
        items = ", ".join(
            link(a, f"{r['topic_id']} in {r['lang']} ({100 * r['diff']:+.0f} pp)")
            if (a := data.notable_anchor(model, r["topic_id"], r["lang"]))
            else esc(f"{r['topic_id']} in {r['lang']} ({100 * r['diff']:+.0f} pp)")
            for r in top.to_dict("records")
        )
        gaps = "gap" if len(group) == 1 else "gaps"
        findings.append(
            f"<li class='finding'><b>{esc(model)}</b>: {len(group)} significant "
            f"language {gaps} against {esc(data.baseline)}; largest: {items}.</li>"
        )
    return (
        '<section id="summary"><h2>Summary</h2>'
        f'<figure class="fig">{figures.stacked_bars(bars, caption="Every job by outcome and label", figure_id="fig-outcomes")}'
        "<figcaption>Every job, by label and by the outcomes kept apart from labels "
        "(empty replies, provider blocks, errors).</figcaption></figure>"
        + table(
            [
                "model",
                "jobs",
                "labelled (n)",
                "refusal (95% CI)",
                "deflection (95% CI)",
                "answer (95% CI)",
                "empty",
                "blocked",
                "error",
                "unlabelled",
            ],
            rows,
            numeric=(1, 2, 6, 7, 8, 9),
        )
        + (f"<h3>Findings</h3><ul>{''.join(findings)}</ul>" if findings else "")
        + "<p class='meta'>Rates are shares of labelled replies (n). Blocked, error and empty "
        "replies are counted apart and never folded into refusals.</p></section>"
    )


def _controls(data: ReportData) -> str:
    if data.controls.empty:
        return ""
    rows, points = [], []
    for r in data.controls.to_dict("records"):
        points.append((r["model"], "controls", r["control_rate"], r["control_lo"], r["control_hi"]))
        points.append(
            (r["model"], "sensitive", r["sensitive_rate"], r["sensitive_lo"], r["sensitive_hi"])
        )
        rows.append(
            [
                r["model"],
                r["control_n"],
                rate_ci(r["control_rate"], r["control_lo"], r["control_hi"]),
                r["sensitive_n"],
                rate_ci(r["sensitive_rate"], r["sensitive_lo"], r["sensitive_hi"]),
                f"{100 * r['excess']:+.0f} pp" if not math.isnan(r["excess"]) else "–",
                f"{r['cohens_h']:.2f}" if not math.isnan(r["cohens_h"]) else "–",
                fmt_p(r["p_adj"]),
                r["verdict"],
            ]
        )
    fig = figures.intervals(
        points, caption="Non-answer rate: controls vs sensitive prompts", figure_id="fig-controls"
    )
    return (
        '<section id="controls"><h2>Controls: the baseline</h2><p>Every topic carries benign '
        "control prompts. A model that refuses or deflects them is over-refusing, not "
        "censoring; a model's refusals on sensitive topics count as evidence only beyond "
        f"its own control rate.</p><figure class='fig'>{fig}<figcaption>Refusal + "
        "deflection share with Wilson 95% intervals.</figcaption></figure>"
        + table(
            [
                "model",
                "controls n",
                "controls refused/deflected",
                "sensitive n",
                "sensitive refused/deflected",
                "excess",
                "Cohen's h",
                "adjusted p",
                "reading",
            ],
            rows,
            numeric=(1, 3, 5, 6, 7),
        )
        + "</section>"
    )


def _heatmaps(data: ReportData) -> str:
    labels = {t: data.topic_titles.get(t, t) for t in data.topics}
    models = {m: m for m in data.models}
    panels = [
        figures.Panel(
            label,
            label,
            data.models,
            models,
            rate_cells(data, data.model_topic, "topic_id", "model", label),
        )
        for label in LABELS
    ]
    fig = figures.heatmap_panels(
        data.topics,
        labels,
        panels,
        figure_id="hm-model-topic",
        caption="refusal, deflection and answer rates, model x topic",
        separate_last_row=CONTROLS_ROW in data.topics,
    )
    parts = [
        '<section id="model-topic"><h2>Models × topics</h2><p>All languages pooled; '
        "sensitive prompts only, with the benign controls as the last row. Hover a cell "
        "for its counts and interval.</p>"
        f"<figure class='fig'>{fig}<figcaption>Refusal, deflection and answer rates by topic "
        "and model (n = labelled replies); topics with the most refusals and deflections "
        "first.</figcaption></figure></section>"
        "<section id='topic-language'><h2>Topics × languages, per model</h2>"
        "<p>Cells link to their evidence where there is some. The second figure of each "
        f"model shows each language against {esc(data.baseline)}: percentage points "
        "more (red) or fewer (blue) refusals and deflections; ★ marks a difference "
        f"significant after {esc(data.correction_name)} correction.</p>"
    ]
    langs = {lang: lang for lang in data.langs}
    for i, model in enumerate(data.models):
        sub = data.cells[data.cells["model"] == model]
        present = set(sub["topic_id"])
        rows = [t for t in data.topics if t in present]
        parts.append(
            f"<details {'open' if i < 3 else ''}><summary><h3 style='display:inline'>"
            f"{esc(model)}</h3></summary>"
        )
        figs = {}
        for label in LABELS:
            figs[label] = figures.heatmap(
                rows,
                labels,
                data.langs,
                langs,
                rate_cells(data, sub, "topic_id", "lang", label),
                palette=label,
                caption=f"{model}: {label} rate, topic x language",
                figure_id=f"hm-{i}-{label}",
                separate_last_row=CONTROLS_ROW in rows,
            )
        parts.append(
            f"<figure class='fig'>{figs['refusal']}<figcaption>{esc(model)}: refusal "
            "rate by topic and language.</figcaption></figure>"
        )
        gap_rows = [t for t in rows if t != CONTROLS_ROW]
        gap_cols = [lang for lang in data.langs if lang != data.baseline]
        if gap_cols and gap_rows:
            fig = figures.heatmap(
                gap_rows,
                labels,
                gap_cols,
                langs,
                gap_cells(data, model),
                palette="diff",
                caption=f"{model}: gap against {data.baseline}",
                figure_id=f"hm-{i}-gap",
                neutral_label=f"same as {data.baseline}",
            )
            parts.append(
                f"<figure class='fig'>{fig}<figcaption>{esc(model)}: refusal + "
                f"deflection share minus {esc(data.baseline)}'s, in percentage points."
                "</figcaption></figure>"
            )
        for label in ("deflection", "answer"):
            parts.append(
                f"<details><summary>{esc(model)}: {esc(label)} rate by topic and "
                f"language</summary><figure class='fig'>{figs[label]}</figure></details>"
            )
        parts.append("</details>")
    parts.append("</section>")
    return "".join(parts)


def render(data: ReportData) -> str:
    """The whole report as one HTML string."""
    shown: set[str] = set()
    toc = "".join(
        link(a, t)
        for a, t in [
            ("summary", "Summary"),
            ("controls", "Controls"),
            ("model-topic", "Models × topics"),
            ("topic-language", "Topics × languages"),
            ("languages", "Language gaps"),
            ("outcomes", "Blocks & errors"),
            ("signals", "Signals"),
            ("evidence", "Evidence"),
            ("methodology", "Methodology"),
        ]
    )
    n = data.meta["responses"]
    topics = len([t for t in data.topics if t != CONTROLS_ROW])
    header = (
        f"<h1>{esc(data.title)}</h1><p class='lede'>{n} replies from "
        f"{len(data.models)} model(s), {topics} "
        f"sensitive topic(s), {len(data.langs)} language(s). Generated "
        f"{esc(data.generated_at)} by probe {esc(__version__)}.</p>"
        f"<nav class='toc'>{toc}</nav>"
    )
    evidence = evidence_section(data, shown)  # first: full transcripts live in the evidence section
    body = (
        header
        + _summary(data)
        + _controls(data)
        + _heatmaps(data)
        + gaps_section(data)
        + outcomes_section(data)
        + signals_section(data, shown)
        + evidence
        + methodology_section(data)
        + f"<footer>probe {esc(__version__)} · rates: Wilson 95% intervals · "
        f"tests corrected with {esc(data.correction_name)}.</footer>"
    )
    return page(data.title, Safe(body))
