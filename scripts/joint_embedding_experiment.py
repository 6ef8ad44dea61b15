"""Would one e5 passage of prompt and reply together help the head? (Tried and rejected.)

The shipped features embed the prompt (query) and the reply's opening (passage) apart and let the
head compare them. Embedding the two in one text lets the encoder's attention relate the reply
to the question, a cross-encoder of sorts. This script scores both feature sets the way head
changes are chosen here: one network per corpus file held out in turn (the shipped recipe:
authored English left out, real replies 30% of the weight), averaged over the real-reply files.
The development set is never read.

Usage: python scripts/joint_embedding_experiment.py [--exclude FILE ...] [--seeds 1]
(the ninth session ran it with `--exclude qwen15-local-languages.jsonl`, the corpus before that
session's file; uncached, the joint embeddings take about 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import probe.classify.model as model
from probe.classify import LABELS
from probe.classify.corpus import AUTHORED, load_jsonl, without_authored_langs
from probe.classify.embedders import CachedEmbedder, make_embedder
from probe.classify.text import head

CORPUS = sorted(Path(__file__).resolve().parent.parent.glob("corpus/*.jsonl"))
PROMPT_CHARS = 200


def held_out_accuracy(
    features: np.ndarray,
    labels: list[str],
    langs: list[str],
    files: list[str],
    real: list[bool],
) -> dict[str, float]:
    """Accuracy per corpus file, each predicted by a network trained without it."""
    logits = model.held_out_logits(
        features, [""] * len(labels), labels, langs, files, 0.5, 0.0, real, 0.3, "mlp"
    )
    predicted = np.asarray(LABELS)[np.nan_to_num(logits, nan=-np.inf).argmax(axis=1)]
    scored = ~np.isnan(logits).any(axis=1)
    truth, groups = np.asarray(labels), np.asarray(files)
    return {
        name: float((predicted[mask] == truth[mask]).mean())
        for name in sorted(set(files))
        if (mask := scored & (groups == name)).any()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--exclude", action="append", default=[], help="corpus file name to leave out"
    )
    parser.add_argument("--seeds", type=int, default=1, help="networks averaged per head")
    args = parser.parse_args()
    model.MLP_SEEDS = args.seeds
    paths = [p for p in CORPUS if p.name not in set(args.exclude)]
    examples = without_authored_langs(load_jsonl(paths), ["en"])
    pairs = [model.Pair(e.prompt, e.response) for e in examples]
    labels, langs = [e.label for e in examples], [e.lang for e in examples]
    files, real = [e.file for e in examples], [e.source != AUTHORED for e in examples]
    real_files = sorted({f for f, is_real in zip(files, real, strict=True) if is_real})
    embedder = CachedEmbedder(make_embedder("e5"))
    shipped = model.dense_features(embedder, pairs)
    joint = embedder.passages(
        [head(p.prompt, PROMPT_CHARS) + "\n\n" + head(p.response, model.HEAD_CHARS) for p in pairs]
    )
    print("| features | real files, mean accuracy | authored files, mean accuracy |")
    print("|---|---|---|")
    for name, features in (("shipped", shipped), ("shipped + joint", np.hstack([shipped, joint]))):
        per_file = held_out_accuracy(features, labels, langs, files, real)
        real_mean = np.mean([per_file[f] for f in real_files])
        authored_mean = np.mean([acc for f, acc in per_file.items() if f not in real_files])
        print(f"| {name} | {real_mean:.4f} | {authored_mean:.4f} |")


if __name__ == "__main__":
    main()
