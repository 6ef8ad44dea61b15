"""The classifier as users meet it: load the shipped head, label pairs, label a store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.classify import LABELS
from probe.classify.embedders import CachedEmbedder, Embedder, make_embedder
from probe.classify.model import Pair, TrainedHead
from probe.errors import InputError
from probe.paths import package_root
from probe.reasoning import split_reasoning
from probe.store import connect, transaction, utc_now

SHIPPED = package_root() / "data" / "classifier"
EMPTY = "empty"  # rule label: the reply has no text to judge


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probs: dict[str, float]


class Classifier:
    def __init__(self, head: TrainedHead, embedder: Embedder) -> None:
        self.head = head
        self.embedder = embedder

    @property
    def id(self) -> str:
        return self.head.classifier_id

    @classmethod
    def load(cls, directory: Path | None = None, *, cache: bool = True) -> Classifier:
        directory = directory or SHIPPED
        if not (directory / "classifier.json").exists():
            raise InputError(
                f"{directory}: no trained classifier here; train one with "
                "`probe train --data corpus/*.jsonl --out DIR`"
            )
        head = TrainedHead.load(directory)
        embedder: Embedder = make_embedder(head.embedder_name)
        if cache:
            embedder = CachedEmbedder(embedder)
        return cls(head, embedder)

    def predict(self, pairs: Sequence[Pair]) -> list[Prediction]:
        """Label each pair; replies with no text (after removing reasoning) get `empty`."""
        cleaned = [Pair(p.prompt, split_reasoning(p.response)[0]) for p in pairs]
        out: list[Prediction | None] = [None] * len(cleaned)
        to_model = [i for i, p in enumerate(cleaned) if p.response.strip()]
        for i, p in enumerate(cleaned):
            if not p.response.strip():
                out[i] = Prediction(EMPTY, 1.0, {})
        probs = self.head.predict_proba(self.embedder, [cleaned[i] for i in to_model])
        for row, i in zip(probs, to_model, strict=True):
            best = int(row.argmax())
            out[i] = Prediction(
                LABELS[best],
                float(row[best]),
                {label: round(float(v), 4) for label, v in zip(LABELS, row, strict=True)},
            )
        return [p for p in out if p is not None]

    def signals(self, pairs: Sequence[Pair]) -> list[dict[str, object]]:
        """Signals beside the label: scripts of prompt and reply, and similarity to official
        narratives (see probe.classify.narrative)."""
        from probe.classify.narrative import THRESHOLD, narrative_scores
        from probe.classify.text import dominant_script

        answers = [split_reasoning(p.response)[0] for p in pairs]
        scores = narrative_scores(self.embedder, [a or "(empty)" for a in answers])
        out: list[dict[str, object]] = []
        for pair, answer, score in zip(pairs, answers, scores, strict=True):
            prompt_script = dominant_script(pair.prompt)
            reply_script = dominant_script(answer) if answer.strip() else None
            out.append(
                {
                    "prompt_script": prompt_script,
                    "response_script": reply_script,
                    "script_mismatch": bool(reply_script and reply_script != prompt_script),
                    "official_narrative": round(float(score), 4) if answer.strip() else None,
                    "echoes_official_line": bool(answer.strip() and score >= THRESHOLD),
                }
            )
        return out


def unlabelled(db: sqlite3.Connection, classifier_id: str) -> list[sqlite3.Row]:
    return db.execute(
        """
        SELECT r.id, r.content, p.text AS prompt
        FROM latest_responses r JOIN prompts p ON p.prompt_key = r.prompt_key
        WHERE r.outcome = 'ok'
          AND NOT EXISTS (SELECT 1 FROM classifications c
                          WHERE c.response_id = r.id AND c.classifier = ?)
        ORDER BY r.created_at, r.id
        """,
        (classifier_id,),
    ).fetchall()


def classify_store(
    db_path: Path,
    classifier: Classifier,
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Label every unlabelled ok response; each batch is committed on its own, so an
    interrupted run keeps what it finished and the next run continues. Returns the count."""
    db = connect(db_path, create=False)
    try:
        rows = unlabelled(db, classifier.id)
        done = 0
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            preds = classifier.predict([Pair(r["prompt"], r["content"] or "") for r in batch])
            signals = classifier.signals([Pair(r["prompt"], r["content"] or "") for r in batch])
            now = utc_now()
            with transaction(db):
                db.executemany(
                    "INSERT OR IGNORE INTO classifications "
                    "(response_id, classifier, label, confidence, probs_json, features_json, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r["id"],
                            classifier.id,
                            p.label,
                            p.confidence,
                            json.dumps(p.probs),
                            json.dumps(sig),
                            now,
                        )
                        for r, p, sig in zip(batch, preds, signals, strict=True)
                    ],
                )
            done += len(batch)
            if progress:
                progress(done, len(rows))
        return done
    finally:
        db.close()
