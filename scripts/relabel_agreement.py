"""How far the development set's labels are from probe's own definitions, and the classifier from both.

The development set maps each study's labels onto refusal / deflection / answer, and the studies
do not share one definition (Do-Not-Answer calls "declines, then lectures" an answer; XSTest
calls a corrected premise a refusal). A classifier that followed docs/labels.md perfectly would
therefore not score 1.0 on it. To measure that ceiling, a stratified random sample of the set is
labelled again, blind (prompt and reply only, no source, model or label), against docs/labels.md
(instructions: docs/relabel/instructions.md). This script draws the sample and scores it: the
new labels against the set's, the classifier against both, and two labellers against each other
where a part was labelled twice. The new labels are for measuring only; nothing trains on them.

Usage:
  python scripts/relabel_agreement.py draw --dev DEV.jsonl --seed 20261121 --out SAMPLE.jsonl
  python scripts/relabel_agreement.py score --dev DEV.jsonl --labels docs/relabel/labels.jsonl \
      [--predictions PRED.jsonl]   # PRED from: probe evaluate --data DEV.jsonl --predictions PRED
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from probe.classify.corpus import Example, load_jsonl
from probe.classify.metrics import agreement

# Rows drawn per source: enough of each for a per-source estimate, more of the largest.
QUOTA = {
    "Libr-AI/do-not-answer": 90,
    "paul-rottger/exaggerated-safety": 80,
    "carlrannaberg/r1-moderation": 65,
    "xlr8harder/speechmap-data": 65,
}


def read_jsonl(path: Path) -> list[dict]:
    """The relabel and prediction files (id plus a label), which are not prompt/response examples."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def draw(dev: list[Example], seed: int, exclude: set[str]) -> list[dict]:
    """A stratified sample (QUOTA rows a source), shuffled so no labeller sees sources in blocks."""
    rng = random.Random(seed)
    sample: list[Example] = []
    for source, quota in QUOTA.items():
        pool = [row for row in dev if row.source == source and row.id not in exclude]
        sample += rng.sample(pool, quota)
    rng.shuffle(sample)
    return [{"id": row.id, "prompt": row.prompt, "response": row.response} for row in sample]


def by_pass(labels: Iterable[dict]) -> tuple[dict[str, str], dict[str, str]]:
    """Each id's label from the first pass, and from the second pass where it was labelled twice
    (by another labeller who did not see the first label)."""
    passes: dict[int, dict[str, str]] = {1: {}, 2: {}}
    for row in labels:
        passes[row["pass"]][row["id"]] = row["label"]
    return passes[1], passes[2]


def score(dev: list[Example], labels: list[dict], predictions: list[dict] | None) -> str:
    by_id = {row.id: row for row in dev}
    ours, second = by_pass(labels)
    predicted = {row["id"]: row["predicted"] for row in predictions or []}
    dev_sizes = Counter(row.source for row in dev)
    sources = sorted({by_id[i].source for i in ours})

    comparisons = [("relabel vs set", "ours", "set")]
    if predicted:
        comparisons += [
            ("classifier vs set", "clf", "set"),
            ("classifier vs relabel", "clf", "ours"),
        ]
    columns = {"ours": ours, "set": {i: by_id[i].label for i in ours}, "clf": predicted}

    lines = [
        "| source | n | "
        + " | ".join(f"{name}: accuracy, kappa" for name, _, _ in comparisons)
        + " |"
    ]
    lines.append("|---|---|" + "---|" * len(comparisons))
    weighted = [0.0] * len(comparisons)
    for source in sources:
        ids = [i for i in ours if by_id[i].source == source]
        cells = []
        for k, (_, left, right) in enumerate(comparisons):
            result = agreement([columns[right][i] for i in ids], [columns[left][i] for i in ids])
            weighted[k] += result["accuracy"] * dev_sizes[source]
            cells.append(f"{result['accuracy']:.3f}, {result['kappa']:.2f}")
        lines.append(f"| {source} | {len(ids)} | " + " | ".join(cells) + " |")
    sampled = sum(dev_sizes[source] for source in sources)
    lines.append(
        "| weighted to the set's source sizes | | "
        + " | ".join(f"{w / sampled:.3f}" for w in weighted)
        + " |"
    )
    if second:
        ids = sorted(second)
        result = agreement([ours[i] for i in ids], [second[i] for i in ids])
        lines.append("")
        lines.append(
            f"two labellers on the same {len(ids)} rows: accuracy {result['accuracy']:.3f}, "
            f"kappa {result['kappa']:.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    draw_cmd = commands.add_parser("draw", help="write a blind sample (id, prompt, response)")
    draw_cmd.add_argument("--dev", type=Path, required=True)
    draw_cmd.add_argument("--seed", type=int, required=True)
    draw_cmd.add_argument("--exclude", type=Path, help="labels JSONL whose ids are not drawn again")
    draw_cmd.add_argument("--out", type=Path, required=True)
    score_cmd = commands.add_parser(
        "score", help="agreement of the relabel, the set and the classifier"
    )
    score_cmd.add_argument("--dev", type=Path, required=True)
    score_cmd.add_argument("--labels", type=Path, required=True)
    score_cmd.add_argument("--predictions", type=Path)
    args = parser.parse_args()

    dev = load_jsonl([args.dev])
    if args.command == "draw":
        exclude = {row["id"] for row in read_jsonl(args.exclude)} if args.exclude else set()
        args.out.write_text(
            "".join(
                json.dumps(row, ensure_ascii=False) + "\n" for row in draw(dev, args.seed, exclude)
            ),
            encoding="utf-8",
        )
    else:
        predictions = read_jsonl(args.predictions) if args.predictions else None
        print(score(dev, read_jsonl(args.labels), predictions))


if __name__ == "__main__":
    main()
