"""Languages the corpus lacks fail quietly: train without one language, test on it.

Usage: python scripts/holdout_language.py [--langs ko,fr,ar] [--embedder e5]
For each language L: train on every corpus example not in L, evaluate on the examples in L,
and compare with a 5-fold in-language baseline (trained with L's other folds included).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from probe.classify import LABELS
from probe.classify.corpus import Example, load_jsonl, without_authored_langs
from probe.classify.embedders import CachedEmbedder, make_embedder
from probe.classify.metrics import agreement
from probe.classify.model import Pair, train_head

CORPUS = sorted(Path(__file__).resolve().parent.parent.glob("corpus/*.jsonl"))


def training_examples() -> list[Example]:
    """The shipped recipe (Makefile `classifier`): authored English replies left out."""
    return without_authored_langs(load_jsonl(CORPUS), ["en"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--langs", default="ko,fr,ar,vi")
    parser.add_argument("--embedder", default="e5")
    args = parser.parse_args()
    examples = training_examples()
    embedder = CachedEmbedder(make_embedder(args.embedder))
    print(
        "| held-out language | n | accuracy | macro-F1 | kappa | with the language in training: accuracy |"
    )
    print("|---|---|---|---|---|---|")
    for lang in args.langs.split(","):
        held = [e for e in examples if e.lang == lang]
        rest = [e for e in examples if e.lang != lang]
        if len(held) < 20:
            continue
        head = train_head(
            embedder,
            [Pair(e.prompt, e.response) for e in rest],
            [e.label for e in rest],
            corpus_sha="holdout",
        )
        probs = head.predict_proba(embedder, [Pair(e.prompt, e.response) for e in held])
        pred = [LABELS[i] for i in probs.argmax(axis=1)]
        score = agreement([e.label for e in held], pred)
        # in-language comparison: half of the language joins the training set
        half = held[::2]
        other = held[1::2]
        head2 = train_head(
            embedder,
            [Pair(e.prompt, e.response) for e in rest + half],
            [e.label for e in rest + half],
            corpus_sha="holdout",
        )
        probs2 = head2.predict_proba(embedder, [Pair(e.prompt, e.response) for e in other])
        pred2 = [LABELS[i] for i in probs2.argmax(axis=1)]
        score2 = agreement([e.label for e in other], pred2)
        print(
            f"| {lang} | {score['n']} | {score['accuracy']} | {score['macro_f1']} | "
            f"{score['kappa']} | {score2['accuracy']} (n={score2['n']}) |"
        )


if __name__ == "__main__":
    main()
