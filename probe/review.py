"""Human review of model labels: the least confident first, human labels win everywhere."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from probe.classify import LABELS
from probe.store import transaction, utc_now


def review_queue(
    db: sqlite3.Connection, *, threshold: float, classifier: str | None, limit: int
) -> list[sqlite3.Row]:
    """Labelled ok responses below `threshold` confidence with no human label yet."""
    return db.execute(
        """
        SELECT r.id, r.model, r.topic_id, r.prompt_id, r.lang, p.text AS prompt,
               r.content AS response, c.label, c.confidence, c.classifier
        FROM latest_responses r
        JOIN prompts p ON p.prompt_key = r.prompt_key
        JOIN classifications c ON c.response_id = r.id
        WHERE r.outcome = 'ok' AND c.confidence < ?
          AND (? IS NULL OR c.classifier = ?)
          AND NOT EXISTS (SELECT 1 FROM human_labels h WHERE h.response_id = r.id)
        ORDER BY c.confidence ASC, r.id
        LIMIT ?
        """,
        (threshold, classifier, classifier, limit),
    ).fetchall()


def add_human_label(
    db: sqlite3.Connection, response_id: str, label: str, reviewer: str, note: str | None = None
) -> None:
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}")
    with transaction(db):
        db.execute(
            "INSERT INTO human_labels (response_id, label, reviewer, note, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (response_id, label, reviewer, note, utc_now()),
        )


def export_training(db: sqlite3.Connection, out: Path) -> int:
    """Human-labelled responses as training JSONL (the newest human label per response)."""
    rows = db.execute(
        """
        SELECT r.id, p.text AS prompt, r.content AS response, h.label, r.lang, r.model,
               h.reviewer, h.created_at
        FROM human_labels h
        JOIN responses r ON r.id = h.response_id
        JOIN prompts p ON p.prompt_key = r.prompt_key
        WHERE h.created_at = (SELECT MAX(created_at) FROM human_labels h2
                              WHERE h2.response_id = h.response_id)
        ORDER BY h.created_at
        """
    ).fetchall()
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(
                json.dumps(
                    {
                        "id": f"human-{row['id']}",
                        "prompt": row["prompt"],
                        "response": row["response"],
                        "label": row["label"],
                        "lang": row["lang"],
                        "style": row["model"],
                        "source": f"human-review:{row['reviewer']}",
                        "reviewed_at": row["created_at"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    return len(rows)
