"""The diff as HTML and Markdown: rate changes per topic x language, and every flipped prompt
with one reply from each side."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from probe.report import figures, tables
from probe.report.diff import MAX_FLIP_TRANSCRIPTS, DiffData
from probe.report.htmlkit import Safe, esc, link, page, table, transcript
from probe.report.markdown import md_escape, md_table
from probe.report.stats import CORRECTION_NAMES, fmt_p, fmt_pct, outcome_cells


def change_heatmap(data: DiffData) -> str:
    """Topic x language heatmap of the change in refusal + deflection share, B minus A."""
    rates = data.rates
    topics = tables.topic_order(
        rates.rename(columns={"refusal_b": "refusal", "deflection_b": "deflection", "n_b": "n"})
    )
    langs = sorted(rates["lang"].unique(), key=lambda x: (x != tables.BASELINE_LANG, x))
    cells = {}
    for r in rates.to_dict("records"):
        tip = (
            f"{data.topic_titles.get(r['topic_id'], r['topic_id'])} · {r['lang']}: refused or "
            f"deflected {fmt_pct(r['non_answer_rate_a'], 1)} (n={r['n_a']}) → "
            f"{fmt_pct(r['non_answer_rate_b'], 1)} (n={r['n_b']}); adjusted p "
            f"{fmt_p(r['p_adj'])}"
        )
        text = "–" if pd.isna(r["diff"]) else f"{100 * r['diff']:+.0f}"
        cells[(r["topic_id"], r["lang"])] = figures.Cell(
            value=float(r["diff"]),
            text=text,
            sub=f"n={r['n_a']}/{r['n_b']}",
            title=tip,
            mark=bool(r["significant"]),
        )
    return figures.heatmap(
        topics,
        data.topic_titles,
        langs,
        {x: x for x in langs},
        cells,
        palette="diff",
        caption="Change in refusal + deflection share, A to B",
        figure_id="hm-diff",
        separate_last_row=tables.CONTROLS_ROW in topics,
        neutral_label="no change",
    )


def render_html(data: DiffData) -> str:
    """The diff as one self-contained HTML page."""
    rows = [outcome_cells(r) for r in data.overall.to_dict("records")]
    sig = data.rates[data.rates["significant"]]
    sig = sig.reindex(sig["diff"].abs().sort_values(ascending=False).index)
    sig_rows = [
        [
            data.topic_titles.get(r["topic_id"], r["topic_id"]),
            r["lang"],
            f"{fmt_pct(r['non_answer_rate_a'])} of {r['n_a']}",
            f"{fmt_pct(r['non_answer_rate_b'])} of {r['n_b']}",
            f"{100 * r['diff']:+.0f} pp",
            f"{r['cohens_h']:+.2f}",
            r["test"],
            fmt_p(r["p_adj"]),
        ]
        for r in sig.to_dict("records")
    ]
    flip_rows = [
        [
            link(f["anchor"], f["prompt_id"]) if i < MAX_FLIP_TRANSCRIPTS else f["prompt_id"],
            f["lang"],
            f["change"],
            f["counts_a"],
            f["counts_b"],
        ]
        for i, f in enumerate(data.flips.to_dict("records"))
    ]
    shown: set[str] = set()
    details = []
    for f in data.flips.head(MAX_FLIP_TRANSCRIPTS).to_dict("records"):
        details.append(
            f'<div class="cellbox" id="{esc(f["anchor"])}"><h3>{esc(f["prompt_id"])}'
            f" · {esc(f['lang'])}: {esc(f['change'])}</h3>"
        )
        for side, rid in (("A", f["response_id_a"]), ("B", f["response_id_b"])):
            if pd.notna(rid) and str(rid) in data.transcripts:
                details.append(
                    transcript(
                        data.transcripts[str(rid)],
                        shown,
                        heading=f"{side} ({data.a if side == 'A' else data.b}):",
                    )
                )
        details.append("</div>")
    body = (
        f"<h1>{esc(data.title)}</h1><p class='lede'>A = {esc(data.a)}, B = {esc(data.b)}. "
        f"{data.common} prompt × language pairs asked of both; {data.only_a} only of A, "
        f"{data.only_b} only of B (left out). Generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</p>"
        "<section id='overall'><h2>Overall</h2>"
        + table(
            [
                "side",
                "jobs",
                "labelled (n)",
                "refusal",
                "deflection",
                "answer",
                "empty",
                "blocked",
                "error",
            ],
            rows,
            numeric=(1, 2, 6, 7, 8),
        )
        + "</section><section id='changes'><h2>Changes by topic and language</h2>"
        f"<figure class='fig'>{change_heatmap(data)}<figcaption>Percentage points of refusals and "
        "deflections, B minus A; ★ significant after "
        f"{esc(CORRECTION_NAMES[data.correction])} correction.</figcaption></figure>"
        + (
            table(
                [
                    "topic",
                    "language",
                    "A refused/deflected",
                    "B refused/deflected",
                    "change",
                    "Cohen's h",
                    "test",
                    "adjusted p",
                ],
                sig_rows,
                numeric=(2, 3, 4, 5, 7),
            )
            if sig_rows
            else "<p><i>No significant change.</i></p>"
        )
        + f"</section><section id='flips'><h2>Prompts whose label flipped ({len(flip_rows)})</h2>"
        "<p>Majority outcome per prompt and language (errors left out; ties go to refusal, "
        "then deflection, then blocked).</p>"
        + (
            table(["prompt", "language", "A → B", "A counts", "B counts"], flip_rows)
            if flip_rows
            else "<p><i>No label flipped.</i></p>"
        )
        + "".join(details)
        + "</section>"
    )
    return page(data.title, Safe(body))


def render_markdown(data: DiffData, html_name: str = "diff.html") -> str:
    """The diff as Markdown: overall rates, significant changes, every flipped prompt."""
    out = [
        f"# {md_escape(data.title)}",
        "",
        f"A = {md_escape(data.a)}, B = {md_escape(data.b)}. {data.common} prompt × language "
        f"pairs asked of both ({data.only_a} only of A, {data.only_b} only of B). Full diff: "
        f"[{html_name}]({html_name}).",
        "",
        "## Overall",
        "",
    ]
    out.append(
        md_table(
            ["side", "jobs", "n", "refusal", "deflection", "answer", "blocked", "error"],
            [
                [
                    r["model"],
                    r["total"],
                    r["n"],
                    fmt_pct(r["refusal_rate"]),
                    fmt_pct(r["deflection_rate"]),
                    fmt_pct(r["answer_rate"]),
                    r["blocked"],
                    r["error"],
                ]
                for r in data.overall.to_dict("records")
            ],
        )
    )
    sig = data.rates[data.rates["significant"]]
    out += [
        "",
        "## Significant changes",
        "",
        f"Refusal + deflection share, B minus A; {CORRECTION_NAMES[data.correction]} "
        f"correction, adjusted p < {data.alpha}. All cells: `diff_rates.csv`.",
        "",
    ]
    out.append(
        md_table(
            ["topic", "lang", "A", "B", "change", "adjusted p"],
            [
                [
                    r["topic_id"],
                    r["lang"],
                    f"{fmt_pct(r['non_answer_rate_a'])} (n={r['n_a']})",
                    f"{fmt_pct(r['non_answer_rate_b'])} (n={r['n_b']})",
                    f"{100 * r['diff']:+.0f} pp",
                    fmt_p(r["p_adj"]),
                ]
                for r in sig.to_dict("records")
            ],
        )
        if len(sig)
        else "No significant change."
    )
    out += ["", f"## Prompts whose label flipped ({len(data.flips)})", ""]
    out.append(
        md_table(
            ["prompt", "lang", "A → B", "A counts", "B counts", "prompt text"],
            [
                [
                    f["prompt_id"],
                    f["lang"],
                    f["change"],
                    f["counts_a"],
                    f["counts_b"],
                    str(f["prompt"])[:160],
                ]
                for f in data.flips.to_dict("records")
            ],
        )
        if len(data.flips)
        else "No label flipped."
    )
    out.append("")
    return "\n".join(out)
