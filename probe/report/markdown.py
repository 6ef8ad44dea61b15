"""The Markdown summary: the headline numbers in a form that pastes into an issue, a wiki or
a newsroom chat, each finding linked to its evidence in the HTML report."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from probe.report.build import ReportData
from probe.report.stats import fmt_p, fmt_pct, outcome_cells, rate_ci

MAX_ROWS = 30


def md_escape(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes, no line breaks, no raw HTML."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)  # a tag, never a "<0.0001"
    return " ".join(text.split())


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_escape(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render(data: ReportData, html_name: str = "report.html") -> str:
    """The Markdown summary of a report."""
    m = data.meta
    out = [
        f"# {md_escape(data.title)}",
        "",
        f"{m['responses']} replies from {len(data.models)} model(s) across {m['topics']} "
        f"topic(s) and {len(m['langs'])} language(s). Full report with figures and "
        f"transcripts: [{html_name}]({html_name}). Generated {data.generated_at}.",
        "",
        "## Outcomes and rates",
        "",
        "Rates are shares of labelled replies (n), with Wilson 95% intervals. Empty, "
        "blocked and failed requests are counted apart and never folded into refusals.",
        "",
    ]
    out.append(
        md_table(
            ["model", "jobs", "n", "refusal", "deflection", "answer", "empty", "blocked", "error"],
            [outcome_cells(r) for r in data.outcomes.to_dict("records")],
        )
    )
    if not data.controls.empty:
        out += [
            "",
            "## Controls as baseline",
            "",
            "Refusing benign controls is over-refusal, not censorship.",
            "",
        ]
        out.append(
            md_table(
                [
                    "model",
                    "controls refused/deflected",
                    "sensitive refused/deflected",
                    "excess",
                    "adjusted p",
                    "reading",
                ],
                [
                    [
                        r["model"],
                        rate_ci(r["control_rate"], r["control_lo"], r["control_hi"]),
                        rate_ci(r["sensitive_rate"], r["sensitive_lo"], r["sensitive_hi"]),
                        "–" if math.isnan(r["excess"]) else f"{100 * r['excess']:+.0f} pp",
                        fmt_p(r["p_adj"]),
                        r["verdict"],
                    ]
                    for r in data.controls.to_dict("records")
                ],
            )
        )
    sig = data.gaps[data.gaps["significant"]]
    sig = sig.reindex(sig["diff"].abs().sort_values(ascending=False).index)
    out += [
        "",
        f"## Languages against {data.baseline}",
        "",
        f"{int(data.gaps['p'].notna().sum())} comparisons of the refusal + deflection share, "
        f"{len(sig)} significant after {data.correction_name} correction "
        f"(adjusted p < {data.alpha}). Largest first; all in `tables/lang_vs_baseline.csv`.",
        "",
    ]
    if len(sig):
        rows = []
        for r in sig.head(MAX_ROWS).to_dict("records"):
            anchor = data.notable_anchor(r["model"], r["topic_id"], r["lang"])
            rows.append(
                [
                    r["model"],
                    r["topic_id"],
                    r["lang"],
                    f"{fmt_pct(r['rate'])} (n={r['n']})",
                    f"{fmt_pct(r['rate_baseline'])} (n={r['n_baseline']})",
                    f"{100 * r['diff']:+.0f} pp",
                    f"{r['cohens_h']:+.2f}",
                    fmt_p(r["p_adj"]),
                    f"{html_name}#{anchor}" if anchor else "",
                ]
            )
        out.append(
            md_table(
                [
                    "model",
                    "topic",
                    "lang",
                    "non-answer",
                    data.baseline,
                    "difference",
                    "Cohen's h",
                    "adjusted p",
                    "evidence",
                ],
                rows,
            )
        )
    else:
        out.append("No significant difference.")
    out += ["", "## Signals", ""]
    for r in data.switch_summary[data.switch_summary["switched"] > 0].to_dict("records"):
        out.append(
            f"- {md_escape(r['model'])}, {md_escape(r['lang'])} prompts: "
            f"{r['switched']} of {r['n']} replies in another script ({fmt_pct(r['rate'], 1)}"
            f"; {md_escape(r['to_scripts'])})"
        )
    for r in data.reasoning_summary.to_dict("records"):
        out.append(
            f"- {md_escape(r['model'])}: {r['diverging']} refusals/deflections after "
            f"reasoning that engaged (of {r['with_reasoning']} replies with reasoning)"
        )
    for r in data.consistency_summary.to_dict("records"):
        out.append(
            f"- {md_escape(r['model'])}: {r['inconsistent']} of {r['prompts']} prompts "
            f"labelled differently across languages ({fmt_pct(r['rate'], 1)})"
        )
    if out[-1] == "":
        out.append("No signal.")
    out += ["", "## Evidence", ""]
    for n in data.notable:
        ids = ", ".join(f"[{rid[:12]}]({html_name}#r-{rid})" for rid in n.response_ids)
        out.append(
            f"- [{md_escape(n.model)} · {md_escape(n.topic_id)} · {md_escape(n.lang)}]"
            f"({html_name}#{n.anchor}): {md_escape(n.reason)}. Transcripts: {ids or '–'}"
        )
    if not data.notable:
        out.append("No notable cell.")
    out += ["", "## Methodology", ""]
    facts = [
        ("models", ", ".join(f"{e['model']} at {e['base_url']}" for e in m["endpoints"])),
        ("runs", f"{m['first_run']} to {m['last_run']} (UTC)"),
        ("samples per prompt", m["samples"]),
        ("topic-set hash", ", ".join(m["topic_set_hashes"])),
        ("classifier", ", ".join(m["classifiers"]) or "none"),
        ("classifier dev-set accuracy", m["classifier_accuracy"]),
        ("human-reviewed labels", m["human_labels"]),
        ("correction", data.correction_name),
    ]
    out += [f"- **{k}**: {md_escape(v)}" for k, v in facts]
    out += ["", "### Caveats", ""] + [f"- {md_escape(c)}" for c in data.caveats]
    out += ["", "Tables (CSV, complete): `tables/`.", ""]
    return "\n".join(out)
