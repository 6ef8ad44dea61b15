"""Warm the embedding cache for a labelled JSONL (e.g. the dev set) so evaluation is quick.

Usage: python scripts/embed_cache.py FILE.jsonl [--embedder e5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from probe.classify.corpus import load_jsonl
from probe.classify.embedders import CachedEmbedder, make_embedder
from probe.classify.model import Pair, dense_features


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--embedder", default="e5")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="Random order, so any prefix is a fair sample of the file.",
    )
    args = parser.parse_args()
    examples = load_jsonl(args.files)
    if args.shuffle:
        import random

        random.Random(0).shuffle(examples)
    emb = CachedEmbedder(make_embedder(args.embedder))
    started = time.perf_counter()
    for start in range(0, len(examples), args.batch):
        part = examples[start : start + args.batch]
        dense_features(emb, [Pair(e.prompt, e.response) for e in part])
        done = start + len(part)
        rate = done / (time.perf_counter() - started)
        print(f"{done}/{len(examples)} {rate:.1f}/s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
