"""Choose the linear head's settings by leave-one-corpus-file-out cross-validation.

Each corpus file differs in language and authoring style, so holding one out imitates meeting a
new study. The development set is never used here: settings chosen on it would only move the
number we can see.

Usage: python scripts/select_head.py [--grid-c 0.1,0.5,2] [--grid-w 0,0.5,1]
"""

from __future__ import annotations

import argparse
from itertools import product
from pathlib import Path

import numpy as np

from probe.classify import LABELS
from probe.classify.corpus import load_jsonl
from probe.classify.embedders import CachedEmbedder, make_embedder
from probe.classify.metrics import agreement
from probe.classify.model import Pair, train_head

CORPUS = sorted(Path(__file__).resolve().parent.parent.glob("corpus/*.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid-c", default="0.1,0.5,2")
    parser.add_argument("--grid-w", default="0,0.5,1")
    parser.add_argument("--embedder", default="e5")
    args = parser.parse_args()
    embedder = CachedEmbedder(make_embedder(args.embedder))
    folds = {path.stem: load_jsonl([path]) for path in CORPUS}
    print("| C | n-gram weight | mean accuracy | mean kappa | " + " | ".join(folds) + " |")
    print("|---|---|---|---|" + "---|" * len(folds))
    for c, w in product(
        [float(x) for x in args.grid_c.split(",")], [float(x) for x in args.grid_w.split(",")]
    ):
        accs, kappas, cells = [], [], []
        for name, held in folds.items():
            train = [e for other, rows in folds.items() if other != name for e in rows]
            head = train_head(
                embedder,
                [Pair(e.prompt, e.response) for e in train],
                [e.label for e in train],
                corpus_sha="cv",
                c=c,
                ngram_weight=w,
                head="linear",
            )
            probs = head.predict_proba(embedder, [Pair(e.prompt, e.response) for e in held])
            pred = [LABELS[i] for i in probs.argmax(axis=1)]
            score = agreement([e.label for e in held], pred)
            accs.append(score["accuracy"])
            kappas.append(score["kappa"])
            cells.append(f"{score['accuracy']:.3f}")
        print(
            f"| {c} | {w} | {np.mean(accs):.3f} | {np.mean(kappas):.3f} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()
