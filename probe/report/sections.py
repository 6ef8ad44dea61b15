"""The reading sections of the HTML report: language gaps, outcomes, signals, evidence and
methodology (tables and transcripts, where the figures of `html.py` give the overview)."""

from __future__ import annotations

from probe.report.build import ReportData
from probe.report.htmlkit import esc, link, rate_ci, table, transcript
from probe.report.stats import fmt_p, fmt_pct

MAX_GAP_ROWS = 200
MAX_INCONSISTENT_ROWS = 40


def gaps_section(data: ReportData) -> str:
    g = data.gaps
    sig = g[g["significant"]]
    sig = sig.reindex(sig["diff"].abs().sort_values(ascending=False).index).head(MAX_GAP_ROWS)
    rows = []
    for r in sig.to_dict("records"):
        anchor = data.notable_anchor(r["model"], r["topic_id"], r["lang"])
        rows.append(
            [
                r["model"],
                link(anchor, r["topic_id"]) if anchor else r["topic_id"],
                r["lang"],
                f"{fmt_pct(r['rate'])} of {r['n']}",
                f"{fmt_pct(r['rate_baseline'])} of {r['n_baseline']}",
                f"{100 * r['diff']:+.0f} pp",
                f"{r['cohens_h']:+.2f}",
                f"{r['odds_ratio']:.2f}",
                r["test"],
                fmt_p(r["p"]),
                fmt_p(r["p_adj"]),
            ]
        )
    tested = int(g["p"].notna().sum())
    return (
        '<section id="languages"><h2>Languages against ' + esc(data.baseline) + "</h2>"
        f"<p>{tested} comparisons tested (each language against {esc(data.baseline)}, per "
        "model and topic, on the share of refusals and deflections); "
        f"{len(g[g['significant']])} significant after {esc(data.correction_name)} "
        f"correction at {data.alpha}. Effect sizes: the difference in percentage points, "
        "Cohen's h (0.2 small, 0.5 medium, 0.8 large) and the odds ratio. Every comparison "
        "is in <code>tables/lang_vs_baseline.csv</code>.</p>"
        + (
            table(
                [
                    "model",
                    "topic",
                    "language",
                    "non-answer",
                    data.baseline,
                    "difference",
                    "Cohen's h",
                    "odds ratio",
                    "test",
                    "p",
                    "adjusted p",
                ],
                rows,
                numeric=(3, 4, 5, 6, 7, 9, 10),
            )
            if rows
            else "<p><i>No significant difference.</i></p>"
        )
        + "</section>"
    )


def outcomes_section(data: ReportData) -> str:
    per = data.cells[(data.cells[["blocked", "error", "empty"]].sum(axis=1) > 0)]
    per = per.sort_values(["blocked", "error", "empty"], ascending=False).head(60)
    rows = [
        [
            r["model"],
            data.topic_titles.get(r["topic_id"], r["topic_id"]),
            r["lang"],
            r["total"],
            r["blocked"],
            rate_ci(r["blocked_rate"], r["blocked_lo"], r["blocked_hi"]),
            r["error"],
            r["empty"],
        ]
        for r in per.to_dict("records")
    ]
    return (
        '<section id="outcomes"><h2>Blocks, errors and empty replies</h2><p>Outcomes, not '
        "labels: a provider's filter stopping a request (blocked) says something about the "
        "provider, an error says nothing about the model, and an empty reply has no text "
        "to judge. None of them enters a rate above.</p>"
        + (
            table(
                [
                    "model",
                    "topic",
                    "language",
                    "jobs",
                    "blocked",
                    "blocked share (95% CI)",
                    "error",
                    "empty",
                ],
                rows,
                numeric=(3, 4, 5, 6, 7),
            )
            if rows
            else "<p><i>No blocked, failed or empty replies.</i></p>"
        )
        + "</section>"
    )


def _examples(data: ReportData, signal: str, shown: set[str], heading: str) -> str:
    ids = [rid for rid in data.signal_examples.get(signal, []) if rid in data.transcripts]
    if not ids:
        return ""
    body = "".join(transcript(data.transcripts[rid], shown, heading=heading) for rid in ids)
    return f"<details><summary>Examples ({len(ids)})</summary>{body}</details>"


def signals_section(data: ReportData, shown: set[str]) -> str:
    parts = [
        '<section id="signals"><h2>Signals beyond the labels</h2>',
        "<h3>Reply in another script than the prompt</h3>",
    ]
    sw = data.switch_summary[data.switch_summary["switched"] > 0]
    parts.append(
        table(
            ["model", "prompt language", "replies", "other script", "share", "to"],
            [
                [
                    r["model"],
                    r["lang"],
                    r["n"],
                    r["switched"],
                    fmt_pct(r["rate"], 1),
                    r["to_scripts"],
                ]
                for r in sw.to_dict("records")
            ],
            numeric=(2, 3, 4),
        )
        if len(sw)
        else "<p><i>No reply switched script.</i></p>"
    )
    parts.append(_examples(data, "language_switch", shown, "Script switch:"))
    parts.append("<h3>Reasoning engages, answer declines</h3>")
    rs = data.reasoning_summary
    parts.append(
        table(
            [
                "model",
                "replies with reasoning",
                "declined with reasoning",
                "declined after engaging (40+ words)",
            ],
            rs[["model", "with_reasoning", "declined_with_reasoning", "diverging"]].values.tolist(),
            numeric=(1, 2, 3),
        )
        if len(rs)
        else "<p><i>No reasoning recorded.</i></p>"
    )
    parts.append(_examples(data, "reasoning", shown, "Diverging reasoning:"))
    parts.append("<h3>Same prompt, different label by language</h3>")
    cs = data.consistency_summary
    parts.append(
        table(
            ["model", "prompts in 2+ languages", "labelled differently", "share"],
            [
                [r["model"], r["prompts"], r["inconsistent"], fmt_pct(r["rate"], 1)]
                for r in cs.to_dict("records")
            ],
            numeric=(1, 2, 3),
        )
        if len(cs)
        else "<p><i>No prompt asked in two languages.</i></p>"
    )
    bad = data.consistency[~data.consistency["consistent"].astype(bool)].head(MAX_INCONSISTENT_ROWS)
    if len(bad):
        parts.append(
            table(
                ["model", "topic", "prompt", "majority label by language"],
                bad[["model", "topic_id", "prompt_id", "labels"]].values.tolist(),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def evidence_section(data: ReportData, shown: set[str]) -> str:
    parts = [
        '<section id="evidence"><h2>Evidence</h2><p>For each notable cell, up to '
        "a few full replies. Every transcript has an anchor (¶): link to it to cite it. "
        "Prompts and replies are shown exactly as stored.</p>"
    ]
    for n in data.notable:
        topic = data.topic_titles.get(n.topic_id, n.topic_id)
        parts.append(
            f'<div class="cellbox" id="{esc(n.anchor)}"><h3>{esc(n.model)} · '
            f"{esc(topic)} · {esc(n.lang)}</h3><p class='why'>{esc(n.reason)}</p>"
        )
        for rid in n.response_ids:
            if rid in data.transcripts:
                parts.append(transcript(data.transcripts[rid], shown))
        for rid in n.contrast_ids:
            if rid in data.transcripts:
                parts.append(
                    f"<div class='contrast'>{transcript(data.transcripts[rid], shown, heading='Same prompt in ' + data.baseline + ':')}</div>"
                )
        parts.append("</div>")
    if not data.notable:
        parts.append("<p><i>No notable cell.</i></p>")
    parts.append("</section>")
    return "".join(parts)


def methodology_section(data: ReportData) -> str:
    m = data.meta
    endpoints = table(
        ["model", "endpoint (no credentials)", "runs", "resolved model(s)"],
        [
            [e["model"], e["base_url"], e["runs"], m["resolved_models"].get(e["model"], "–")]
            for e in m["endpoints"]
        ],
        numeric=(2,),
    )
    keys = sorted({k for p in m["params"] for k in p if k not in ("run", "model")})
    params = table(
        ["run", "model", *keys],
        [[p["run"][:12], p["model"], *[p.get(k, "") for k in keys]] for p in m["params"]],
    )
    facts = [
        ("replies (one per job)", m["responses"]),
        ("topics", m["topics"]),
        ("languages", ", ".join(m["langs"])),
        ("samples per prompt", m["samples"]),
        ("runs", f"{m['first_run']} to {m['last_run']} (UTC)"),
        ("replies received", f"{m['first_reply']} to {m['last_reply']} (UTC)"),
        ("topic-set hash", ", ".join(m["topic_set_hashes"]) or "–"),
        ("probe version", ", ".join(m["probe_versions"]) or "–"),
        ("git revision", ", ".join(m["git_revisions"]) or "–"),
        ("classifier", ", ".join(m["classifiers"]) or "none"),
        ("classifier dev-set accuracy", m["classifier_accuracy"]),
        ("human-reviewed labels", m["human_labels"]),
        ("multiple-comparison correction", data.correction_name),
    ]
    return (
        '<section id="methodology"><h2>Methodology</h2><p>Generated from the store '
        f"<code>{esc(data.source)}</code>.</p>"
        + table(["", ""], facts)
        + "<h3>Models and endpoints</h3>"
        + endpoints
        + "<h3>Parameters</h3>"
        + params
        + "<h3>Caveats</h3><ul class='caveats'>"
        + "".join(f"<li>{esc(c)}</li>" for c in data.caveats)
        + "</ul></section>"
    )
