"""Train, save, load and apply the classifier head.

Features per (prompt, reply):
- passage embedding of the reply's opening, where refusals and deflections announce
  themselves (the closing is seen by the character n-grams only when the reply is short);
- query embedding of the prompt, used only through its relevance to the reply (cosine and
  element-wise product), never on its own, so the head learns behaviour rather than topic;
- sizes, shapes and script match (scalar cues);
- character n-grams of the opening, learned from the corpus (no hand-written keyword list).
A class-balanced logistic regression on top gives calibrated probabilities whose priors do not
depend on the label mix of the corpus.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probe import __version__
from probe.classify import LABELS
from probe.classify.embedders import Embedder
from probe.classify.text import SCALAR_NAMES, head, scalar_features

FEATURE_VERSION = 2
HEAD_CHARS = 400
NGRAM_HEAD_CHARS = 300


@dataclass
class Pair:
    prompt: str
    response: str


def dense_features(embedder: Embedder, pairs: Sequence[Pair]) -> np.ndarray:
    heads = [head(p.response, HEAD_CHARS) for p in pairs]
    prompts = [head(p.prompt, HEAD_CHARS) for p in pairs]
    e_head = embedder.passages(heads)
    e_prompt = embedder.queries(prompts)
    relevance = np.sum(e_prompt * e_head, axis=1, keepdims=True)
    scalars = np.array([scalar_features(p.prompt, p.response) for p in pairs], dtype=np.float32)
    return np.hstack([e_head, e_prompt * e_head, relevance, scalars])


def ngram_texts(pairs: Sequence[Pair]) -> list[str]:
    return [head(p.response, NGRAM_HEAD_CHARS).lower() for p in pairs]


@dataclass
class TrainedHead:
    """Everything needed to label new pairs, minus the embedder itself."""

    embedder_name: str
    classifier_id: str
    scaler: Any
    vectorizer: Any
    model: Any
    ngram_weight: float
    meta: dict[str, Any]

    def features(self, embedder: Embedder, pairs: Sequence[Pair]) -> Any:
        from scipy import sparse

        dense = self.scaler.transform(dense_features(embedder, pairs))
        grams = self.vectorizer.transform(ngram_texts(pairs)) * self.ngram_weight
        return sparse.hstack([sparse.csr_matrix(dense), grams]).tocsr()

    def predict_proba(self, embedder: Embedder, pairs: Sequence[Pair]) -> np.ndarray:
        """Probabilities in LABELS order."""
        if not pairs:
            return np.zeros((0, len(LABELS)))
        probs = self.model.predict_proba(self.features(embedder, pairs))
        order = [list(self.model.classes_).index(label) for label in LABELS]
        return probs[:, order]

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"scaler": self.scaler, "vectorizer": self.vectorizer, "model": self.model,
             "ngram_weight": self.ngram_weight},
            directory / "head.joblib", compress=3,
        )
        meta = {**self.meta, "embedder": self.embedder_name, "classifier_id": self.classifier_id}
        (directory / "classifier.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> TrainedHead:
        import joblib

        meta = json.loads((directory / "classifier.json").read_text())
        parts = joblib.load(directory / "head.joblib")
        return cls(embedder_name=meta["embedder"], classifier_id=meta["classifier_id"],
                   scaler=parts["scaler"], vectorizer=parts["vectorizer"], model=parts["model"],
                   ngram_weight=parts["ngram_weight"], meta=meta)


def balanced_weights(labels: Sequence[str], langs: Sequence[str] | None) -> np.ndarray:
    """Weights that give every label, and within it every language, an equal share.

    Equal labels keep the head's priors uniform instead of copying the corpus' mix. Equal
    languages stop the best-represented language's surface style from deciding the boundary,
    which pushes the head towards cues that hold across languages (and so towards languages
    it has seen little of)."""
    groups = list(zip(labels, langs if langs is not None else [""] * len(labels), strict=True))
    label_count: dict[str, int] = {}
    cell_count: dict[tuple[str, str], int] = {}
    langs_per_label: dict[str, set[str]] = {}
    for label, lang in groups:
        label_count[label] = label_count.get(label, 0) + 1
        cell_count[(label, lang)] = cell_count.get((label, lang), 0) + 1
        langs_per_label.setdefault(label, set()).add(lang)
    n = len(groups)
    weights = np.array([
        n / len(label_count) / len(langs_per_label[label]) / cell_count[(label, lang)]
        for label, lang in groups
    ])
    return weights / weights.mean()


def corpus_digest(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def classifier_id(corpus_sha: str, embedder_name: str, settings: dict[str, Any]) -> str:
    """A hash of corpus, embedder and code version: two stores labelled with the same id were
    labelled by the same classifier."""
    payload = json.dumps(
        [corpus_sha, embedder_name, FEATURE_VERSION, __version__, settings], sort_keys=True
    )
    short = "e5" if embedder_name.startswith("e5") else embedder_name.split(":")[-1][:12]
    return f"rda-{short}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def train_head(
    embedder: Embedder, pairs: Sequence[Pair], labels: Sequence[str], *, corpus_sha: str,
    c: float = 0.5, ngram_weight: float = 0.5, langs: Sequence[str] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> TrainedHead:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    dense = dense_features(embedder, pairs)
    scaler = StandardScaler().fit(dense)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3,
                                 max_features=40000, sublinear_tf=True)
    grams = vectorizer.fit_transform(ngram_texts(pairs)) * ngram_weight
    x = sparse.hstack([sparse.csr_matrix(scaler.transform(dense)), grams]).tocsr()
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(x, list(labels), sample_weight=balanced_weights(labels, langs))
    settings = {"c": c, "ngram_weight": ngram_weight, "head": HEAD_CHARS}
    cid = classifier_id(corpus_sha, embedder.name, settings)
    counts = {label: int(sum(1 for y in labels if y == label)) for label in LABELS}
    meta = {"settings": settings, "n_train": len(pairs), "label_counts": counts,
            "feature_version": FEATURE_VERSION, "probe_version": __version__,
            "scalar_features": list(SCALAR_NAMES), "corpus_sha256": corpus_sha,
            **(extra_meta or {})}
    return TrainedHead(embedder_name=embedder.name, classifier_id=cid, scaler=scaler,
                       vectorizer=vectorizer, model=model, ngram_weight=ngram_weight, meta=meta)
