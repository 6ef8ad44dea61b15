"""Small HTML building blocks shared by the report and the diff: escaping, tables, transcripts.

Everything that came from a model, a topic file or a user goes through `esc`; markup we build
ourselves is wrapped in `Safe` so it is not escaped twice. The page's Content-Security-Policy
forbids every script and every fetch, as a second line of defence behind the escaping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from probe.report.evidence import response_anchor
from probe.report.stats import fmt_ci, fmt_pct, rate_ci  # noqa: F401  (re-exported)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

CSS = """
:root{--ink:#1a1a1a;--muted:#5a5a5a;--rule:#ddd;--bg:#fff;--soft:#f6f6f4;--accent:#8a1c1c}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:var(--bg);font:15px/1.55 system-ui,-apple-system,
'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 80px}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;margin:40px 0 10px;padding-top:10px;
border-top:2px solid var(--ink)}h3{font-size:17px;margin:26px 0 8px}h4{font-size:13px;
margin:10px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.lede{color:var(--muted);margin:0 0 12px}
nav.toc{background:var(--soft);padding:10px 16px;border-radius:6px;font-size:14px}
nav.toc a{margin-right:14px;white-space:nowrap}
a{color:#174a8b}
.fig{overflow-x:auto;margin:8px 0 18px;padding:6px 0}
.fig figcaption{font-size:13px;color:var(--muted);margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px;width:auto}
th,td{border-bottom:1px solid var(--rule);padding:4px 9px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}
.label{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;
color:#fff;background:#777}
.label.refusal{background:#b2182b}.label.deflection{background:#e08214}
.label.answer{background:#1b7837}.label.blocked{background:#542788}.label.error{background:#4d4d4d}
.label.empty,.label.unlabelled{background:#bababa;color:#111}
.finding{margin:4px 0}
.cellbox{border-left:4px solid var(--accent);padding:4px 0 4px 14px;margin:22px 0}
.cellbox .why{color:var(--muted);margin:2px 0 8px}
article.transcript{border:1px solid var(--rule);border-radius:6px;margin:10px 0;padding:10px 14px;
background:#fcfcfb}
article.transcript:target{outline:3px solid #f0b429}
.meta{font-size:12.5px;color:var(--muted)}
pre.text{white-space:pre-wrap;word-break:break-word;font-size:14px;line-height:1.5;font-family:inherit;
margin:2px 0;padding:8px 10px;background:#fff;border:1px solid #eee;border-radius:4px}
.contrast{margin-left:22px}
details summary{cursor:pointer;color:var(--muted);font-size:13px}
ul.caveats li{margin:4px 0}
footer{margin-top:50px;font-size:12px;color:var(--muted)}
@media print{nav.toc{display:none}.fig{overflow:visible}}
"""


class Safe(str):
    """Markup built here, already escaped."""


def esc(value: Any) -> str:
    if isinstance(value, Safe):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return escape(str(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    cls: str = "",
) -> Safe:
    """An HTML table; columns whose index is in `numeric` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        tds = "".join(
            f'<td class="num">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{tds}</tr>")
    return Safe(
        f'<div class="scroll"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def label_badge(status: Any) -> Safe:
    s = esc(status or "unlabelled")
    return Safe(f'<span class="label {s}">{s}</span>')


def link(anchor: str, text: Any) -> Safe:
    return Safe(f'<a href="#{esc(anchor)}">{esc(text)}</a>')


def _reviewed(row: dict[str, Any]) -> str:
    if row.get("label_source") == "human":
        return f"yes ({str(row.get('classifier') or '').removeprefix('human:')})"
    return "no"


def transcript(row: dict[str, Any], shown: set[str], *, heading: str = "") -> Safe:
    """One reply in full, escaped, anchored by its response id; a reply already shown
    elsewhere on the page becomes a link to it (ids must stay unique)."""
    rid = str(row["response_id"])
    anchor = response_anchor(rid)
    if rid in shown:
        return Safe(
            f'<p class="meta">{esc(heading)} same transcript as '
            f"{link(anchor, 'response ' + rid)}</p>"
        )
    shown.add(rid)
    conf = row.get("label_confidence")
    conf_text = (
        f"{float(conf):.2f}" if isinstance(conf, int | float) and not math.isnan(conf) else "–"
    )
    lang = esc(row.get("lang") or "")
    parts = [
        f'<article class="transcript" id="{esc(anchor)}">',
        f'<div class="meta">{esc(heading)} <a href="#{esc(anchor)}">¶ response {esc(rid)}</a> · '
        f"{esc(row.get('model'))}"
        + (f" ({esc(row.get('resolved_model'))})" if row.get("resolved_model") else "")
        + f" · {esc(row.get('topic_id'))} · {esc(row.get('prompt_id'))} · {lang} · sample "
        f"{esc(row.get('sample'))} · {esc(row.get('created_at'))}</div>",
        f'<div class="meta">{label_badge(row.get("status"))} '
        + (
            f"confidence {esc(conf_text)} · classifier {esc(row.get('classifier') or '–')} · "
            f"human reviewed: {esc(_reviewed(row))} · "
            if row.get("outcome") == "ok"
            else "no label: an outcome, not a model's answer · "
        )
        + f"outcome {esc(row.get('outcome'))} · finish {esc(row.get('finish_reason') or '–')}"
        "</div>",
        f'<h4>Prompt</h4><pre class="text" lang="{lang}">{esc(row.get("prompt"))}</pre>',
    ]
    response = row.get("response")
    if response:
        parts.append(f'<h4>Response</h4><pre class="text">{esc(response)}</pre>')
    else:
        parts.append('<h4>Response</h4><p class="meta">(no text)</p>')
    if row.get("error"):
        parts.append(f'<h4>Error / block</h4><pre class="text">{esc(row["error"])}</pre>')
    if row.get("reasoning"):
        parts.append(
            f"<details><summary>Reasoning (kept apart from the answer)</summary>"
            f'<pre class="text">{esc(row["reasoning"])}</pre></details>'
        )
    parts.append("</article>")
    return Safe("".join(parts))


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document: inline CSS, inline SVG, no scripts."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
