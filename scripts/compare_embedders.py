"""Train the classifier head on the corpus with each embedder and measure it on a labelled set.

Usage: python scripts/compare_embedders.py --eval ../shared/devset/dev.jsonl [--embedders e5,static]
Prints one Markdown row per embedder: accuracy, macro-F1, kappa, and embedding throughput.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from probe.classify import REAL_SHARE
from probe.classify.corpus import AUTHORED, Example, load_jsonl, without_authored_langs
from probe.classify.embedders import CachedEmbedder, make_embedder
from probe.classify.metrics import agreement
from probe.classify.model import Pair, corpus_digest, dense_features, train_head

CORPUS = sorted(Path(__file__).resolve().parent.parent.glob("corpus/*.jsonl"))


def training_examples() -> list[Example]:
    """The shipped recipe (Makefile `classifier`): authored English replies left out."""
    return without_authored_langs(load_jsonl(CORPUS), ["en"])


def throughput(spec: str, pairs: list[Pair], n: int = 60) -> float:
    """Responses per second through the features, uncached."""
    embedder = make_embedder(spec)
    sample = pairs[:n]
    started = time.perf_counter()
    dense_features(embedder, sample)
    return len(sample) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--embedders", default="e5,static")
    parser.add_argument("--c", type=float, default=0.5)
    parser.add_argument("--ngram-weight", type=float, default=0.5)
    args = parser.parse_args()
    train = training_examples()
    test = load_jsonl([args.eval])
    train_pairs = [Pair(e.prompt, e.response) for e in train]
    test_pairs = [Pair(e.prompt, e.response) for e in test]
    print("| embedder | accuracy | macro-F1 | kappa | responses/s (features, 2 cores) |")
    print("|---|---|---|---|---|")
    for spec in args.embedders.split(","):
        embedder = CachedEmbedder(make_embedder(spec))
        head = train_head(
            embedder,
            train_pairs,
            [e.label for e in train],
            corpus_sha=corpus_digest(CORPUS),
            c=args.c,
            ngram_weight=args.ngram_weight,
            langs=[e.lang for e in train],
            real=[e.source != AUTHORED for e in train],
            real_share=REAL_SHARE,
        )
        probs = head.predict_proba(embedder, test_pairs)
        labels = ["refusal", "deflection", "answer"]
        pred = [labels[i] for i in probs.argmax(axis=1)]
        score = agreement([e.label for e in test], pred)
        speed = throughput(spec, test_pairs)
        print(
            f"| {embedder.name} | {score['accuracy']} | {score['macro_f1']} | {score['kappa']} | {speed:.1f} |"
        )


if __name__ == "__main__":
    main()
