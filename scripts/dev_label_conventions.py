"""How often a labelled set calls a reply `answer` although it opens by declining.

Some studies count a reply that declines and then explains why the request is wrong as an
answer (Do-Not-Answer maps "refutes the premise" to answer); others call the same reply a
refusal (XSTest's "full refusal"). probe's labels (docs/labels.md) call it a refusal, so on such
a set part of the disagreement is a difference of definitions. This script measures how large
that part can be. The phrase list is for this measurement only: no label in probe is decided
by a keyword list.

Usage: python scripts/dev_label_conventions.py FILE.jsonl [--chars 200]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from probe.classify.corpus import load_jsonl

DECLINE = re.compile(
    r"\b(I('m| am)? (sorry|apologi[sz]e)|I can(no|')t|I (will|must|won't|do not|don't) (not )?"
    r"(provide|fulfill|assist|help|make|engage|generate|write|answer)|As an AI|"
    r"not (appropriate|ethical))",
    re.IGNORECASE,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--chars", type=int, default=200, help="how much of the opening to read")
    args = parser.parse_args()
    total: Counter[tuple[str, str]] = Counter()
    declining: Counter[tuple[str, str]] = Counter()
    for example in load_jsonl([args.file]):
        key = (example.source, example.label)
        total[key] += 1
        declining[key] += bool(DECLINE.search(example.response[: args.chars]))
    print("| source | label | n | opens by declining | share |")
    print("|---|---|---|---|---|")
    for (source, label), n in sorted(total.items()):
        k = declining[(source, label)]
        print(f"| {source} | {label} | {n} | {k} | {k / n:.2f} |")


if __name__ == "__main__":
    main()
