"""The training corpus keeps the promises of issue #4 and corpus/README.md."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from probe.classify import LABELS
from probe.classify.corpus import AUTHORED, load_jsonl

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FIELDS = {"id", "prompt", "response", "label", "lang", "prompt_lang", "subject", "style", "source"}


def test_every_file_is_listed_and_every_line_is_complete() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    ids: Counter[str] = Counter()
    for path in sorted(CORPUS.glob("*.jsonl")):
        assert f"`{path.name}`" in readme, f"{path.name} is not described in corpus/README.md"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            row = json.loads(line)
            missing = FIELDS - set(row)
            assert not missing, f"{path.name}:{number} lacks {sorted(missing)}"
            assert row["label"] in LABELS and row["response"].strip() and row["prompt"].strip()
            ids[row["id"]] += 1
    assert not [i for i, n in ids.items() if n > 1], "ids repeat across the corpus"


def test_size_languages_and_labels() -> None:
    examples = load_jsonl(sorted(CORPUS.glob("*.jsonl")))
    assert len(examples) >= 3000
    labels_by_lang: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        labels_by_lang[e.lang].add(e.label)
    full = [lang for lang, labels in labels_by_lang.items() if labels == set(LABELS)]
    assert len(full) >= 10, full
    assert any(e.source != AUTHORED for e in examples), "no real model replies"
    pairs = Counter((e.prompt, e.response) for e in examples)
    assert max(pairs.values()) == 1, "an example is repeated"
