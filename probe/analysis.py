"""Responses as rows: the one query behind exports, notebooks and reports.

One row per job (its stored result, or its last error if it never got one), joined with the
prompt as sent and with its label. A human label wins over any classifier's; otherwise the
label of the chosen classifier (by default the one that labelled this store most recently).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.store import connect

if TYPE_CHECKING:
    import pandas as pd

EXPORT_COLUMNS = [
    "response_id",
    "run_id",
    "model",
    "resolved_model",
    "base_url",
    "topic_id",
    "prompt_id",
    "kind",
    "lang",
    "sample",
    "prompt",
    "response",
    "reasoning",
    "refusal",
    "outcome",
    "finish_reason",
    "error",
    "http_status",
    "retries",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "temperature",
    "max_tokens",
    "seed",
    "system_prompt",
    "created_at",
    "label",
    "label_confidence",
    "classifier",
    "label_source",
    "sensitive_to",
    "topic_title",
    "prompt_origin",
    "prompt_reviewed",
    "official_narrative",
    "echoes_official_line",
]


def latest_classifier(db: sqlite3.Connection) -> str | None:
    row = db.execute(
        "SELECT classifier FROM classifications ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def response_rows(
    db: sqlite3.Connection, *, classifier: str | None = None, all_attempts: bool = False
) -> list[dict[str, Any]]:
    """Rows with EXPORT_COLUMNS, ordered by creation time."""
    classifier = classifier or latest_classifier(db)
    source = "responses" if all_attempts else "latest_responses"
    sql = f"""
        SELECT r.id AS response_id, r.run_id, r.model, r.resolved_model, r.base_url, r.topic_id,
               r.prompt_id, r.kind, r.lang, r.sample, p.text AS prompt, r.content AS response,
               r.reasoning, r.refusal, r.outcome, r.finish_reason, r.error, r.http_status,
               r.retries, r.latency_ms, r.prompt_tokens, r.completion_tokens,
               json_extract(r.params_json, '$.temperature') AS temperature,
               json_extract(r.params_json, '$.max_tokens') AS max_tokens,
               json_extract(r.params_json, '$.seed') AS seed,
               r.system_prompt, r.created_at,
               COALESCE(h.label, c.label) AS label,
               CASE WHEN h.label IS NOT NULL THEN 1.0 ELSE c.confidence END AS label_confidence,
               CASE WHEN h.label IS NOT NULL THEN 'human:' || h.reviewer ELSE c.classifier END
                   AS classifier,
               CASE WHEN h.label IS NOT NULL THEN 'human'
                    WHEN c.label IS NOT NULL THEN 'model' END AS label_source,
               p.sensitive_to, p.topic_title, p.origin AS prompt_origin,
               p.reviewed AS prompt_reviewed,
               json_extract(c.features_json, '$.official_narrative') AS official_narrative,
               json_extract(c.features_json, '$.echoes_official_line') AS echoes_official_line
        FROM {source} r
        JOIN prompts p ON p.prompt_key = r.prompt_key
        LEFT JOIN classifications c ON c.response_id = r.id AND c.classifier = ?
        LEFT JOIN (
            SELECT response_id, label, reviewer, MAX(created_at) FROM human_labels
            GROUP BY response_id
        ) h ON h.response_id = r.id
        ORDER BY r.created_at, r.id
    """
    return [dict(row) for row in db.execute(sql, (classifier,))]


def responses_df(
    db: Path | str | sqlite3.Connection,
    *,
    classifier: str | None = None,
    all_attempts: bool = False,
) -> pd.DataFrame:
    """The store's responses as a pandas DataFrame (same columns as `probe export`)."""
    import pandas as pd

    conn = db if isinstance(db, sqlite3.Connection) else connect(Path(db), create=False)
    try:
        rows = response_rows(conn, classifier=classifier, all_attempts=all_attempts)
    finally:
        if conn is not db:
            conn.close()
    return pd.DataFrame(rows, columns=EXPORT_COLUMNS)
