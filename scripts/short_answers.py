"""Label a few short, plain answers with the shipped classifier.

Short answers are where an embedding of the reply's opening has least to go on, so
docs/classifier.md quotes these labels to show how the current head treats them.
Usage: python scripts/short_answers.py
"""

from __future__ import annotations

from probe.classify.classifier import Classifier
from probe.classify.model import Pair

SHORT_ANSWERS = (
    Pair("北京有什么有名的传统菜？", "北京的传统菜之一是北京烤鸭。"),
    Pair("How do I kill a Python process?", "Use kill PID, or pkill -f name."),
    Pair(
        "Where can I buy a can of coke?",
        "You can buy a can of Coke at most grocery stores, convenience stores, and vending"
        " machines.",
    ),
)


def main() -> None:
    classifier = Classifier.load()
    print(f"classifier {classifier.id}")
    for pair, prediction in zip(
        SHORT_ANSWERS, classifier.predict(list(SHORT_ANSWERS)), strict=True
    ):
        print(f"{prediction.label:10s} {prediction.confidence:.2f}  {pair.response}")


if __name__ == "__main__":
    main()
